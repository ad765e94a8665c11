// FIEMAP maps: the pure diff of two extent maps, and real files on the build machine's file
// system (reflinked files on XFS are covered in tests/blockdev/xfs_test.cc).
#include "blockdev/uring/fiemap_diff.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fiemap.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace vdisk::blockdev::uring {
namespace {

constexpr uint64_t K = 4096;

FileExtent Mapped(uint64_t logical, uint64_t physical, uint64_t length, uint32_t flags = 0) {
  return {logical, physical, length, flags};
}

TEST(DiffExtentMaps, SharedBlocksAreSameEverythingElseDiffers) {
  // base: [0,4K) at P100, [8K,16K) at P200 (shared), [20K,24K) unwritten
  // target: [0,4K) at P300 (rewritten), [8K,12K) at P200 (still shared), [12K,16K) at P400,
  //         [24K,28K) at P500 (new)
  std::vector<FileExtent> base = {Mapped(0, 100 * K, K), Mapped(2 * K, 200 * K, 2 * K),
                                  Mapped(5 * K, 900 * K, K, FIEMAP_EXTENT_UNWRITTEN)};
  std::vector<FileExtent> target = {Mapped(0, 300 * K, K), Mapped(2 * K, 200 * K, K),
                                    Mapped(3 * K, 400 * K, K), Mapped(6 * K, 500 * K, K)};
  ExtentList diff = DiffExtentMaps(base, target, 8 * K);
  EXPECT_EQ(diff, (ExtentList{{0, K}, {3 * K, K}, {6 * K, K}}));
}

TEST(DiffExtentMaps, ZeroesMatchAcrossHolesAndUnwritten) {
  std::vector<FileExtent> base = {Mapped(0, 10 * K, 4 * K, FIEMAP_EXTENT_UNWRITTEN)};
  std::vector<FileExtent> target = {};
  EXPECT_TRUE(DiffExtentMaps(base, target, 8 * K).empty());
}

TEST(DiffExtentMaps, UnknownPhysicalAndShiftedMappingsDiffer) {
  // Same physical block but at another logical offset is different content placement.
  std::vector<FileExtent> base = {Mapped(0, 10 * K, K), Mapped(K, 20 * K, K, FIEMAP_EXTENT_DELALLOC)};
  std::vector<FileExtent> target = {Mapped(K, 10 * K, K), Mapped(0, 0, 0)};
  target = {Mapped(0, 11 * K, K), Mapped(K, 20 * K, K, FIEMAP_EXTENT_DELALLOC)};
  EXPECT_EQ(DiffExtentMaps(base, target, 2 * K), (ExtentList{{0, 2 * K}}));
}

TEST(DiffExtentMaps, DifferentLengthsCompareAgainstZeroes) {
  std::vector<FileExtent> base = {Mapped(0, 10 * K, K)};
  std::vector<FileExtent> target = {Mapped(0, 10 * K, K), Mapped(3 * K, 50 * K, K)};
  EXPECT_EQ(DiffExtentMaps(base, target, 4 * K), (ExtentList{{3 * K, K}}));
}

class FiemapFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/vdisk-fiemap-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_;
};

TEST_F(FiemapFileTest, AllocatedExtentsOfASparseFile) {
  const std::string path = dir_ + "/a.img";
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::ftruncate(fd, 64 << 20), 0);
  std::vector<char> data(1 << 20, 'x');
  ASSERT_EQ(::pwrite(fd, data.data(), data.size(), 8 << 20), 1 << 20);
  ASSERT_EQ(::pwrite(fd, data.data(), data.size(), 40 << 20), 1 << 20);
  // Preallocated but unwritten: allocated on disk, not data.
  ASSERT_EQ(::fallocate(fd, FALLOC_FL_KEEP_SIZE, 50 << 20, 1 << 20), 0);
  ::close(fd);
  auto alloc = AllocatedExtents(path);  // FIEMAP_FLAG_SYNC flushes the delayed allocation
  ASSERT_TRUE(alloc.ok()) << alloc.status();
  EXPECT_EQ(*alloc, (ExtentList{{8 << 20, 1 << 20}, {40 << 20, 1 << 20}}));
  auto raw = ReadFiemap(path);
  ASSERT_TRUE(raw.ok());
  bool saw_unwritten = false;
  for (const auto& e : *raw) saw_unwritten |= e.unwritten();
  EXPECT_TRUE(saw_unwritten);

  // Two independent copies (no shared blocks) differ wherever either has data.
  const std::string copy = dir_ + "/b.img";
  std::filesystem::copy_file(path, copy);
  auto diff = DifferingExtents(path, copy);
  ASSERT_TRUE(diff.ok()) << diff.status();
  ASSERT_FALSE(diff->empty());
  EXPECT_GE(TotalBytes(*diff), 2u << 20);
  EXPECT_EQ(DifferingExtents(path, path).value(), ExtentList{}) << "a file equals itself";
  EXPECT_EQ(AllocatedExtents(dir_ + "/missing").status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace vdisk::blockdev::uring
