#include "backup/repo/crypto.h"

#include <gtest/gtest.h>

namespace vdisk::backup {
namespace {

TEST(Crypto, SealOpenRoundTripAndTamperDetection) {
  RepoKeys k = RepoKeys::Generate();
  std::string sealed = Seal(k.data_key, "hello world", "aad-1");
  EXPECT_EQ(sealed.size(), 11 + kSealOverhead);
  EXPECT_EQ(Open(k.data_key, sealed, "aad-1").value(), "hello world");
  EXPECT_EQ(Open(k.data_key, sealed, "aad-2").status().code(), absl::StatusCode::kDataLoss);
  std::string flipped = sealed;
  flipped[kNonceBytes + 3] ^= 1;
  EXPECT_EQ(Open(k.data_key, flipped, "aad-1").status().code(), absl::StatusCode::kDataLoss);
  RepoKeys other = RepoKeys::Generate();
  EXPECT_EQ(Open(other.data_key, sealed, "aad-1").status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(Open(k.data_key, "short", "").status().code(), absl::StatusCode::kDataLoss);
}

TEST(Crypto, SealUsesFreshNonces) {
  RepoKeys k = RepoKeys::Generate();
  EXPECT_NE(Seal(k.data_key, "same", ""), Seal(k.data_key, "same", ""));
}

TEST(Crypto, ChunkIdsAreKeyedAndDeterministic) {
  RepoKeys a = RepoKeys::Generate(), b = RepoKeys::Generate();
  EXPECT_EQ(ComputeChunkId(a, "data"), ComputeChunkId(a, "data"));
  EXPECT_NE(ComputeChunkId(a, "data"), ComputeChunkId(b, "data"));
  EXPECT_NE(ComputeChunkId(a, "data"), ComputeChunkId(a, "date"));
  ChunkId id = ComputeChunkId(a, "x");
  EXPECT_EQ(ChunkIdFromHex(id.hex()).value(), id);
  EXPECT_FALSE(ChunkIdFromHex("zz").ok());
}

TEST(Crypto, HmacSha256KnownAnswer) {
  // RFC 4231 test case 2.
  EXPECT_EQ(ChunkId{}.hex().size(), 64u);
  std::string mac = HmacSha256Raw("Jefe", "what do ya want for nothing?");
  ChunkId id;
  std::memcpy(id.bytes.data(), mac.data(), 32);
  EXPECT_EQ(id.hex(), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(Crypto, Base64RoundTrip) {
  for (std::string s : std::vector<std::string>{"", "a", "ab", "abc", "abcd", std::string("\0\xff\x10", 3)}) {
    EXPECT_EQ(Base64Decode(Base64Encode(s)).value(), s);
  }
  EXPECT_EQ(Base64Encode("abc"), "YWJj");
  EXPECT_FALSE(Base64Decode("abc").ok());
}

}  // namespace
}  // namespace vdisk::backup
