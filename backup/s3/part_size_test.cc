#include "backup/s3/part_size.h"

#include <gtest/gtest.h>

namespace vdisk::backup::s3 {
namespace {

constexpr uint64_t MiB = 1ull << 20, GiB = 1ull << 30, TiB = 1ull << 40;

TEST(PartSize, SmallObjectsUseThePreferredSizeButNeverBelowFiveMiB) {
  EXPECT_EQ(PartSizeFor(0).value(), 8 * MiB);
  EXPECT_EQ(PartSizeFor(100 * MiB, 1 * MiB).value(), 5 * MiB);
  EXPECT_EQ(PartSizeFor(64 * MiB, 16 * MiB).value(), 16 * MiB);
}

TEST(PartSize, LargeObjectsFitInTenThousandParts) {
  for (uint64_t size : {80 * GiB, 100 * GiB, 1 * TiB, 5 * TiB - 1, 5 * TiB}) {
    uint64_t part = PartSizeFor(size).value();
    EXPECT_LE(PartCount(size, part), kMaxParts) << size;
    EXPECT_GE(part, kMinPartSize);
    EXPECT_LE(part, kMaxPartSize);
    EXPECT_EQ(part % MiB, 0u);
  }
  // 100 GiB / 10,000 = 10.24 MiB -> rounded up to 11 MiB.
  EXPECT_EQ(PartSizeFor(100 * GiB).value(), 11 * MiB);
}

TEST(PartSize, RejectsObjectsAboveFiveTiB) {
  EXPECT_EQ(PartSizeFor(5 * TiB + 1).status().code(), absl::StatusCode::kOutOfRange);
}

TEST(PartSize, PartCount) {
  EXPECT_EQ(PartCount(0, 5 * MiB), 1u);
  EXPECT_EQ(PartCount(5 * MiB, 5 * MiB), 1u);
  EXPECT_EQ(PartCount(5 * MiB + 1, 5 * MiB), 2u);
}

}  // namespace
}  // namespace vdisk::backup::s3
