#include "backup/repo/chunk_codec.h"

#include <gtest/gtest.h>

#include <random>

namespace vdisk::backup {
namespace {

std::string RandomData(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

TEST(ChunkCodec, CompressibleRoundTripShrinks) {
  RepoKeys k = RepoKeys::Generate();
  std::string data(1 << 20, 'a');
  for (size_t i = 0; i < data.size(); i += 4096) data[i] = static_cast<char>(i / 4096);
  ChunkId id = ComputeChunkId(k, data);
  std::string blob;
  EncodeChunk(k, id, data, 1, &blob);
  EXPECT_LT(blob.size(), data.size() / 10);
  std::string out;
  ASSERT_TRUE(DecodeChunk(k, id, blob, data.size(), &out).ok());
  EXPECT_EQ(out, data);
}

TEST(ChunkCodec, IncompressibleStoredRawWithSmallOverhead) {
  RepoKeys k = RepoKeys::Generate();
  std::string data = RandomData(1 << 20, 7);
  ChunkId id = ComputeChunkId(k, data);
  std::string blob;
  EncodeChunk(k, id, data, 1, &blob);
  EXPECT_EQ(blob.size(), data.size() + 1 + kSealOverhead);
  std::string out;
  ASSERT_TRUE(DecodeChunk(k, id, blob, data.size(), &out).ok());
  EXPECT_EQ(out, data);
}

TEST(ChunkCodec, CorruptionWrongIdAndWrongKeyAreDataLoss) {
  RepoKeys k = RepoKeys::Generate();
  std::string data = RandomData(4096, 1);
  ChunkId id = ComputeChunkId(k, data);
  std::string blob;
  EncodeChunk(k, id, data, 1, &blob);
  std::string out;
  std::string bad = blob;
  bad[100] ^= 0x40;
  EXPECT_EQ(DecodeChunk(k, id, bad, data.size(), &out).code(), absl::StatusCode::kDataLoss);
  ChunkId other = ComputeChunkId(k, "other");
  EXPECT_EQ(DecodeChunk(k, other, blob, data.size(), &out).code(), absl::StatusCode::kDataLoss);
  RepoKeys k2 = RepoKeys::Generate();
  EXPECT_EQ(DecodeChunk(k2, id, blob, data.size(), &out).code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(DecodeChunk(k, id, blob, data.size() + 1, &out).code(), absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace vdisk::backup
