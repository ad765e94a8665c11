#include "backup/repo/pack_format.h"

#include <gtest/gtest.h>

namespace vdisk::backup {
namespace {

std::vector<PackEntry> Entries(const RepoKeys& k, int n) {
  std::vector<PackEntry> out;
  uint64_t off = 0;
  for (int i = 0; i < n; ++i) {
    PackEntry e;
    e.id = ComputeChunkId(k, std::to_string(i));
    e.offset = off;
    e.length = 1000 + i;
    e.raw_length = 1 << 20;
    off += e.length;
    out.push_back(e);
  }
  return out;
}

TEST(PackFormat, TailRoundTrip) {
  RepoKeys k = RepoKeys::Generate();
  auto entries = Entries(k, 5);
  std::string tail = EncodePackTail(k, "pack-a", entries);
  uint32_t len = ParsePackFooter(std::string_view(tail).substr(tail.size() - kPackFooterBytes)).value();
  EXPECT_EQ(len + kPackFooterBytes, tail.size());
  auto back = DecodePackTrailer(k, "pack-a", std::string_view(tail).substr(0, len)).value();
  EXPECT_EQ(back, entries);
  // Bound to the pack name.
  EXPECT_EQ(DecodePackTrailer(k, "pack-b", std::string_view(tail).substr(0, len)).status().code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(ParsePackFooter("0123456789ab").status().code(), absl::StatusCode::kDataLoss);
}

TEST(PackFormat, IndexRoundTripAndTamper) {
  RepoKeys k = RepoKeys::Generate();
  std::vector<PackRecord> packs = {{"p1", 5000, Entries(k, 3)}, {"p2", 9000, Entries(k, 0)}};
  std::string data = EncodeIndex(k, "idx", packs);
  EXPECT_EQ(DecodeIndex(k, "idx", data).value(), packs);
  EXPECT_EQ(DecodeIndex(k, "other", data).status().code(), absl::StatusCode::kDataLoss);
  data[20] ^= 1;
  EXPECT_EQ(DecodeIndex(k, "idx", data).status().code(), absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace vdisk::backup
