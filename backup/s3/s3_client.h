// An S3 client for one bucket on any S3-compatible endpoint (AWS, radosgw, MinIO ...):
// SigV4-signed requests over a pool of keep-alive connections, path-style or virtual-host
// addressing, TLS verification on by default, retries with exponential backoff and jitter on
// transport errors, timeouts, 500/502/503/504/429 and S3's RequestTimeout/SlowDown.
//
// Thread-safe: every method may be called from many threads at once (each call uses its own
// pooled connection); the caller's threads give the parallelism.
//
// Errors: NOT_FOUND missing object/bucket/upload, PERMISSION_DENIED bad credentials or access,
// ALREADY_EXISTS a conditional write found the object, OUT_OF_RANGE bad range, UNAVAILABLE the
// endpoint could not be reached after every retry, FAILED_PRECONDITION wrong region/redirect,
// INVALID_ARGUMENT anything else the server rejected. Messages never contain credentials.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "backup/s3/http.h"
#include "backup/s3/sigv4.h"
#include "common/status.h"

namespace vdisk::backup::s3 {

struct RetryPolicy {
  int max_attempts = 12;
  double max_seconds = 90;      // total time budget across attempts
  double base_delay_ms = 200;   // doubled per attempt, with +-50% jitter
  double max_delay_ms = 8000;
};

struct S3Config {
  std::string endpoint = "https://s3.amazonaws.com";  // scheme://host[:port]
  std::string region = "us-east-1";
  std::string bucket;
  bool path_style = true;  // http(s)://host/bucket/key; false: http(s)://bucket.host/key
  Credentials credentials;
  HttpOptions http;
  RetryPolicy retry;
  // Bodies above this size are sent as UNSIGNED-PAYLOAD (integrity then rests on TLS/TCP and on
  // the repository's own AEAD tags); smaller bodies carry their SHA-256 in the signature.
  uint64_t sign_payload_below = 1 << 20;
};

struct ObjectInfo {
  std::string key;
  uint64_t size = 0;
  std::string etag;
  std::string last_modified;  // ISO 8601 as the server reports it
};

struct ListPage {
  std::vector<ObjectInfo> objects;
  std::string next_token;  // empty when this was the last page
};

struct MultipartUpload {
  std::string key;
  std::string upload_id;
  std::string initiated;  // ISO 8601
};

struct CompletedPart {
  int number = 0;
  std::string etag;
};

class S3Client {
 public:
  // INVALID_ARGUMENT for a malformed endpoint or empty bucket/credentials.
  static StatusOr<std::unique_ptr<S3Client>> Create(S3Config config);

  const S3Config& config() const { return config_; }
  // "s3://bucket at endpoint" (no secrets).
  std::string describe() const;

  Status HeadBucket();
  Status CreateBucket();  // OK if it already exists and is ours

  // Conditional put when if_none_match ("If-None-Match: *"): ALREADY_EXISTS if present.
  // Servers that ignore the header overwrite; callers must not rely on it for safety.
  Status PutObject(const std::string& key, std::string_view data, bool if_none_match = false);
  // Whole object, or `length` bytes at `offset` when length > 0 (a ranged GET).
  StatusOr<std::string> GetObject(const std::string& key, uint64_t offset = 0,
                                  uint64_t length = 0);
  StatusOr<ObjectInfo> HeadObject(const std::string& key);
  Status DeleteObject(const std::string& key);  // OK if absent
  StatusOr<ListPage> ListObjectsPage(const std::string& prefix, const std::string& token,
                                     int max_keys = 1000);
  // Every object under `prefix` (pages through ListObjectsV2), in key order.
  StatusOr<std::vector<ObjectInfo>> ListObjects(const std::string& prefix);

  StatusOr<std::string> CreateMultipartUpload(const std::string& key);
  StatusOr<std::string> UploadPart(const std::string& key, const std::string& upload_id,
                                   int part_number, std::string_view data);  // returns the ETag
  Status CompleteMultipartUpload(const std::string& key, const std::string& upload_id,
                                 const std::vector<CompletedPart>& parts);
  Status AbortMultipartUpload(const std::string& key, const std::string& upload_id);  // OK if gone
  StatusOr<std::vector<MultipartUpload>> ListMultipartUploads(const std::string& prefix);

 private:
  explicit S3Client(S3Config config);

  struct Call {
    std::string method = {};
    std::string key = {};  // empty: the bucket itself
    KeyValues query = {};
    KeyValues headers = {};
    std::string_view body = {};
    bool retry_not_found_as_done = false;
  };
  // Signs and sends with retries; returns the final response if its status is 2xx, else the
  // mapped error.
  StatusOr<HttpResponse> Send(const Call& call);
  StatusOr<HttpResponse> SendOnce(const Call& call);
  Status MapError(const Call& call, const HttpResponse& r) const;

  S3Config config_;
  std::string scheme_;  // "http" / "https"
  std::string host_;    // host[:port] as sent in Host
  std::unique_ptr<HttpClient> http_;
};

// Parses "http(s)://host[:port][/]" into scheme and host; INVALID_ARGUMENT otherwise.
Status ParseEndpoint(const std::string& endpoint, std::string* scheme, std::string* host);

}  // namespace vdisk::backup::s3
