// The io_uring engine on real files in a temp dir (the build machine's file system, ext4 here):
// bytes through the engine match plain syscalls both ways, allocation after discard and
// write-zeroes, the error codes of the contract, depth, eventfd and registered buffers.
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "blockdev/aligned_buffer.h"
#include "blockdev/registry.h"
#include "blockdev/sync_io.h"
#include "blockdev/uring/register.h"
#include "blockdev/uring/uring_device.h"

namespace vdisk::blockdev::uring {
namespace {

constexpr uint64_t kMiB = 1 << 20;

class UringDeviceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/vdisk-uring-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string MakeFile(const std::string& name, uint64_t size) {
    std::string path = dir_ + "/" + name;
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644);
    EXPECT_GE(fd, 0);
    EXPECT_EQ(::ftruncate(fd, static_cast<off_t>(size)), 0);
    ::close(fd);
    return path;
  }

  static std::vector<char> Pattern(size_t n, uint32_t seed) {
    std::vector<char> v(n);
    std::mt19937 rng(seed);
    for (auto& c : v) c = static_cast<char>(rng());
    return v;
  }

  static std::vector<char> PRead(const std::string& path, uint64_t off, size_t n) {
    std::vector<char> v(n);
    int fd = ::open(path.c_str(), O_RDONLY);
    EXPECT_EQ(::pread(fd, v.data(), n, static_cast<off_t>(off)), static_cast<ssize_t>(n));
    ::close(fd);
    return v;
  }

  static uint64_t AllocatedBytes(const std::string& path) {
    struct stat st {};
    ::stat(path.c_str(), &st);
    return static_cast<uint64_t>(st.st_blocks) * 512;
  }

  std::string dir_;
};

TEST_F(UringDeviceTest, EngineWritesReadBackThroughSyscalls) {
  const std::string path = MakeFile("a.img", 16 * kMiB);
  auto dev = OpenFileDevice(path);
  ASSERT_TRUE(dev.ok()) << dev.status();
  const FileDeviceInfo* info = GetFileDeviceInfo(**dev);
  ASSERT_NE(info, nullptr);
  EXPECT_TRUE(info->direct) << "ext4/xfs temp files support O_DIRECT";
  EXPECT_EQ((*dev)->size(), 16 * kMiB);

  auto q = (*dev)->open_queue(64);
  ASSERT_TRUE(q.ok()) << q.status();
  // 32 writes of 64 KiB scattered over the file, all in flight at once.
  const size_t chunk = 64 * 1024;
  AlignedBuffer buf(32 * chunk, 4096);
  auto pattern = Pattern(buf.size(), 1);
  std::memcpy(buf.data(), pattern.data(), buf.size());
  std::vector<iovec> iovs(32);
  int completed = 0;
  for (int i = 0; i < 32; ++i) {
    iovs[i] = {buf.data() + i * chunk, chunk};
    (*q)->writev(static_cast<uint64_t>(i) * 512 * 1024, &iovs[i], 1, [&](Status s) {
      EXPECT_TRUE(s.ok()) << s;
      ++completed;
    });
  }
  EXPECT_EQ((*q)->in_flight(), 32u);
  ASSERT_TRUE((*q)->drain().ok());
  EXPECT_EQ(completed, 32);
  for (int i = 0; i < 32; ++i) {
    auto got = PRead(path, static_cast<uint64_t>(i) * 512 * 1024, chunk);
    ASSERT_EQ(0, std::memcmp(got.data(), pattern.data() + i * chunk, chunk)) << "chunk " << i;
  }
}

TEST_F(UringDeviceTest, SyscallWritesReadBackThroughEngineVectored) {
  const std::string path = MakeFile("b.img", 4 * kMiB);
  auto pattern = Pattern(kMiB, 2);
  {
    int fd = ::open(path.c_str(), O_RDWR);
    ASSERT_EQ(::pwrite(fd, pattern.data(), kMiB, 2 * kMiB), static_cast<ssize_t>(kMiB));
    ::close(fd);
  }
  auto dev = OpenFileDevice(path, {.read_only = true});
  ASSERT_TRUE(dev.ok()) << dev.status();
  auto q = (*dev)->open_queue(4);
  ASSERT_TRUE(q.ok());
  // Four iovecs of uneven (block-multiple) sizes.
  AlignedBuffer buf(kMiB, 4096);
  const size_t sizes[4] = {4096, 258048, 524288, 262144};
  iovec iov[4];
  size_t off = 0;
  for (int i = 0; i < 4; ++i) {
    iov[i] = {buf.data() + off, sizes[i]};
    off += sizes[i];
  }
  ASSERT_EQ(off, kMiB);
  Status result = absl::UnknownError("not run");
  (*q)->readv(2 * kMiB, iov, 4, [&](Status s) { result = s; });
  ASSERT_TRUE((*q)->drain().ok());
  ASSERT_TRUE(result.ok()) << result;
  EXPECT_EQ(0, std::memcmp(buf.data(), pattern.data(), kMiB));
}

TEST_F(UringDeviceTest, AllocatedDiscardAndWriteZeroes) {
  const std::string path = MakeFile("c.img", 8 * kMiB);
  auto dev = OpenFileDevice(path);
  ASSERT_TRUE(dev.ok()) << dev.status();
  auto empty = (*dev)->allocated(0, 8 * kMiB);
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());

  AlignedBuffer data(2 * kMiB, 4096);
  std::memset(data.data(), 0xab, data.size());
  ASSERT_TRUE(WriteAt(**dev, kMiB, data.span()).ok());
  ASSERT_TRUE(WriteAt(**dev, 5 * kMiB, data.span()).ok());
  ASSERT_TRUE(Flush(**dev).ok());
  auto alloc = (*dev)->allocated(0, 8 * kMiB);
  ASSERT_TRUE(alloc.ok());
  EXPECT_EQ(*alloc, (ExtentList{{kMiB, 2 * kMiB}, {5 * kMiB, 2 * kMiB}}));
  // A sub-range query is clipped.
  auto part = (*dev)->allocated(2 * kMiB, 4 * kMiB);
  ASSERT_TRUE(part.ok());
  EXPECT_EQ(*part, (ExtentList{{2 * kMiB, kMiB}, {5 * kMiB, kMiB}}));

  // discard punches a hole: deallocated, reads zeroes.
  const uint64_t before = AllocatedBytes(path);
  ASSERT_TRUE(Discard(**dev, kMiB, 2 * kMiB).ok());
  EXPECT_EQ(AllocatedBytes(path), before - 2 * kMiB);
  alloc = (*dev)->allocated(0, 8 * kMiB);
  EXPECT_EQ(*alloc, (ExtentList{{5 * kMiB, 2 * kMiB}}));
  auto zeros = PRead(path, kMiB, 2 * kMiB);
  EXPECT_TRUE(std::all_of(zeros.begin(), zeros.end(), [](char c) { return c == 0; }));

  // write_zeroes keeps the space allocated (unwritten extents) but reads as zeroes. Whether
  // SEEK_DATA still calls unwritten extents data is up to the file system (ext4: yes, XFS: no);
  // allocated() may over-report, never under-report.
  const uint64_t before_zero = AllocatedBytes(path);
  ASSERT_TRUE(WriteZeroes(**dev, 5 * kMiB, kMiB).ok());
  EXPECT_EQ(AllocatedBytes(path), before_zero);
  zeros = PRead(path, 5 * kMiB, kMiB);
  EXPECT_TRUE(std::all_of(zeros.begin(), zeros.end(), [](char c) { return c == 0; }));
  auto rest = PRead(path, 6 * kMiB, kMiB);
  EXPECT_TRUE(std::all_of(rest.begin(), rest.end(), [](char c) { return c == char(0xab); }));
  alloc = (*dev)->allocated(0, 8 * kMiB);
  EXPECT_EQ(Clip(*alloc, 6 * kMiB, kMiB), (ExtentList{{6 * kMiB, kMiB}}));
  EXPECT_LE(TotalBytes(*alloc), 2 * kMiB);
  EXPECT_EQ(std::filesystem::file_size(path), 8 * kMiB) << "KEEP_SIZE";
}

TEST_F(UringDeviceTest, ErrorsComeBackAsClearCodes) {
  const std::string path = MakeFile("d.img", kMiB);
  auto dev = OpenFileDevice(path, {.direct = DirectMode::kOn});
  ASSERT_TRUE(dev.ok()) << dev.status();
  const uint32_t bs = (*dev)->block_size();
  AlignedBuffer buf(8192, 4096);

  // Past the end.
  Status s = ReadAt(**dev, kMiB, buf.span().first(bs));
  EXPECT_EQ(s.code(), absl::StatusCode::kOutOfRange) << s;
  EXPECT_NE(s.message().find(std::to_string(kMiB)), std::string::npos) << "names the range: " << s;
  s = ReadAt(**dev, kMiB - bs, buf.span().first(2 * bs));
  EXPECT_EQ(s.code(), absl::StatusCode::kOutOfRange) << s;
  // Misaligned offset / length.
  s = ReadAt(**dev, 1, buf.span().first(bs));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  s = ReadAt(**dev, 0, buf.span().first(bs - 1));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  // Misaligned buffer memory under O_DIRECT.
  if ((*dev)->buffer_alignment() > 1) {
    s = ReadAt(**dev, 0, buf.span().subspan(1, bs));
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
    EXPECT_NE(s.message().find("O_DIRECT"), std::string::npos) << s;
  }
  // Read-only device refuses writes, discards and zeroing.
  auto ro = OpenFileDevice(path, {.read_only = true});
  ASSERT_TRUE(ro.ok());
  EXPECT_TRUE((*ro)->read_only());
  s = WriteAt(**ro, 0, buf.span().first(4096));
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied) << s;
  s = Discard(**ro, 0, 4096);
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied) << s;
  s = WriteZeroes(**ro, 0, 4096);
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied) << s;
  EXPECT_TRUE(ReadAt(**ro, 0, buf.span().first(4096)).ok());
  EXPECT_TRUE(Flush(**ro).ok());

  // Opening.
  EXPECT_EQ(OpenFileDevice(dir_ + "/missing").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(OpenFileDevice(dir_).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ((*dev)->open_queue(0).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(UringDeviceTest, UnalignedSizeFallsBackToBufferedAndReadsTheTail) {
  const std::string path = MakeFile("odd.img", kMiB + 512);
  auto tail = Pattern(512, 3);
  {
    int fd = ::open(path.c_str(), O_RDWR);
    ASSERT_EQ(::pwrite(fd, tail.data(), 512, kMiB), 512);
    ::close(fd);
  }
  auto on = OpenFileDevice(path, {.direct = DirectMode::kOn});
  // 512-byte direct alignment (some block devices / file systems) would make this legal.
  if (on.ok()) {
    EXPECT_EQ((*on)->block_size(), 512u);
  } else {
    EXPECT_EQ(on.status().code(), absl::StatusCode::kInvalidArgument) << on.status();
    auto dev = OpenFileDevice(path);
    ASSERT_TRUE(dev.ok());
    EXPECT_FALSE(GetFileDeviceInfo(**dev)->direct);
    EXPECT_EQ((*dev)->block_size(), 512u);
    std::vector<std::byte> buf(512);
    ASSERT_TRUE(ReadAt(**dev, kMiB, buf).ok());
    EXPECT_EQ(0, std::memcmp(buf.data(), tail.data(), 512));
  }
  auto off = OpenFileDevice(path, {.direct = DirectMode::kOff});
  ASSERT_TRUE(off.ok());
  EXPECT_FALSE(GetFileDeviceInfo(**off)->direct);
  EXPECT_EQ((*off)->buffer_alignment(), 1u);
  // Buffered: any buffer address works.
  std::vector<std::byte> buf(1025);
  EXPECT_TRUE(ReadAt(**off, kMiB, std::span(buf).subspan(1, 512)).ok());
}

TEST_F(UringDeviceTest, FileShrunkUnderTheEngineIsAnErrorNotZeroes) {
  const std::string path = MakeFile("shrink.img", 2 * kMiB);
  auto dev = OpenFileDevice(path);
  ASSERT_TRUE(dev.ok());
  ASSERT_EQ(::truncate(path.c_str(), kMiB + 4096), 0);
  AlignedBuffer buf(kMiB, 4096);
  // The first transfer is short (stops at the new EOF), the resubmitted rest gets 0 bytes.
  Status s = ReadAt(**dev, 512 * 1024, buf.span());
  EXPECT_EQ(s.code(), absl::StatusCode::kOutOfRange) << s;
  EXPECT_NE(s.message().find("unexpected end of file"), std::string::npos) << s;
}

TEST_F(UringDeviceTest, DepthIsHonouredAndOverflowIsReported) {
  const std::string path = MakeFile("e.img", 4 * kMiB);
  auto dev = OpenFileDevice(path);
  ASSERT_TRUE(dev.ok());
  auto q = (*dev)->open_queue(128);
  ASSERT_TRUE(q.ok());
  EXPECT_EQ((*q)->depth(), 128u);
  AlignedBuffer buf(129 * 4096, 4096);
  std::vector<iovec> iov(129);
  int ok = 0, exhausted = 0;
  for (int i = 0; i < 129; ++i) {
    iov[i] = {buf.data() + i * 4096, 4096};
    (*q)->readv(static_cast<uint64_t>(i) * 4096, &iov[i], 1, [&](Status s) {
      if (s.ok()) ++ok;
      else if (s.code() == absl::StatusCode::kResourceExhausted) ++exhausted;
    });
  }
  EXPECT_EQ((*q)->in_flight(), 129u);
  ASSERT_TRUE((*q)->submit().ok());
  unsigned total = 0;
  while ((*q)->in_flight() > 0) {
    auto n = (*q)->poll(200, -1);  // more than in flight: capped
    ASSERT_TRUE(n.ok());
    total += *n;
  }
  EXPECT_EQ(total, 129u);
  EXPECT_EQ(ok, 128);
  EXPECT_EQ(exhausted, 1);
}

TEST_F(UringDeviceTest, CompletionFdWakesAnEpollLoop) {
  const std::string path = MakeFile("f.img", kMiB);
  auto dev = OpenFileDevice(path);
  ASSERT_TRUE(dev.ok());
  auto q = (*dev)->open_queue(8);
  ASSERT_TRUE(q.ok());
  int cfd = (*q)->completion_fd();
  ASSERT_GE(cfd, 0);
  EXPECT_EQ((*q)->completion_fd(), cfd) << "stable";
  int ep = ::epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ASSERT_EQ(::epoll_ctl(ep, EPOLL_CTL_ADD, cfd, &ev), 0);
  AlignedBuffer buf(4 * 4096, 4096);
  std::vector<iovec> iov(4);
  int done = 0;
  for (int i = 0; i < 4; ++i) {
    iov[i] = {buf.data() + i * 4096, 4096};
    (*q)->readv(static_cast<uint64_t>(i) * 4096, &iov[i], 1, [&](Status s) { done += s.ok(); });
  }
  ASSERT_TRUE((*q)->submit().ok());
  while (done < 4) {
    epoll_event out{};
    int n = ::epoll_wait(ep, &out, 1, 5000);
    ASSERT_EQ(n, 1) << "eventfd never became readable";
    auto r = (*q)->poll(0, 0);  // non-blocking reap
    ASSERT_TRUE(r.ok());
  }
  EXPECT_EQ(done, 4);
  ::close(ep);
}

TEST_F(UringDeviceTest, RegisteredBuffersCarryTheData) {
  const std::string path = MakeFile("g.img", 2 * kMiB);
  auto dev = OpenFileDevice(path);
  ASSERT_TRUE(dev.ok());
  auto q = (*dev)->open_queue(16);
  ASSERT_TRUE(q.ok());
  AlignedBuffer region(kMiB, 4096);
  iovec reg{region.data(), region.size()};
  ASSERT_TRUE((*q)->register_buffers(&reg, 1).ok());
  EXPECT_EQ((*q)->register_buffers(&reg, 1).code(), absl::StatusCode::kFailedPrecondition);
  auto pattern = Pattern(kMiB, 4);
  std::memcpy(region.data(), pattern.data(), kMiB);
  // Writes from inside the registered region (fixed-buffer path), 16 at a time.
  std::vector<iovec> iov(16);
  for (int i = 0; i < 16; ++i) {
    iov[i] = {region.data() + i * 65536, 65536};
    (*q)->writev(kMiB + static_cast<uint64_t>(i) * 65536, &iov[i], 1,
                 [](Status s) { EXPECT_TRUE(s.ok()) << s; });
  }
  ASSERT_TRUE((*q)->drain().ok());
  auto got = PRead(path, kMiB, kMiB);
  EXPECT_EQ(0, std::memcmp(got.data(), pattern.data(), kMiB));
  std::memset(region.data(), 0, kMiB);
  iovec whole{region.data(), region.size()};
  (*q)->readv(kMiB, &whole, 1, [](Status s) { EXPECT_TRUE(s.ok()) << s; });
  ASSERT_TRUE((*q)->drain().ok());
  EXPECT_EQ(0, std::memcmp(region.data(), pattern.data(), kMiB));
}

TEST_F(UringDeviceTest, CallbacksMayQueueMoreWorkAndFlushIsOrdered) {
  const std::string path = MakeFile("h.img", kMiB);
  auto dev = OpenFileDevice(path);
  ASSERT_TRUE(dev.ok());
  auto q = (*dev)->open_queue(2);
  ASSERT_TRUE(q.ok());
  AlignedBuffer buf(4096, 4096);
  std::memset(buf.data(), 7, 4096);
  iovec iov{buf.data(), 4096};
  int step = 0;
  IoQueue* queue = q->get();
  // A chain of 256 dependent writes, each queued by the previous one's callback, then a flush.
  std::function<void(Status)> next = [&](Status s) {
    ASSERT_TRUE(s.ok()) << s;
    if (++step < 256) {
      queue->writev(static_cast<uint64_t>(step % 256) * 4096, &iov, 1, next);
    } else {
      queue->flush([&](Status f) {
        EXPECT_TRUE(f.ok()) << f;
        ++step;
      });
    }
  };
  queue->writev(0, &iov, 1, next);
  ASSERT_TRUE(queue->drain().ok());
  EXPECT_EQ(step, 257);
}

TEST_F(UringDeviceTest, FileSchemeUri) {
  const std::string path = MakeFile("u.img", kMiB);
  Register();
  auto dev = OpenDeviceUri("file:" + path + "?direct=off", /*read_only=*/true);
  ASSERT_TRUE(dev.ok()) << dev.status();
  EXPECT_FALSE(GetFileDeviceInfo(**dev)->direct);
  EXPECT_TRUE((*dev)->read_only());
  EXPECT_EQ((*dev)->describe(), "file:" + path);
  auto plain = OpenDeviceUri(path, false);
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ(OpenDeviceUri("file:" + path + "?direct=maybe", false).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(OpenDeviceUri("file:" + path + "?bogus=1", false).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(UringDeviceTest, CreateOption) {
  const std::string path = dir_ + "/new.img";
  auto dev = OpenFileDevice(path, {.create = true, .create_size = 64 * kMiB});
  ASSERT_TRUE(dev.ok()) << dev.status();
  EXPECT_EQ((*dev)->size(), 64 * kMiB);
  EXPECT_EQ(AllocatedBytes(path), 0u) << "sparse";
}

}  // namespace
}  // namespace vdisk::blockdev::uring
