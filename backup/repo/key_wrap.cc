#include "backup/repo/key_wrap.h"

#include <cstring>
#include <limits>
#include <type_traits>

#include <openssl/evp.h>
#include <openssl/kdf.h>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"

namespace vdisk::backup {

namespace {

constexpr const char* kWrapAad = "vdisk-backup-repo-key-v1|";

StatusOr<std::array<uint8_t, 32>> DeriveKek(const RepoSecret& secret, const std::string& salt,
                                            const std::string& kdf, const ScryptParams& sp) {
  std::array<uint8_t, 32> kek{};
  if (kdf == "scrypt") {
    if (sp.n < 2 || (sp.n & (sp.n - 1)) != 0 || sp.n > (1u << 22) || sp.r == 0 || sp.r > 32 ||
        sp.p == 0 || sp.p > 16)
      return absl::InvalidArgumentError("key object: unreasonable scrypt parameters");
    uint64_t maxmem = 256ull * sp.n * sp.r + (64ull << 20);
    if (EVP_PBE_scrypt(secret.value.data(), secret.value.size(),
                       reinterpret_cast<const unsigned char*>(salt.data()), salt.size(), sp.n,
                       sp.r, sp.p, maxmem, kek.data(), kek.size()) != 1)
      return absl::InternalError("scrypt failed");
  } else if (kdf == "hkdf-sha256") {
    // HKDF (RFC 5869) with L = 32: one expand block.
    std::string prk = HmacSha256Raw(salt, secret.value);
    std::string okm = HmacSha256Raw(prk, std::string("vdisk-backup-kek") + '\x01');
    std::memcpy(kek.data(), okm.data(), kek.size());
  } else {
    return absl::InvalidArgumentError(absl::StrCat("key object: unknown kdf '", kdf, "'"));
  }
  return kek;
}

std::string KdfFor(const RepoSecret& s) {
  return s.kind == RepoSecret::Kind::kPassword ? "scrypt" : "hkdf-sha256";
}

}  // namespace

Status ValidateSecret(const RepoSecret& secret) {
  if (secret.kind == RepoSecret::Kind::kPassword && secret.value.empty())
    return absl::InvalidArgumentError(
        absl::StrCat("the repository password is empty (", secret.origin, ")"));
  if (secret.kind == RepoSecret::Kind::kKeyFile && secret.value.size() < 32)
    return absl::InvalidArgumentError(absl::StrCat(
        "a repository key file must hold at least 32 bytes (", secret.origin, " has ",
        secret.value.size(), "); generate one with: head -c 48 /dev/urandom | base64"));
  return Status();
}

StatusOr<std::string> WrapKeys(const RepoKeys& keys, const RepoSecret& secret,
                               const std::string& repo_id, ScryptParams params) {
  RETURN_IF_ERROR(ValidateSecret(secret));
  std::string salt(32, '\0');
  RandomBytes(salt.data(), salt.size());
  const std::string kdf = KdfFor(secret);
  ASSIGN_OR_RETURN(auto kek, DeriveKek(secret, salt, kdf, params));
  std::string master(reinterpret_cast<const char*>(keys.data_key.data()), 32);
  master.append(reinterpret_cast<const char*>(keys.id_key.data()), 32);
  std::string sealed = Seal(kek, master, kWrapAad + repo_id);
  nlohmann::json j;
  j["version"] = 1;
  j["kdf"] = kdf;
  if (kdf == "scrypt") {
    j["scrypt"] = {{"n", params.n}, {"r", params.r}, {"p", params.p}};
  }
  j["salt"] = Base64Encode(salt);
  j["wrapped"] = Base64Encode(sealed);
  j["created"] = static_cast<int64_t>(std::time(nullptr));
  return j.dump(2);
}

StatusOr<RepoKeys> UnwrapKeys(const std::string& key_object, const RepoSecret& secret,
                              const std::string& repo_id) {
  nlohmann::json j = nlohmann::json::parse(key_object, nullptr, false);
  auto is_string = [&](const char* k) { return j.contains(k) && j[k].is_string(); };
  if (j.is_discarded() || !j.is_object() || !is_string("kdf") || !is_string("salt") ||
      !is_string("wrapped"))
    return absl::DataLossError("key object is not valid JSON with string kdf/salt/wrapped");
  const std::string kdf = j["kdf"].get<std::string>();
  if (kdf != KdfFor(secret))
    return absl::PermissionDeniedError(absl::StrCat(
        "this key slot opens with a ", kdf == "scrypt" ? "password" : "key file", ", not with ",
        secret.origin));
  ScryptParams sp;
  if (kdf == "scrypt" && j.contains("scrypt")) {
    const nlohmann::json& p = j["scrypt"];
    auto param = [&](const char* k, auto* out) {
      if (!p.contains(k)) return true;
      using T = std::remove_pointer_t<decltype(out)>;
      if (!p[k].is_number_unsigned() || p[k].get<uint64_t>() > std::numeric_limits<T>::max())
        return false;
      *out = static_cast<T>(p[k].get<uint64_t>());
      return true;
    };
    if (!p.is_object() || !param("n", &sp.n) || !param("r", &sp.r) || !param("p", &sp.p))
      return absl::DataLossError("key object's scrypt parameters are not unsigned numbers");
  }
  ASSIGN_OR_RETURN(std::string salt, Base64Decode(j["salt"].get<std::string>()));
  ASSIGN_OR_RETURN(std::string sealed, Base64Decode(j["wrapped"].get<std::string>()));
  ASSIGN_OR_RETURN(auto kek, DeriveKek(secret, salt, kdf, sp));
  auto master = Open(kek, sealed, kWrapAad + repo_id);
  if (!master.ok() || master->size() != 64)
    return absl::PermissionDeniedError(
        absl::StrCat("wrong repository password or key (", secret.origin, ")"));
  RepoKeys keys;
  std::memcpy(keys.data_key.data(), master->data(), 32);
  std::memcpy(keys.id_key.data(), master->data() + 32, 32);
  return keys;
}

}  // namespace vdisk::backup
