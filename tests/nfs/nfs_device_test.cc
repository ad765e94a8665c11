// The libnfs Device against the real ganesha of the `nfs` fixture: bytes with many operations
// in flight (checked by an independent client, libnfs' nfs-cat, and on the server's file
// system), splits past the transfer size, flush (COMMIT), discard / write-zeroes, allocation
// maps, error codes, completion fd, the copy engine between two NFS images, and a private
// ganesha restarted under a running writer (the unstable-write log re-sends, nothing is lost).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <random>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "blockdev/copy.h"
#include "blockdev/nfs/nfs_device.h"
#include "blockdev/nfs/nfs_queue.h"
#include "blockdev/nfs/nfs_session.h"
#include "blockdev/registry.h"
#include "blockdev/sync_io.h"
#include "tests/nfs/nfs_env.h"

namespace vdisk::blockdev::nfs {
namespace {

using vdisk::testing::NfsEnv;

constexpr uint64_t kMiB = 1 << 20;

std::vector<std::byte> Pattern(size_t n, uint32_t seed) {
  std::vector<std::byte> out(n);
  std::mt19937 rng(seed);
  for (size_t i = 0; i < n; i += 4) {
    uint32_t v = rng();
    std::memcpy(out.data() + i, &v, std::min<size_t>(4, n - i));
  }
  return out;
}

std::string ReadLocal(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

class NfsDeviceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto env = vdisk::testing::LoadNfsEnv();
    ASSERT_TRUE(env.ok()) << env.status();
    env_ = *env;
    auto s = Session::Connect(env_.Target());
    ASSERT_TRUE(s.ok()) << s.status();
    session_ = std::shared_ptr<Session>(std::move(*s));
    dir_ = absl::StrCat("/devtest-", ::getpid(), "-", ::testing::UnitTest::GetInstance()
                                                          ->current_test_info()
                                                          ->name());
    ASSERT_TRUE(session_->MkdirAll(dir_).ok());
  }
  void TearDown() override {
    if (session_) {
      EXPECT_TRUE(session_->RemoveAll(dir_).ok());
    }
  }

  // A sparse image of `size` bytes made on the server side through the Session.
  std::string MakeImage(const std::string& name, uint64_t size) {
    std::string path = absl::StrCat(dir_, "/", name);
    EXPECT_TRUE(session_->CreateExclusive(path, 0644).ok());
    EXPECT_TRUE(session_->Truncate(path, size).ok());
    return path;
  }
  std::unique_ptr<Device> Open(const std::string& path, bool ro = false) {
    NfsDeviceOptions o;
    o.read_only = ro;
    auto d = OpenNfsDevice(session_, path, o);
    EXPECT_TRUE(d.ok()) << d.status();
    return d.ok() ? std::move(*d) : nullptr;
  }
  std::string Local(const std::string& path) { return env_.local_path + path; }

  NfsEnv env_;
  std::shared_ptr<Session> session_;
  std::string dir_;
};

TEST_F(NfsDeviceTest, ManyInFlightWritesReadBackIdenticalEverywhere) {
  const uint64_t size = 48 * kMiB;
  std::string path = MakeImage("disk.img", size);
  auto dev = Open(path);
  ASSERT_TRUE(dev);
  EXPECT_EQ(dev->size(), size);
  EXPECT_EQ(dev->block_size(), 512u);
  EXPECT_TRUE(dev->allocation_requires_read());
  EXPECT_EQ(dev->describe().rfind("nfs://", 0), 0u) << dev->describe();

  // Writes of mixed sizes (512 B .. 3 MiB: past the 1 MiB transfer size), some vectored.
  auto data = Pattern(size, 1);
  auto q = dev->open_queue(32);
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_GE((*q)->completion_fd(), 0);
  std::mt19937 rng(7);
  std::vector<std::pair<uint64_t, uint64_t>> writes;
  for (uint64_t off = 0; off < size;) {
    uint64_t len = std::min<uint64_t>(size - off, 512ull * (1 + rng() % 6144));
    writes.push_back({off, len});
    off += len;
  }
  std::shuffle(writes.begin(), writes.end(), rng);
  std::vector<std::array<struct iovec, 2>> iovs(writes.size());
  size_t next = 0, done = 0;
  int errors = 0;
  while (done < writes.size()) {
    while (next < writes.size() && (*q)->in_flight() < 32) {
      auto [off, len] = writes[next];
      auto& v = iovs[next];
      const uint64_t first = len > 512 ? len / 512 / 2 * 512 : len;
      v[0] = {data.data() + off, first};
      v[1] = {data.data() + off + first, len - first};
      (*q)->writev(off, v.data(), len > first ? 2 : 1, [&](Status s) {
        ++done;
        if (!s.ok()) {
          ++errors;
          ADD_FAILURE() << s;
        }
      });
      ++next;
    }
    ASSERT_TRUE((*q)->submit().ok());
    ASSERT_TRUE((*q)->poll(1, -1).ok());
  }
  EXPECT_EQ(errors, 0);
  EXPECT_GT(static_cast<NfsQueue*>(q->get())->unstable_bytes(), 0u);
  Status flushed = absl::UnknownError("not run");
  (*q)->flush([&](Status s) { flushed = s; });
  ASSERT_TRUE((*q)->drain().ok());
  EXPECT_TRUE(flushed.ok()) << flushed;
  EXPECT_EQ(static_cast<NfsQueue*>(q->get())->unstable_bytes(), 0u);

  // Read back through a second queue (its own connection), in 700 KiB pieces at depth.
  std::vector<std::byte> back(size);
  auto q2 = dev->open_queue(16);
  ASSERT_TRUE(q2.ok()) << q2.status();
  for (uint64_t off = 0; off < size; off += 700 * 1024) {
    uint64_t len = std::min<uint64_t>(700 * 1024, size - off);
    (*q2)->read(off, std::span<std::byte>(back.data() + off, len),
                [](Status s) { EXPECT_TRUE(s.ok()) << s; });
    if ((*q2)->in_flight() >= 16) {
      ASSERT_TRUE((*q2)->poll(1, -1).ok());
    }
  }
  ASSERT_TRUE((*q2)->drain().ok());
  EXPECT_TRUE(std::memcmp(back.data(), data.data(), size) == 0);

  // Independent clients: the server's file and libnfs' own nfs-cat.
  std::string local = ReadLocal(Local(path));
  ASSERT_EQ(local.size(), size);
  EXPECT_TRUE(std::memcmp(local.data(), data.data(), size) == 0);
  auto cat = vdisk::testing::RunCommand(absl::StrCat("nfs-cat '", env_.Url(path), "' | sha256sum"));
  auto ref = vdisk::testing::RunCommand(absl::StrCat("sha256sum < '", Local(path), "'"));
  ASSERT_TRUE(cat.ok()) << cat.status();
  ASSERT_TRUE(ref.ok()) << ref.status();
  EXPECT_EQ(*cat, *ref);
}

TEST_F(NfsDeviceTest, DiscardAndWriteZeroesReadAsZeroes) {
  std::string path = MakeImage("z.img", 8 * kMiB);
  auto dev = Open(path);
  ASSERT_TRUE(dev);
  auto data = Pattern(8 * kMiB, 2);
  ASSERT_TRUE(WriteAt(*dev, 0, data).ok());
  ASSERT_TRUE(Discard(*dev, 512, 3 * kMiB).ok());          // > wsize: split
  ASSERT_TRUE(WriteZeroes(*dev, 5 * kMiB, 4096).ok());
  ASSERT_TRUE(Flush(*dev).ok());
  std::vector<std::byte> back(8 * kMiB);
  ASSERT_TRUE(ReadAt(*dev, 0, back).ok());
  for (uint64_t i = 0; i < 8 * kMiB; ++i) {
    const bool zero = (i >= 512 && i < 512 + 3 * kMiB) || (i >= 5 * kMiB && i < 5 * kMiB + 4096);
    if (back[i] != (zero ? std::byte{0} : data[i])) {
      FAIL() << "byte " << i;
    }
  }
}

TEST_F(NfsDeviceTest, AllocationMap) {
  std::string path = MakeImage("a.img", 64 * kMiB);
  auto dev = Open(path);
  ASSERT_TRUE(dev);
  // A fresh sparse file uses nothing: answered from its attributes, no read.
  auto empty = dev->allocated(0, 64 * kMiB);
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_TRUE(empty->empty());
  auto block = Pattern(4096, 3);
  ASSERT_TRUE(WriteAt(*dev, 10 * kMiB + 8192, block).ok());
  ASSERT_TRUE(WriteAt(*dev, 40 * kMiB, block).ok());
  ASSERT_TRUE(Flush(*dev).ok());
  auto found = dev->allocated(0, 64 * kMiB);
  ASSERT_TRUE(found.ok()) << found.status();
  ExtentList want = {{10 * kMiB, 64 * 1024}, {40 * kMiB, 64 * 1024}};
  EXPECT_EQ(*found, want);
  auto part = dev->allocated(10 * kMiB + 4096, 8192);  // clipped to the question
  ASSERT_TRUE(part.ok());
  EXPECT_EQ(*part, (ExtentList{{10 * kMiB + 4096, 8192}}));
  EXPECT_EQ(dev->allocated(60 * kMiB, 8 * kMiB).status().code(), absl::StatusCode::kOutOfRange);
}

TEST_F(NfsDeviceTest, BadRequestsGetExactCodes) {
  std::string path = MakeImage("e.img", 4 * kMiB);
  auto dev = Open(path);
  ASSERT_TRUE(dev);
  std::vector<std::byte> buf(4096);
  EXPECT_EQ(ReadAt(*dev, 100, std::span<std::byte>(buf.data(), 512)).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ReadAt(*dev, 4 * kMiB, std::span<std::byte>(buf.data(), 512)).code(),
            absl::StatusCode::kOutOfRange);
  auto ro = Open(path, /*ro=*/true);
  ASSERT_TRUE(ro);
  EXPECT_EQ(WriteAt(*ro, 0, buf).code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(Discard(*ro, 0, 4096).code(), absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(ReadAt(*ro, 0, buf).ok());
  EXPECT_TRUE(Flush(*ro).ok());

  EXPECT_EQ(OpenNfsDevice(session_, dir_ + "/missing.img").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(OpenNfsDevice(session_, dir_).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(NfsDeviceTest, ConnectErrorsGetExactCodes) {
  EXPECT_EQ(Session::Connect(env_.Target("/no-such-export")).status().code(),
            absl::StatusCode::kNotFound);
  // ganesha hides an export from hosts outside its client list: as unknown as no export.
  EXPECT_EQ(Session::Connect(env_.Target(env_.denied_export)).status().code(),
            absl::StatusCode::kNotFound);
  // Squashed to nobody over a root-owned directory: mounts, but nothing may be created.
  auto squashed = Session::Connect(env_.Target(env_.squashed_export));
  ASSERT_TRUE(squashed.ok()) << squashed.status();
  EXPECT_EQ((*squashed)->Mkdir("/pool").code(), absl::StatusCode::kPermissionDenied);
  NfsTarget refused = env_.Target();
  refused.nfs_port = 1;  // nothing listens there
  refused.mount_port = 1;
  auto s = Session::Connect(refused, 5000);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kUnavailable) << s.status();
  // The read-only export mounts, and refuses writes.
  auto ro = Session::Connect(env_.Target(env_.ro_export));
  ASSERT_TRUE(ro.ok()) << ro.status();
  EXPECT_EQ((*ro)->CreateExclusive("/x", 0644).code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(session_->CreateExclusive(dir_, 0644).code(), absl::StatusCode::kAlreadyExists);
}

TEST_F(NfsDeviceTest, UriSchemeOpensTheImage) {
  std::string path = MakeImage("u.img", kMiB);
  RegisterBuiltinBackends();
  auto dev = OpenDeviceUri(absl::StrCat("nfs://", env_.server, env_.export_path, path,
                                        "?export=", env_.export_path, "&", env_.url_query),
                           false);
  ASSERT_TRUE(dev.ok()) << dev.status();
  EXPECT_EQ((*dev)->size(), kMiB);
  auto data = Pattern(kMiB, 4);
  ASSERT_TRUE(WriteAt(**dev, 0, data).ok());
  ASSERT_TRUE(Flush(**dev).ok());
  EXPECT_EQ(ReadLocal(Local(path)), std::string(reinterpret_cast<const char*>(data.data()),
                                                data.size()));
  // Without export=: the image's directory is mounted (ganesha serves sub-directories).
  auto sub = OpenDeviceUri(
      absl::StrCat("nfs://", env_.server, env_.export_path, path, "?", env_.url_query), true);
  ASSERT_TRUE(sub.ok()) << sub.status();
  EXPECT_TRUE((*sub)->read_only());
}

TEST_F(NfsDeviceTest, CompletionFdWakesAnEpollLoop) {
  std::string path = MakeImage("c.img", kMiB);
  auto dev = Open(path);
  ASSERT_TRUE(dev);
  auto q = dev->open_queue(4);
  ASSERT_TRUE(q.ok());
  std::vector<std::byte> buf(64 * 1024);
  bool done = false;
  (*q)->read(0, buf, [&](Status s) {
    EXPECT_TRUE(s.ok()) << s;
    done = true;
  });
  ASSERT_TRUE((*q)->submit().ok());
  for (int i = 0; i < 100 && !done; ++i) {
    struct pollfd pfd = {(*q)->completion_fd(), POLLIN, 0};
    ASSERT_GE(::poll(&pfd, 1, 2000), 0);
    ASSERT_TRUE((*q)->poll(0, 0).ok());
  }
  EXPECT_TRUE(done);
  // A validation error completes without the server, and still wakes the fd.
  Status bad;
  (*q)->read(3, std::span<std::byte>(buf.data(), 512), [&](Status s) { bad = s; });
  struct pollfd pfd = {(*q)->completion_fd(), POLLIN, 0};
  EXPECT_EQ(::poll(&pfd, 1, 2000), 1);
  ASSERT_TRUE((*q)->poll(1, 0).ok());
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(NfsDeviceTest, CopyEngineCopiesSparselyBetweenNfsImages) {
  const uint64_t size = 64 * kMiB;
  std::string src_path = MakeImage("src.img", size);
  std::string dst_path = MakeImage("dst.img", size);
  auto src = Open(src_path);
  auto dst = Open(dst_path);
  ASSERT_TRUE(src && dst);
  auto a = Pattern(3 * kMiB, 5), b = Pattern(kMiB, 6);
  ASSERT_TRUE(WriteAt(*src, 2 * kMiB, a).ok());
  ASSERT_TRUE(WriteAt(*src, 50 * kMiB, b).ok());
  ASSERT_TRUE(Flush(*src).ok());
  CopyOptions o;
  o.checksum = true;
  auto r = CopyDevice(*src, *dst, o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->bytes_written, 4 * kMiB);  // zeroes were read but not written
  EXPECT_EQ(r->bytes_read, size);          // NFSv3: one pass over everything
  std::string want = ReadLocal(Local(src_path));
  EXPECT_TRUE(ReadLocal(Local(dst_path)) == want);
  struct stat st {};
  ASSERT_EQ(::stat(Local(dst_path).c_str(), &st), 0);
  EXPECT_LT(static_cast<uint64_t>(st.st_blocks) * 512, 16 * kMiB) << "holes stayed holes";
}

// A private server, restarted and then killed for two seconds under a writer at depth: the
// queue reconnects and re-sends what was in flight, the unstable-write log re-sends what the new
// server instance may have lost, and the flush at the end holds for every byte.
TEST(NfsDeviceRestart, WriterSurvivesServerRestarts) {
  auto g = vdisk::testing::PrivateGanesha::Start("devrestart");
  ASSERT_TRUE(g.ok()) << g.status();
  const NfsEnv& env = (*g)->env();
  auto s = Session::Connect(env.Target());
  ASSERT_TRUE(s.ok()) << s.status();
  std::shared_ptr<Session> session(std::move(*s));
  const uint64_t size = 256 * kMiB;
  ASSERT_TRUE(session->CreateExclusive("/r.img", 0644).ok());
  ASSERT_TRUE(session->Truncate("/r.img", size).ok());
  auto dev = OpenNfsDevice(session, "/r.img");
  ASSERT_TRUE(dev.ok()) << dev.status();
  auto data = Pattern(size, 9);

  std::atomic<bool> stop{false};
  std::thread restarter([&] {
    // A clean restart, then a crash with the server away for two seconds.
    std::this_thread::sleep_for(std::chrono::milliseconds(400));
    Status r = (*g)->Restart();
    EXPECT_TRUE(r.ok()) << r;
    std::this_thread::sleep_for(std::chrono::milliseconds(400));
    r = (*g)->Kill();
    EXPECT_TRUE(r.ok()) << r;
    std::this_thread::sleep_for(std::chrono::seconds(2));
    r = (*g)->Up();
    EXPECT_TRUE(r.ok()) << r;
  });
  auto q = (*dev)->open_queue(16);
  ASSERT_TRUE(q.ok());
  int errors = 0;
  // Several passes so the writes span the restarts even on a fast machine.
  for (int pass = 0; pass < 3; ++pass) {
    for (uint64_t off = 0; off < size; off += kMiB) {
      (*q)->write(off, std::span<const std::byte>(data.data() + off, kMiB), [&](Status st) {
        if (!st.ok()) {
          ++errors;
          ADD_FAILURE() << st;
        }
      });
      if ((*q)->in_flight() >= 16) {
        ASSERT_TRUE((*q)->poll(1, -1).ok());
      }
    }
  }
  Status flushed = absl::UnknownError("not run");
  (*q)->flush([&](Status st) { flushed = st; });
  ASSERT_TRUE((*q)->drain().ok());
  stop = true;
  restarter.join();
  EXPECT_EQ(errors, 0);
  EXPECT_TRUE(flushed.ok()) << flushed;
  std::printf("writes re-sent after a verifier change: %llu\n",
              static_cast<unsigned long long>(
                  static_cast<NfsQueue*>(q->get())->resent_writes()));
  q->reset();
  std::string local = ReadLocal(env.local_path + "/r.img");
  ASSERT_EQ(local.size(), size);
  EXPECT_TRUE(std::memcmp(local.data(), data.data(), size) == 0);
}

}  // namespace
}  // namespace vdisk::blockdev::nfs
