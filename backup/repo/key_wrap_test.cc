#include "backup/repo/key_wrap.h"

#include <gtest/gtest.h>

namespace vdisk::backup {
namespace {

// Small scrypt cost keeps the unit test fast; the format records the parameters.
constexpr ScryptParams kFast{1 << 10, 8, 1};

RepoSecret Password(std::string v) {
  return RepoSecret{RepoSecret::Kind::kPassword, std::move(v), "test password"};
}

TEST(KeyWrap, PasswordRoundTrip) {
  RepoKeys keys = RepoKeys::Generate();
  std::string obj = WrapKeys(keys, Password("correct horse"), "repo-1", kFast).value();
  EXPECT_EQ(obj.find("correct horse"), std::string::npos);
  RepoKeys back = UnwrapKeys(obj, Password("correct horse"), "repo-1").value();
  EXPECT_EQ(back.data_key, keys.data_key);
  EXPECT_EQ(back.id_key, keys.id_key);
}

TEST(KeyWrap, WrongPasswordIsPermissionDenied) {
  RepoKeys keys = RepoKeys::Generate();
  std::string obj = WrapKeys(keys, Password("right"), "repo-1", kFast).value();
  auto r = UnwrapKeys(obj, Password("wrong"), "repo-1");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_NE(std::string(r.status().message()).find("wrong repository password"), std::string::npos);
}

TEST(KeyWrap, KeyObjectIsBoundToItsRepository) {
  RepoKeys keys = RepoKeys::Generate();
  std::string obj = WrapKeys(keys, Password("pw"), "repo-1", kFast).value();
  EXPECT_EQ(UnwrapKeys(obj, Password("pw"), "repo-2").status().code(),
            absl::StatusCode::kPermissionDenied);
}

TEST(KeyWrap, KeyFileUsesHkdfAndNeedsEnoughBytes) {
  RepoKeys keys = RepoKeys::Generate();
  RepoSecret kf{RepoSecret::Kind::kKeyFile, std::string(48, 'k'), "key file"};
  std::string obj = WrapKeys(keys, kf, "r", kFast).value();
  EXPECT_NE(obj.find("hkdf-sha256"), std::string::npos);
  EXPECT_EQ(UnwrapKeys(obj, kf, "r").value().data_key, keys.data_key);
  // A password with the same text does not open a key-file slot.
  EXPECT_EQ(UnwrapKeys(obj, Password(std::string(48, 'k')), "r").status().code(),
            absl::StatusCode::kPermissionDenied);
  RepoSecret short_kf{RepoSecret::Kind::kKeyFile, "short", "key file"};
  EXPECT_EQ(WrapKeys(keys, short_kf, "r", kFast).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(KeyWrap, EmptyPasswordAndGarbageObjects) {
  RepoKeys keys = RepoKeys::Generate();
  EXPECT_EQ(WrapKeys(keys, Password(""), "r", kFast).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(UnwrapKeys("not json", Password("x"), "r").status().code(),
            absl::StatusCode::kDataLoss);
}

// Found by backup_objects_fuzz: a key object from a hostile bucket with fields of the wrong JSON
// type was an uncaught exception (the process aborted) instead of DATA_LOSS.
TEST(KeyWrap, FieldsOfTheWrongTypeAreDataLoss) {
  RepoSecret kf{RepoSecret::Kind::kKeyFile, std::string(48, 'k'), "key file"};
  for (const char* obj : {R"({"kdf": "hkdf-sha256", "salt": "AAAA", "wrapped": 2})",
                          R"({"kdf": 7, "salt": "AAAA", "wrapped": "AAAA"})",
                          R"({"kdf": "hkdf-sha256", "salt": ["AAAA"], "wrapped": "AAAA"})"}) {
    EXPECT_EQ(UnwrapKeys(obj, kf, "r").status().code(), absl::StatusCode::kDataLoss) << obj;
  }
  for (const char* obj : {R"({"kdf": "scrypt", "salt": "AA==", "wrapped": "AA==", "scrypt": {"n": "x"}})",
                          R"({"kdf": "scrypt", "salt": "AA==", "wrapped": "AA==", "scrypt": [1]})",
                          R"({"kdf": "scrypt", "salt": "AA==", "wrapped": "AA==", "scrypt": {"r": -8}})",
                          R"({"kdf": "scrypt", "salt": "AA==", "wrapped": "AA==", "scrypt": {"p": 4294967297}})"}) {
    EXPECT_EQ(UnwrapKeys(obj, Password("pw"), "r").status().code(), absl::StatusCode::kDataLoss) << obj;
  }
}

}  // namespace
}  // namespace vdisk::backup
