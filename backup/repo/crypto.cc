#include "backup/repo/crypto.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <memory>
#include <stdexcept>

#include "absl/strings/str_cat.h"
#include "backup/s3/sigv4.h"

namespace vdisk::backup {

namespace {

struct CtxDeleter {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};

// One cipher context per thread, reused across calls.
EVP_CIPHER_CTX* ThreadCtx() {
  thread_local std::unique_ptr<EVP_CIPHER_CTX, CtxDeleter> ctx(EVP_CIPHER_CTX_new());
  return ctx.get();
}

int HexVal(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string ChunkId::hex() const { return s3::HexEncode(view()); }

StatusOr<ChunkId> ChunkIdFromHex(std::string_view hex) {
  ChunkId id;
  if (hex.size() != 64) return absl::InvalidArgumentError("chunk id must be 64 hex digits");
  for (size_t i = 0; i < 32; ++i) {
    int hi = HexVal(hex[2 * i]), lo = HexVal(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return absl::InvalidArgumentError("chunk id must be 64 hex digits");
    id.bytes[i] = static_cast<uint8_t>(hi * 16 + lo);
  }
  return id;
}

RepoKeys RepoKeys::Generate() {
  RepoKeys k;
  RandomBytes(k.data_key.data(), k.data_key.size());
  RandomBytes(k.id_key.data(), k.id_key.size());
  return k;
}

ChunkId ComputeChunkId(const RepoKeys& keys, std::string_view data) {
  ChunkId id;
  unsigned int len = 0;
  HMAC(EVP_sha256(), keys.id_key.data(), static_cast<int>(keys.id_key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), id.bytes.data(), &len);
  return id;
}

void RandomBytes(void* out, size_t n) {
  if (RAND_bytes(static_cast<unsigned char*>(out), static_cast<int>(n)) != 1)
    std::abort();  // no entropy: never continue with predictable keys or nonces
}

std::string RandomHex(size_t bytes) {
  std::string raw(bytes, '\0');
  RandomBytes(raw.data(), raw.size());
  return s3::HexEncode(raw);
}

void SealAppend(const std::array<uint8_t, 32>& key, std::string_view plaintext,
                std::string_view aad, std::string* out) {
  EVP_CIPHER_CTX* ctx = ThreadCtx();
  const size_t base = out->size();
  out->resize(base + kNonceBytes + plaintext.size() + kTagBytes);
  auto* p = reinterpret_cast<unsigned char*>(out->data() + base);
  RandomBytes(p, kNonceBytes);
  int len = 0;
  EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), nullptr, nullptr, nullptr);
  EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, kNonceBytes, nullptr);
  EVP_EncryptInit_ex(ctx, nullptr, nullptr, key.data(), p);
  if (!aad.empty())
    EVP_EncryptUpdate(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(aad.data()),
                      static_cast<int>(aad.size()));
  unsigned char* ct = p + kNonceBytes;
  size_t done = 0;
  // EVP lengths are int: feed large inputs in pieces.
  while (done < plaintext.size()) {
    int piece = static_cast<int>(std::min<size_t>(plaintext.size() - done, 1u << 30));
    EVP_EncryptUpdate(ctx, ct + done, &len,
                      reinterpret_cast<const unsigned char*>(plaintext.data() + done), piece);
    done += static_cast<size_t>(len);
  }
  EVP_EncryptFinal_ex(ctx, ct + done, &len);
  EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, kTagBytes, ct + plaintext.size());
}

std::string Seal(const std::array<uint8_t, 32>& key, std::string_view plaintext,
                 std::string_view aad) {
  std::string out;
  SealAppend(key, plaintext, aad, &out);
  return out;
}

Status OpenInto(const std::array<uint8_t, 32>& key, std::string_view sealed, std::string_view aad,
                std::string* plaintext) {
  if (sealed.size() < kSealOverhead)
    return absl::DataLossError("sealed data shorter than nonce and tag");
  EVP_CIPHER_CTX* ctx = ThreadCtx();
  const auto* p = reinterpret_cast<const unsigned char*>(sealed.data());
  const size_t ct_len = sealed.size() - kSealOverhead;
  plaintext->resize(ct_len);
  int len = 0;
  EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), nullptr, nullptr, nullptr);
  EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, kNonceBytes, nullptr);
  EVP_DecryptInit_ex(ctx, nullptr, nullptr, key.data(), p);
  if (!aad.empty())
    EVP_DecryptUpdate(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(aad.data()),
                      static_cast<int>(aad.size()));
  auto* out = reinterpret_cast<unsigned char*>(plaintext->data());
  size_t done = 0;
  while (done < ct_len) {
    int piece = static_cast<int>(std::min<size_t>(ct_len - done, 1u << 30));
    EVP_DecryptUpdate(ctx, out + done, &len, p + kNonceBytes + done, piece);
    done += static_cast<size_t>(len);
  }
  EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, kTagBytes,
                      const_cast<unsigned char*>(p + kNonceBytes + ct_len));
  if (EVP_DecryptFinal_ex(ctx, out + done, &len) != 1) {
    plaintext->clear();
    return absl::DataLossError("authentication failed (corrupted data or wrong key)");
  }
  return Status();
}

StatusOr<std::string> Open(const std::array<uint8_t, 32>& key, std::string_view sealed,
                           std::string_view aad) {
  std::string out;
  RETURN_IF_ERROR(OpenInto(key, sealed, aad, &out));
  return out;
}

std::string Base64Encode(std::string_view data) {
  std::string out(4 * ((data.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(data.data()),
                          static_cast<int>(data.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

StatusOr<std::string> Base64Decode(std::string_view b64) {
  std::string in;
  for (char c : b64)
    if (c != '\n' && c != '\r' && c != ' ') in.push_back(c);
  if (in.size() % 4 != 0) return absl::InvalidArgumentError("bad base64 length");
  std::string out(in.size() / 4 * 3 + 1, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()),
                          static_cast<int>(in.size()));
  if (n < 0) return absl::InvalidArgumentError("bad base64");
  size_t pad = 0;
  if (!in.empty() && in.back() == '=') ++pad;
  if (in.size() > 1 && in[in.size() - 2] == '=') ++pad;
  out.resize(static_cast<size_t>(n) - pad);
  return out;
}

std::string Sha256Raw(std::string_view data) {
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), md);
  return std::string(reinterpret_cast<char*>(md), sizeof md);
}

std::string HmacSha256Raw(std::string_view key, std::string_view data) {
  return s3::HmacSha256(key, data);
}

}  // namespace vdisk::backup
