// Opens the ObjectStore a repository URI names:
//   file:///abs/path  (or a plain absolute path)   a local/NFS directory
//   s3://bucket[/prefix][?endpoint=URL&region=R&path_style=true|false]
// S3 settings come from, in increasing precedence: the environment (S3_ENDPOINT, S3_REGION,
// S3_ACCESS_KEY, S3_SECRET_KEY — the names of tests/env/ceph.sh's s3.env — or AWS_ENDPOINT_URL,
// AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_CA_BUNDLE), a
// credentials file, the URI's query, and explicit options. Credentials are never logged.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "backup/store/object_store.h"

namespace vdisk::backup {

struct StoreOptions {
  std::string endpoint;
  std::string region;
  std::optional<bool> path_style;  // default: true with a custom endpoint, false for AWS
  std::string access_key;
  std::string secret_key;
  std::string session_token;
  std::string ca_file;
  bool insecure_tls = false;  // turns off TLS verification (never the default)
  unsigned concurrency = 16;
  uint64_t part_size = 8ull << 20;
  double retry_seconds = 90;
};

// Fills unset fields from the environment.
void ApplyEnvironment(StoreOptions* o);

// Reads credentials/settings from a file: KEY=VALUE lines (shell/env style, as in s3.env or a
// Kubernetes Secret rendered with envFrom) with the names above, or an AWS shared credentials
// file ([default] aws_access_key_id = ...). Fields it sets override `o`.
Status LoadCredentialsFile(const std::string& path, StoreOptions* o);

StatusOr<std::unique_ptr<ObjectStore>> OpenStore(const std::string& uri, StoreOptions options);

}  // namespace vdisk::backup
