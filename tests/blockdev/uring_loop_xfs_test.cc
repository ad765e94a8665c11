// The io_uring engine on a real loop device (direct-io) and on a real reflink XFS file system
// made by tests/env/xfs.sh: block-device geometry, bytes both ways, discard / write-zeroes on
// the device reaching the backing file, and the FIEMAP change map of reflinked files.
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "blockdev/aligned_buffer.h"
#include "blockdev/sync_io.h"
#include "blockdev/uring/fiemap_diff.h"
#include "blockdev/uring/uring_device.h"

namespace vdisk::blockdev::uring {
namespace {

constexpr uint64_t kMiB = 1 << 20;

std::string Shell(const std::string& cmd, int* rc = nullptr) {
  std::string out;
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return out;
  std::array<char, 512> buf;
  while (fgets(buf.data(), buf.size(), p)) out += buf.data();
  int status = ::pclose(p);
  if (rc) *rc = WEXITSTATUS(status);
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

std::string SourceDir() {
  const char* s = std::getenv("VDISK_SOURCE_DIR");
  return s ? s : ".";
}

uint64_t AllocatedBytes(const std::string& path) {
  struct stat st {};
  ::stat(path.c_str(), &st);
  return static_cast<uint64_t>(st.st_blocks) * 512;
}

std::vector<char> Pattern(size_t n, uint32_t seed) {
  std::vector<char> v(n);
  std::mt19937 rng(seed);
  for (auto& c : v) c = static_cast<char>(rng());
  return v;
}

class TempDir : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root for losetup / mount";
    char tmpl[] = "/tmp/vdisk-uring-it-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }
  std::string dir_;
};

class LoopDeviceTest : public TempDir {
 protected:
  void SetUp() override {
    TempDir::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    image_ = dir_ + "/backing.img";
    int fd = ::open(image_.c_str(), O_RDWR | O_CREAT, 0644);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::ftruncate(fd, 32 * kMiB), 0);
    ::close(fd);
    int rc = 0;
    loop_ = Shell("losetup --direct-io=on --find --show " + image_, &rc);
    ASSERT_EQ(rc, 0) << "losetup failed (a real loop device is required): " << loop_;
    ASSERT_TRUE(loop_.starts_with("/dev/loop")) << loop_;
  }
  void TearDown() override {
    if (!loop_.empty()) Shell("losetup -d " + loop_);
    TempDir::TearDown();
  }
  std::string image_, loop_;
};

TEST_F(LoopDeviceTest, GeometryBytesAndDeallocation) {
  auto dev = OpenFileDevice(loop_);
  ASSERT_TRUE(dev.ok()) << dev.status();
  const FileDeviceInfo* info = GetFileDeviceInfo(**dev);
  ASSERT_NE(info, nullptr);
  EXPECT_TRUE(info->block_device);
  EXPECT_TRUE(info->direct);
  EXPECT_EQ((*dev)->size(), 32 * kMiB);
  int lbs = 0;
  {
    int fd = ::open(loop_.c_str(), O_RDONLY);
    ASSERT_EQ(::ioctl(fd, BLKSSZGET, &lbs), 0);
    ::close(fd);
  }
  EXPECT_EQ((*dev)->block_size(), static_cast<uint32_t>(lbs));
  // Block devices cannot tell holes: the whole range is reported.
  EXPECT_EQ((*dev)->allocated(kMiB, 2 * kMiB).value(), (ExtentList{{kMiB, 2 * kMiB}}));

  // Engine -> device -> backing file.
  auto pattern = Pattern(4 * kMiB, 11);
  AlignedBuffer buf(4 * kMiB, 4096);
  std::memcpy(buf.data(), pattern.data(), buf.size());
  auto q = (*dev)->open_queue(128);
  ASSERT_TRUE(q.ok());
  std::vector<iovec> iov(64);
  for (int i = 0; i < 64; ++i) {
    iov[i] = {buf.data() + i * 65536, 65536};
    (*q)->writev(8 * kMiB + static_cast<uint64_t>(i) * 65536, &iov[i], 1,
                 [](Status s) { ASSERT_TRUE(s.ok()) << s; });
  }
  (*q)->flush([](Status s) { ASSERT_TRUE(s.ok()) << s; });
  ASSERT_TRUE((*q)->drain().ok());
  {
    std::vector<char> got(4 * kMiB);
    int fd = ::open(image_.c_str(), O_RDONLY);
    ASSERT_EQ(::pread(fd, got.data(), got.size(), 8 * kMiB), static_cast<ssize_t>(got.size()));
    ::close(fd);
    EXPECT_EQ(0, std::memcmp(got.data(), pattern.data(), got.size()));
  }
  // Plain syscall on the device -> engine.
  {
    auto other = Pattern(kMiB, 12);
    int fd = ::open(loop_.c_str(), O_RDWR);
    ASSERT_EQ(::pwrite(fd, other.data(), kMiB, 20 * kMiB), static_cast<ssize_t>(kMiB));
    ::fsync(fd);
    ::close(fd);
    AlignedBuffer rb(kMiB, 4096);
    ASSERT_TRUE(ReadAt(**dev, 20 * kMiB, rb.span()).ok());
    EXPECT_EQ(0, std::memcmp(rb.data(), other.data(), kMiB));
  }
  // discard on the loop device punches a hole in its backing file and reads as zeroes.
  const uint64_t before = AllocatedBytes(image_);
  ASSERT_TRUE(Discard(**dev, 8 * kMiB, 2 * kMiB).ok());
  EXPECT_LE(AllocatedBytes(image_), before - 2 * kMiB);
  AlignedBuffer zb(2 * kMiB, 4096);
  std::memset(zb.data(), 0x55, zb.size());
  ASSERT_TRUE(ReadAt(**dev, 8 * kMiB, zb.span()).ok());
  EXPECT_TRUE(std::all_of(zb.data(), zb.data() + zb.size(), [](std::byte b) { return b == std::byte{0}; }));
  // write_zeroes reads back as zeroes too, and the data next to it is intact.
  ASSERT_TRUE(WriteZeroes(**dev, 10 * kMiB, kMiB).ok());
  std::memset(zb.data(), 0x55, zb.size());
  ASSERT_TRUE(ReadAt(**dev, 10 * kMiB, zb.span()).ok());
  EXPECT_TRUE(std::all_of(zb.data(), zb.data() + kMiB, [](std::byte b) { return b == std::byte{0}; }));
  EXPECT_EQ(0, std::memcmp(zb.data() + kMiB, pattern.data() + 3 * kMiB, kMiB));
  // Past the end of the device.
  EXPECT_EQ(ReadAt(**dev, 32 * kMiB, zb.span().first(4096)).code(), absl::StatusCode::kOutOfRange);
}

class XfsTest : public TempDir {
 protected:
  void SetUp() override {
    TempDir::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    mnt_ = dir_ + "/mnt";
    int rc = 0;
    std::string out = Shell(SourceDir() + "/tests/env/xfs.sh up " + dir_ + "/xfs.img " + mnt_ + " 1G", &rc);
    ASSERT_EQ(rc, 0) << "tests/env/xfs.sh up failed: " << out;
    up_ = true;
  }
  void TearDown() override {
    // Retry briefly: the kernel may drop the last file reference a moment after close.
    for (int i = 0; up_ && i < 20; ++i) {
      Shell(SourceDir() + "/tests/env/xfs.sh down " + mnt_);
      int rc = 0;
      Shell("mountpoint -q " + mnt_, &rc);
      if (rc != 0) up_ = false;
      else ::usleep(200000);
    }
    if (up_) {
      ADD_FAILURE() << "could not unmount " << mnt_ << "; left in place";
      dir_.clear();
    }
    TempDir::TearDown();
  }
  std::string mnt_;
  bool up_ = false;
};

TEST_F(XfsTest, ReflinkDiffIsExactlyTheRewrittenBlocks) {
  const std::string vol = mnt_ + "/vol.img";
  auto dev = OpenFileDevice(vol, {.create = true, .create_size = 64 * kMiB});
  ASSERT_TRUE(dev.ok()) << dev.status();
  EXPECT_TRUE(GetFileDeviceInfo(**dev)->direct);
  auto pattern = Pattern(8 * kMiB, 21);
  AlignedBuffer buf(8 * kMiB, 4096);
  std::memcpy(buf.data(), pattern.data(), buf.size());
  ASSERT_TRUE(WriteAt(**dev, 0, buf.span()).ok());
  ASSERT_TRUE(WriteAt(**dev, 32 * kMiB, buf.span()).ok());
  ASSERT_TRUE(Flush(**dev).ok());
  EXPECT_EQ((*dev)->allocated(0, 64 * kMiB).value(),
            (ExtentList{{0, 8 * kMiB}, {32 * kMiB, 8 * kMiB}}));

  // Snapshot by reflink.
  const std::string snap = mnt_ + "/snap.img";
  {
    int src = ::open(vol.c_str(), O_RDONLY);
    int dst = ::open(snap.c_str(), O_RDWR | O_CREAT, 0644);
    ASSERT_EQ(::ioctl(dst, FICLONE, src), 0) << std::strerror(errno);
    ::close(src);
    ::close(dst);
  }
  EXPECT_TRUE(DifferingExtents(snap, vol).value().empty()) << "fresh reflink: identical";
  auto fm = ReadFiemap(vol);
  ASSERT_TRUE(fm.ok());
  for (const auto& e : *fm) EXPECT_TRUE(e.shared()) << "extent at " << e.logical;

  // Rewrite 64 KiB at 1 MiB, write 4 KiB into a hole at 50 MiB, discard 1 MiB at 36 MiB, and
  // zero 1 MiB at 4 MiB.
  ASSERT_TRUE(WriteAt(**dev, kMiB, buf.span().subspan(8 * kMiB - 65536, 65536)).ok());
  ASSERT_TRUE(WriteAt(**dev, 50 * kMiB, buf.span().first(4096)).ok());
  ASSERT_TRUE(Discard(**dev, 36 * kMiB, kMiB).ok());
  ASSERT_TRUE(WriteZeroes(**dev, 4 * kMiB, kMiB).ok());
  ASSERT_TRUE(Flush(**dev).ok());
  auto diff = DifferingExtents(snap, vol);
  ASSERT_TRUE(diff.ok()) << diff.status();
  EXPECT_EQ(*diff, (ExtentList{{kMiB, 65536}, {4 * kMiB, kMiB}, {36 * kMiB, kMiB},
                               {50 * kMiB, 4096}}));
  // XFS: unwritten (zeroed) extents are not data for SEEK_DATA either.
  EXPECT_EQ((*dev)->allocated(0, 64 * kMiB).value(),
            (ExtentList{{0, 4 * kMiB}, {5 * kMiB, 3 * kMiB}, {32 * kMiB, 4 * kMiB},
                        {37 * kMiB, 3 * kMiB}, {50 * kMiB, 4096}}));
  EXPECT_EQ(AllocatedExtents(vol).value(), (*dev)->allocated(0, 64 * kMiB).value());
  // The snapshot still reads the old bytes.
  auto sdev = OpenFileDevice(snap, {.read_only = true});
  ASSERT_TRUE(sdev.ok());
  AlignedBuffer got(65536, 4096);
  ASSERT_TRUE(ReadAt(**sdev, kMiB, got.span()).ok());
  EXPECT_EQ(0, std::memcmp(got.data(), pattern.data() + kMiB, 65536));
}

}  // namespace
}  // namespace vdisk::blockdev::uring
