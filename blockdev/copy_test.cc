#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
// The copy engine between real files (io_uring engine): identical bytes, holes stay holes,
// destination allocation <= source allocation, zero blocks not written, dirty destinations
// cleaned by discards, checksum, errors, cancel + resume, and a copy killed midway (SIGKILL of
// a child process) that resumes from its checkpoint and ends identical.
#include "blockdev/copy.h"

#include <fcntl.h>
#include <openssl/sha.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "absl/strings/escaping.h"
#include "common/fs.h"
#include "blockdev/uring/uring_device.h"

namespace vdisk::blockdev {
namespace {

constexpr uint64_t kMiB = 1 << 20;
constexpr uint64_t kKiB = 1024;

std::string Sha256File(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  SHA256_CTX ctx;
  SHA256_Init(&ctx);
  std::vector<char> buf(kMiB);
  ssize_t n;
  while ((n = ::read(fd, buf.data(), buf.size())) > 0) SHA256_Update(&ctx, buf.data(), n);
  ::close(fd);
  unsigned char md[32];
  SHA256_Final(md, &ctx);
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<char*>(md), 32));
}

bool SameBytes(const std::string& a, const std::string& b) {
  if (std::filesystem::file_size(a) != std::filesystem::file_size(b)) return false;
  return Sha256File(a) == Sha256File(b);
}

uint64_t AllocatedBytes(const std::string& path) {
  struct stat st {};
  ::stat(path.c_str(), &st);
  return static_cast<uint64_t>(st.st_blocks) * 512;
}

// Data extents by SEEK_DATA/SEEK_HOLE.
ExtentList DataExtents(const std::string& path) {
  auto dev = uring::OpenFileDevice(path, {.read_only = true, .direct = uring::DirectMode::kOff});
  return (*dev)->allocated(0, (*dev)->size()).value();
}

class CopyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/vdisk-copy-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string Path(const std::string& name) { return dir_ + "/" + name; }

  // A sparse source: `extents` random-data extents of 64..1024 KiB over `size` bytes, plus
  // explicitly written zero blocks inside some of them (allocated but zero).
  std::string MakeSource(const std::string& name, uint64_t size, int extents, uint32_t seed) {
    std::string path = Path(name);
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644);
    EXPECT_EQ(::ftruncate(fd, static_cast<off_t>(size)), 0);
    std::mt19937_64 rng(seed);
    std::vector<char> data(kMiB);
    for (int i = 0; i < extents; ++i) {
      uint64_t len = (64 + rng() % 961) * kKiB / 4096 * 4096;
      uint64_t off = (rng() % (size - len)) / 4096 * 4096;
      for (auto& c : data) c = static_cast<char>(rng() | 1);
      if (i % 3 == 0) std::memset(data.data() + 16 * kKiB, 0, 32 * kKiB);  // zero blocks
      EXPECT_EQ(::pwrite(fd, data.data(), len, static_cast<off_t>(off)), static_cast<ssize_t>(len));
    }
    // A fully zero but allocated extent.
    std::memset(data.data(), 0, kMiB);
    EXPECT_EQ(::pwrite(fd, data.data(), kMiB, static_cast<off_t>(size / 2)), static_cast<ssize_t>(kMiB));
    ::fsync(fd);
    ::close(fd);
    return path;
  }

  std::unique_ptr<Device> Open(const std::string& path, bool ro = false, uint64_t create = 0) {
    auto dev = uring::OpenFileDevice(path, {.read_only = ro, .create = create > 0,
                                            .create_size = create});
    EXPECT_TRUE(dev.ok()) << dev.status();
    return dev.ok() ? std::move(*dev) : nullptr;
  }

  std::string dir_;
};

TEST_F(CopyTest, SparseCopyIsIdenticalAndHolesStayHoles) {
  const uint64_t size = 256 * kMiB;
  std::string src_path = MakeSource("src.img", size, 40, 1);
  auto src = Open(src_path, true);
  auto dst = Open(Path("dst.img"), false, size);
  ASSERT_TRUE(src && dst);
  int reports = 0;
  CopyProgress last;
  CopyOptions o;
  o.checksum = true;
  o.progress = [&](const CopyProgress& p) {
    ++reports;
    EXPECT_GE(p.bytes_done, last.bytes_done);
    last = p;
  };
  auto r = CopyDevice(*src, *dst, o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(SameBytes(src_path, Path("dst.img")));
  EXPECT_EQ(r->sha256_hex, Sha256File(src_path));
  EXPECT_FALSE(r->resumed);
  EXPECT_GE(reports, 1);
  EXPECT_EQ(last.bytes_done, size);
  EXPECT_EQ(last.bytes_total, size);

  // Only allocated ranges were read; zero blocks were read but not written.
  const ExtentList src_data = DataExtents(src_path);
  EXPECT_LE(r->bytes_read, TotalBytes(src_data) + 40 * 64 * kKiB);  // + read-through gaps
  EXPECT_GE(r->bytes_zero, kMiB);  // the all-zero extent at least
  EXPECT_EQ(r->bytes_written + r->bytes_zero, r->bytes_read);
  EXPECT_EQ(r->bytes_discarded, 0u) << "fresh sparse destination needs no discards";
  // Holes stay holes: every data extent of the copy lies inside source data.
  const ExtentList dst_data = DataExtents(Path("dst.img"));
  EXPECT_EQ(Union(src_data, dst_data), Normalize(src_data)) << "destination data outside source data";
  EXPECT_LE(AllocatedBytes(Path("dst.img")), AllocatedBytes(src_path));
  EXPECT_LT(AllocatedBytes(Path("dst.img")), AllocatedBytes(src_path)) << "zero blocks not written";
}

TEST_F(CopyTest, DirtyDestinationIsDiscardedWhereTheSourceIsEmpty) {
  const uint64_t size = 64 * kMiB;
  std::string src_path = MakeSource("src.img", size, 12, 2);
  std::string dst_path = Path("dst.img");
  {
    int fd = ::open(dst_path.c_str(), O_RDWR | O_CREAT, 0644);
    std::vector<char> junk(kMiB, 'J');
    for (uint64_t off = 0; off < size; off += kMiB) ::pwrite(fd, junk.data(), kMiB, off);
    ::fsync(fd);
    ::close(fd);
  }
  auto src = Open(src_path, true);
  auto dst = Open(dst_path);
  auto r = CopyDevice(*src, *dst);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(SameBytes(src_path, dst_path));
  EXPECT_GT(r->bytes_discarded, size / 2);
  EXPECT_LE(AllocatedBytes(dst_path), AllocatedBytes(src_path));

  // discard_holes=false leaves the junk where the source has holes.
  auto dst2 = Open(Path("dst2.img"), false, size);
  {
    int fd = ::open(Path("dst2.img").c_str(), O_RDWR);
    ::pwrite(fd, "JUNKJUNK", 8, 0);
    ::close(fd);
  }
  CopyOptions keep;
  keep.discard_holes = false;
  ASSERT_TRUE(CopyDevice(*src, *dst2, keep).ok());
  if (DataExtents(src_path).front().offset > 0) {
    EXPECT_FALSE(SameBytes(src_path, Path("dst2.img")));
  }
}

TEST_F(CopyTest, SmallChunksDepthOneAndALargerDestination) {
  const uint64_t size = 32 * kMiB;
  std::string src_path = MakeSource("src.img", size, 30, 3);
  auto src = Open(src_path, true);
  auto dst = Open(Path("dst.img"), false, size + 8 * kMiB);
  CopyOptions o;
  o.queue_depth = 1;
  o.chunk_bytes = 64 * 1024;
  o.checksum = true;
  auto r = CopyDevice(*src, *dst, o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->sha256_hex, Sha256File(src_path));
  std::filesystem::resize_file(Path("dst.img"), size);
  EXPECT_TRUE(SameBytes(src_path, Path("dst.img")));
}

TEST_F(CopyTest, ErrorsAreClear) {
  std::string src_path = MakeSource("src.img", 16 * kMiB, 4, 4);
  auto src = Open(src_path, true);
  auto small = Open(Path("small.img"), false, 8 * kMiB);
  auto r = CopyDevice(*src, *small);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kOutOfRange) << r.status();
  auto ro = Open(src_path, true);
  EXPECT_EQ(CopyDevice(*src, *ro).status().code(), absl::StatusCode::kPermissionDenied);
  auto dst = Open(Path("dst.img"), false, 16 * kMiB);
  CopyOptions bad;
  bad.zero_granularity = 3000;
  EXPECT_EQ(CopyDevice(*src, *dst, bad).status().code(), absl::StatusCode::kInvalidArgument);
  bad = CopyOptions();
  bad.queue_depth = 0;
  EXPECT_EQ(CopyDevice(*src, *dst, bad).status().code(), absl::StatusCode::kInvalidArgument);
  // A checkpoint from another copy is refused, not silently reused.
  CopyOptions other;
  other.checkpoint_path = Path("ckpt");
  ASSERT_TRUE(fs::WriteFileAtomic(Path("ckpt"), "vdisk-copy-checkpoint 1\nsrc=file:/x\ndst=file:/y\n"
                                                "size=1\nchecksum=0\ndone=0\n").ok());
  EXPECT_EQ(CopyDevice(*src, *dst, other).status().code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(fs::WriteFileAtomic(Path("ckpt"), "garbage").ok());
  EXPECT_EQ(CopyDevice(*src, *dst, other).status().code(), absl::StatusCode::kDataLoss);
}

// The checkpoint file is written on a helper thread: its failure still fails the copy, and
// the copy does not hang or leave the thread behind.
TEST_F(CopyTest, CheckpointWriteFailureFailsTheCopy) {
  const uint64_t size = 32 * kMiB;
  std::string src_path = MakeSource("src.img", size, 40, 8);
  auto src = Open(src_path, true);
  auto dst = Open(Path("dst.img"), false, size);
  ASSERT_TRUE(src && dst);
  CopyOptions o;
  o.queue_depth = 4;
  o.chunk_bytes = 256 * 1024;
  o.checkpoint_path = Path("no-such-dir/copy.ckpt");
  o.checkpoint_every_bytes = 1 * kMiB;
  auto r = CopyDevice(*src, *dst, o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("writing checkpoint"), std::string::npos) << r.status();
}

TEST_F(CopyTest, CancelThenResumeEndsIdenticalWithTheSameChecksum) {
  const uint64_t size = 128 * kMiB;
  std::string src_path = MakeSource("src.img", size, 200, 5);
  auto src = Open(src_path, true);
  auto dst = Open(Path("dst.img"), false, size);
  std::atomic<bool> cancel{false};
  CopyOptions o;
  o.checksum = true;
  o.queue_depth = 4;
  o.chunk_bytes = 256 * 1024;
  o.checkpoint_path = Path("copy.ckpt");
  o.checkpoint_every_bytes = 4 * kMiB;
  o.cancel = &cancel;
  o.progress = [&](const CopyProgress& p) {
    if (p.bytes_done >= size / 3) cancel = true;
  };
  auto first = CopyDevice(*src, *dst, o);
  ASSERT_EQ(first.status().code(), absl::StatusCode::kCancelled) << first.status();
  ASSERT_TRUE(std::filesystem::exists(Path("copy.ckpt")));
  cancel = false;
  o.progress = nullptr;
  auto second = CopyDevice(*src, *dst, o);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_TRUE(second->resumed);
  EXPECT_GE(second->resumed_from, size / 3);
  EXPECT_LT(second->resumed_from, size);
  EXPECT_EQ(second->sha256_hex, Sha256File(src_path));
  EXPECT_TRUE(SameBytes(src_path, Path("dst.img")));
  EXPECT_FALSE(std::filesystem::exists(Path("copy.ckpt"))) << "removed when complete";
}

TEST_F(CopyTest, KilledCopyResumesFromItsCheckpointAndEndsIdentical) {
  const uint64_t size = 192 * kMiB;
  std::string src_path = MakeSource("src.img", size, 300, 6);
  const std::string dst_path = Path("dst.img");
  const std::string ckpt = Path("copy.ckpt");
  auto make_options = [&] {
    CopyOptions o;
    o.checksum = true;
    o.queue_depth = 8;
    o.chunk_bytes = 256 * 1024;
    o.checkpoint_path = ckpt;
    o.checkpoint_every_bytes = 2 * kMiB;
    return o;
  };
  int pipefd[2];
  ASSERT_EQ(::pipe(pipefd), 0);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(pipefd[0]);
    auto src = uring::OpenFileDevice(src_path, {.read_only = true});
    auto dst = uring::OpenFileDevice(dst_path, {.create = true, .create_size = size});
    if (!src.ok() || !dst.ok()) ::_exit(2);
    CopyOptions o = make_options();
    bool told = false;
    o.progress = [&](const CopyProgress& p) {
      // Slow enough to be caught midway; tell the parent once past 40%, keep copying.
      ::usleep(20000);
      if (!told && p.bytes_done >= size * 2 / 5) {
        told = true;
        (void)!::write(pipefd[1], "x", 1);
      }
    };
    auto r = CopyDevice(**src, **dst, o);
    ::_exit(r.ok() ? 0 : 1);
  }
  ::close(pipefd[1]);
  char c;
  ASSERT_EQ(::read(pipefd[0], &c, 1), 1) << "child copy never got midway";
  ::kill(child, SIGKILL);
  int status = 0;
  ::waitpid(child, &status, 0);
  ::close(pipefd[0]);
  ASSERT_TRUE(WIFSIGNALED(status)) << "the child finished before it was killed";
  ASSERT_TRUE(std::filesystem::exists(ckpt)) << "no checkpoint survived the kill";
  EXPECT_FALSE(SameBytes(src_path, dst_path)) << "killed copy should be incomplete";

  auto src = Open(src_path, true);
  auto dst = Open(dst_path);
  auto r = CopyDevice(*src, *dst, make_options());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->resumed);
  EXPECT_GT(r->resumed_from, 0u);
  EXPECT_LT(r->resumed_from, size);
  EXPECT_EQ(r->sha256_hex, Sha256File(src_path));
  EXPECT_TRUE(SameBytes(src_path, dst_path));
  EXPECT_LE(AllocatedBytes(dst_path), AllocatedBytes(src_path));
}

}  // namespace
}  // namespace vdisk::blockdev
