// The read-and-compare change map on real files (io_uring file devices): holes vs written
// zeroes, a shorter base, alignment, cancellation, bad options.
#include "snapshot/changed_blocks.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstring>

#include "blockdev/aligned_buffer.h"
#include "blockdev/sync_io.h"
#include "blockdev/uring/uring_device.h"
#include "common/fs.h"

namespace vdisk::snapshot {
namespace {

using blockdev::Extent;
using blockdev::ExtentList;

constexpr uint64_t kMiB = 1 << 20;

class CompareDevicesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/vdisk-cbt-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::RemoveAll(dir_).IgnoreError(); }
  std::unique_ptr<blockdev::Device> Make(const std::string& name, uint64_t size) {
    blockdev::uring::FileDeviceOptions o;
    o.create = true;
    o.create_size = size;
    auto d = blockdev::uring::OpenFileDevice(dir_ + "/" + name, o);
    EXPECT_TRUE(d.ok()) << d.status();
    return d.ok() ? std::move(*d) : nullptr;
  }
  void Fill(blockdev::Device& d, uint64_t off, uint64_t len, int byte) {
    blockdev::AlignedBuffer buf(len);
    std::memset(buf.data(), byte, len);
    ASSERT_TRUE(blockdev::WriteAt(d, off, buf.span()).ok());
  }
  std::string dir_;
};

TEST_F(CompareDevicesTest, FindsExactlyTheDifferences) {
  auto a = Make("a", 16 * kMiB);
  auto b = Make("b", 16 * kMiB);
  Fill(*a, 0, 4 * kMiB, 7);
  Fill(*b, 0, 4 * kMiB, 7);
  Fill(*b, kMiB + 8192, 4096, 8);   // one changed block in shared data
  Fill(*b, 8 * kMiB, 64 * 1024, 0);  // written zeroes where a has a hole: same content
  Fill(*a, 12 * kMiB, 4096, 9);      // data in a, hole in b: differs
  auto m = CompareDevices(*a, *b);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->source, ChangeMapSource::kReadCompare);
  EXPECT_EQ(m->size_bytes, 16 * kMiB);
  EXPECT_EQ(m->extents, (ExtentList{{kMiB + 8192, 4096}, {12 * kMiB, 4096}}));
  // Coarser granularity aligns outward.
  ChangedBlocksOptions o;
  o.granularity = 64 * 1024;
  auto coarse = CompareDevices(*a, *b, o);
  ASSERT_TRUE(coarse.ok());
  EXPECT_EQ(coarse->extents, (ExtentList{{kMiB, 64 * 1024}, {12 * kMiB, 64 * 1024}}));
  // Identical devices: nothing.
  auto same = CompareDevices(*a, *a);
  ASSERT_TRUE(same.ok());
  EXPECT_TRUE(same->extents.empty());
}

TEST_F(CompareDevicesTest, ShorterBaseReadsAsZeroesBeyondItsEnd) {
  auto a = Make("a", 4 * kMiB);
  auto b = Make("b", 8 * kMiB);
  Fill(*a, 0, kMiB, 1);
  Fill(*b, 0, kMiB, 1);
  Fill(*b, 6 * kMiB, 4096, 2);  // beyond a's end: changed
  Fill(*b, 7 * kMiB, 4096, 0);  // zeroes beyond a's end: same as nothing
  auto m = CompareDevices(*a, *b);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->extents, (ExtentList{{6 * kMiB, 4096}}));
}

TEST_F(CompareDevicesTest, CancelAndBadOptions) {
  auto a = Make("a", 8 * kMiB);
  auto b = Make("b", 8 * kMiB);
  Fill(*b, 0, 8 * kMiB, 3);
  std::atomic<bool> cancel{true};
  ChangedBlocksOptions o;
  o.cancel = &cancel;
  EXPECT_EQ(CompareDevices(*a, *b, o).status().code(), absl::StatusCode::kCancelled);
  ChangedBlocksOptions bad;
  bad.granularity = 3000;
  EXPECT_EQ(CompareDevices(*a, *b, bad).status().code(), absl::StatusCode::kInvalidArgument);
  bad.granularity = 4096;
  bad.chunk_bytes = 6000;
  EXPECT_EQ(CompareDevices(*a, *b, bad).status().code(), absl::StatusCode::kInvalidArgument);
  bad.chunk_bytes = kMiB;
  bad.queue_depth = 0;
  EXPECT_EQ(CompareDevices(*a, *b, bad).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace vdisk::snapshot
