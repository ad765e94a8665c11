// The repository's cryptographic primitives on OpenSSL 3: chunk ids (HMAC-SHA256 under the
// repository's id key), authenticated encryption (AES-256-GCM, random 96-bit nonce, caller's
// associated data), randomness and base64/hex helpers. Thread-safe (no shared state).
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace vdisk::backup {

// A chunk's identity: HMAC-SHA256(id_key, plaintext). Keyed, so ids reveal nothing about
// content to someone without the key (no confirmation-of-file attacks on the store).
struct ChunkId {
  std::array<uint8_t, 32> bytes{};
  bool operator==(const ChunkId&) const = default;
  auto operator<=>(const ChunkId&) const = default;
  std::string hex() const;
  std::string_view view() const {
    return std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  }
};

struct ChunkIdHash {
  size_t operator()(const ChunkId& id) const {
    size_t h;
    std::memcpy(&h, id.bytes.data(), sizeof h);  // already uniformly distributed
    return h;
  }
};

StatusOr<ChunkId> ChunkIdFromHex(std::string_view hex);

// The repository master key material (64 random bytes, never stored unwrapped).
struct RepoKeys {
  std::array<uint8_t, 32> data_key{};  // AES-256-GCM for chunks, indexes, manifests
  std::array<uint8_t, 32> id_key{};    // HMAC-SHA256 for chunk ids
  static RepoKeys Generate();
};

ChunkId ComputeChunkId(const RepoKeys& keys, std::string_view data);

inline constexpr size_t kNonceBytes = 12;
inline constexpr size_t kTagBytes = 16;
inline constexpr size_t kSealOverhead = kNonceBytes + kTagBytes;

// Appends nonce || ciphertext || tag of `plaintext` to *out.
void SealAppend(const std::array<uint8_t, 32>& key, std::string_view plaintext,
                std::string_view aad, std::string* out);
std::string Seal(const std::array<uint8_t, 32>& key, std::string_view plaintext,
                 std::string_view aad);
// Decrypts and authenticates; DATA_LOSS if the data, nonce, tag or aad do not match.
Status OpenInto(const std::array<uint8_t, 32>& key, std::string_view sealed, std::string_view aad,
                std::string* plaintext);
StatusOr<std::string> Open(const std::array<uint8_t, 32>& key, std::string_view sealed,
                           std::string_view aad);

void RandomBytes(void* out, size_t n);
std::string RandomHex(size_t bytes);

std::string Base64Encode(std::string_view data);
StatusOr<std::string> Base64Decode(std::string_view b64);

std::string Sha256Raw(std::string_view data);
std::string HmacSha256Raw(std::string_view key, std::string_view data);

}  // namespace vdisk::backup
