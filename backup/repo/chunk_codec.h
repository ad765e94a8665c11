// One chunk as stored in a pack ("blob"): AES-256-GCM over (codec byte || payload), where the
// payload is the chunk compressed with zstd (codec 1) or, when that does not shrink it, the raw
// bytes (codec 0). The associated data binds the blob to its chunk id, so a blob moved under
// another id fails to open. Decoding re-computes the keyed hash: a blob that decrypts but does
// not hash to its id is DATA_LOSS too. Thread-safe (per-thread zstd contexts).
#pragma once

#include <string>
#include <string_view>

#include "backup/repo/crypto.h"
#include "common/status.h"

namespace vdisk::backup {

// Appends the blob for `data` (whose id is `id`) to *blob.
void EncodeChunk(const RepoKeys& keys, const ChunkId& id, std::string_view data, int zstd_level,
                 std::string* blob);

// Decodes `blob` into *data (resized to raw_length) and verifies it hashes to `id`.
// DATA_LOSS on any mismatch (tampering, corruption, wrong key, wrong length).
Status DecodeChunk(const RepoKeys& keys, const ChunkId& id, std::string_view blob,
                   uint32_t raw_length, std::string* data);

}  // namespace vdisk::backup
