#include "blockdev/credential_digest.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <array>
#include <cstdint>
#include <cstdlib>

namespace vdisk::blockdev {

namespace {

const std::array<unsigned char, 32>& ProcessKey() {
  static const std::array<unsigned char, 32> key = [] {
    std::array<unsigned char, 32> k{};
    if (RAND_bytes(k.data(), static_cast<int>(k.size())) != 1) std::abort();  // no entropy: unsafe to go on
    return k;
  }();
  return key;
}

void AppendPart(std::string* out, std::string_view part) {
  const uint64_t n = part.size();
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  out->append(part.data(), part.size());
}

std::string Hmac(const std::string& encoded) {
  const auto& key = ProcessKey();
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(encoded.data()), encoded.size(), md, &len);
  return std::string(reinterpret_cast<const char*>(md), len);
}

}  // namespace

std::string CredentialDigest(std::initializer_list<std::string_view> parts) {
  std::string encoded;
  for (std::string_view p : parts) AppendPart(&encoded, p);
  std::string out = Hmac(encoded);
  OPENSSL_cleanse(encoded.data(), encoded.size());
  return out;
}

std::string CredentialDigest(const std::map<std::string, std::string>& secrets) {
  std::string encoded;
  for (const auto& [k, v] : secrets) {
    AppendPart(&encoded, k);
    AppendPart(&encoded, v);
  }
  std::string out = Hmac(encoded);
  OPENSSL_cleanse(encoded.data(), encoded.size());
  return out;
}

}  // namespace vdisk::blockdev
