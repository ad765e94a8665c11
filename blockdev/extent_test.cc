#include "blockdev/extent.h"

#include <gtest/gtest.h>

namespace vdisk::blockdev {
namespace {

TEST(Extent, NormalizeSortsAndMergesAdjacentAndOverlapping) {
  ExtentList in = {{100, 10}, {0, 10}, {10, 5}, {105, 20}, {50, 0}};
  EXPECT_EQ(Normalize(in), (ExtentList{{0, 15}, {100, 25}}));
}

TEST(Extent, ClipKeepsOnlyTheWindow) {
  ExtentList in = {{0, 10}, {20, 10}, {40, 10}};
  EXPECT_EQ(Clip(in, 5, 20), (ExtentList{{5, 5}, {20, 5}}));
}

TEST(Extent, UnionAndTotal) {
  ExtentList u = Union({{0, 10}}, {{5, 10}, {30, 1}});
  EXPECT_EQ(u, (ExtentList{{0, 15}, {30, 1}}));
  EXPECT_EQ(TotalBytes(u), 16u);
}

TEST(Extent, AlignOutRoundsToBlocks) {
  EXPECT_EQ(AlignOut({{1, 1}, {4095, 2}}, 4096), (ExtentList{{0, 8192}}));
}

}  // namespace
}  // namespace vdisk::blockdev
