// Wrapping of the repository master key by a user secret, stored as keys/<id> objects.
//
// A password is stretched with scrypt (N=2^15, r=8, p=1 by default: ~0.1 s, 32 MiB); a key
// file (e.g. a Kubernetes Secret mounted into a Job) must hold >= 32 bytes of randomness and
// goes through HKDF-SHA256 without stretching. The derived 256-bit key encrypts the master key
// with AES-256-GCM, bound to the repository id. A wrong secret fails with PERMISSION_DENIED
// and nothing else is revealed. Thread-safe.
#pragma once

#include <cstdint>
#include <string>

#include "backup/repo/crypto.h"
#include "common/status.h"

namespace vdisk::backup {

struct RepoSecret {
  enum class Kind { kPassword, kKeyFile };
  Kind kind = Kind::kPassword;
  std::string value;  // never logged
  std::string origin;  // where it came from ("--password-file /x"), for messages
};

struct ScryptParams {
  uint64_t n = 1 << 15;
  uint32_t r = 8;
  uint32_t p = 1;
};

// INVALID_ARGUMENT for an empty password or a key file shorter than 32 bytes.
Status ValidateSecret(const RepoSecret& secret);

// The JSON text of a key object.
StatusOr<std::string> WrapKeys(const RepoKeys& keys, const RepoSecret& secret,
                               const std::string& repo_id, ScryptParams params = {});

// PERMISSION_DENIED if `secret` does not open this key object; INVALID_ARGUMENT/DATA_LOSS if
// the object is malformed.
StatusOr<RepoKeys> UnwrapKeys(const std::string& key_object, const RepoSecret& secret,
                              const std::string& repo_id);

}  // namespace vdisk::backup
