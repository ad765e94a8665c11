// The librbd Device on the real test cluster: data integrity with many operations in flight,
// discard / write-zeroes semantics, error codes, completion eventfd, allocation maps, URIs.
#include <gtest/gtest.h>
#include <poll.h>

#include <cstring>
#include <random>
#include <vector>

#include "absl/strings/str_cat.h"
#include "blockdev/aligned_buffer.h"
#include "blockdev/registry.h"
#include "blockdev/sync_io.h"
#include "tests/rbd/ceph_env.h"

namespace vdisk::blockdev {
namespace {

using vdisk::testing::CephEnv;

constexpr uint64_t kMiB = 1 << 20;

class RbdDeviceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto env = vdisk::testing::LoadCephEnv();
    ASSERT_TRUE(env.ok()) << env.status();
    env_ = *env;
    auto pool = vdisk::testing::OpenPool(vdisk::testing::RbdPoolConfig(env_, "ceph"));
    ASSERT_TRUE(pool.ok()) << pool.status();
    pool_ = *pool;
  }
  void TearDown() override {
    for (const auto& id : volumes_) EXPECT_TRUE(pool_->delete_volume(id).ok()) << id;
  }

  Volume NewVolume(uint64_t size, Params params = {}) {
    VolumeRequest req;
    req.name = vdisk::testing::UniqueName("dev");
    req.size_bytes = size;
    req.params = std::move(params);
    auto v = pool_->create_volume(req);
    EXPECT_TRUE(v.ok()) << v.status();
    if (!v.ok()) return Volume{};
    volumes_.push_back(v->id);
    return *v;
  }

  std::unique_ptr<Device> Open(const Volume& v, bool ro = false) {
    auto d = pool_->open_volume(v.id, ro);
    EXPECT_TRUE(d.ok()) << d.status();
    return d.ok() ? std::move(*d) : nullptr;
  }

  CephEnv env_;
  std::shared_ptr<Pool> pool_;
  std::vector<std::string> volumes_;
};

std::vector<std::byte> Pattern(size_t n, uint32_t seed) {
  std::vector<std::byte> out(n);
  std::mt19937 rng(seed);
  for (auto& b : out) b = static_cast<std::byte>(rng());
  return out;
}

TEST_F(RbdDeviceTest, ManyInFlightWritesReadBackIdentical) {
  Volume v = NewVolume(64 * kMiB);
  auto dev = Open(v);
  ASSERT_TRUE(dev);
  EXPECT_EQ(dev->size(), 64 * kMiB);
  EXPECT_EQ(dev->block_size(), 512u);
  EXPECT_NE(dev->describe().find("rbd:"), std::string::npos);
  auto q = dev->open_queue(32);
  ASSERT_TRUE(q.ok()) << q.status();
  int efd = (*q)->completion_fd();
  ASSERT_GE(efd, 0);

  constexpr int kBlocks = 256;
  constexpr size_t kBlock = 64 * 1024;
  std::vector<std::vector<std::byte>> data(kBlocks);
  std::vector<uint64_t> offsets(kBlocks);
  std::mt19937 rng(7);
  for (int i = 0; i < kBlocks; ++i) {
    data[i] = Pattern(kBlock, i + 1);
    offsets[i] = static_cast<uint64_t>(i) * (64 * kMiB / kBlocks);  // spread over objects
  }
  int done = 0, failed = 0, next = 0;
  unsigned max_in_flight = 0;
  while (done < kBlocks) {
    while (next < kBlocks && (*q)->in_flight() < (*q)->depth()) {
      (*q)->write(offsets[next], data[next], [&](Status s) {
        ++done;
        if (!s.ok()) {
          ++failed;
          ADD_FAILURE() << s;
        }
      });
      ++next;
    }
    max_in_flight = std::max(max_in_flight, (*q)->in_flight());
    ASSERT_TRUE((*q)->submit().ok());
    // Sleep on the eventfd, then reap without waiting: the epoll-loop style of use.
    struct pollfd pfd = {efd, POLLIN, 0};
    ASSERT_GE(::poll(&pfd, 1, 30000), 1) << "no completion signalled within 30 s";
    ASSERT_TRUE((*q)->poll(0, 0).ok());
  }
  EXPECT_EQ(failed, 0);
  EXPECT_EQ(max_in_flight, 32u);
  ASSERT_TRUE(Flush(*dev).ok());

  // Read back at depth, into separate buffers.
  std::vector<std::vector<std::byte>> back(kBlocks, std::vector<std::byte>(kBlock));
  done = 0;
  next = 0;
  while (done < kBlocks) {
    while (next < kBlocks && (*q)->in_flight() < (*q)->depth()) {
      int i = next++;
      (*q)->read(offsets[i], back[i], [&, i](Status s) {
        ++done;
        EXPECT_TRUE(s.ok()) << s;
      });
    }
    ASSERT_TRUE((*q)->submit().ok());
    ASSERT_TRUE((*q)->poll(1, 30000).ok());
  }
  for (int i = 0; i < kBlocks; ++i) EXPECT_EQ(back[i], data[i]) << "block " << i;
}

TEST_F(RbdDeviceTest, DiscardAndWriteZeroesReadAsZeroes) {
  Volume v = NewVolume(16 * kMiB);
  auto dev = Open(v);
  ASSERT_TRUE(dev);
  auto data = Pattern(2 * kMiB, 3);
  ASSERT_TRUE(WriteAt(*dev, 3 * kMiB, data).ok());
  // Sub-object ranges (librbd skips partial discards by default: the engine must not).
  ASSERT_TRUE(Discard(*dev, 3 * kMiB + 4096, 4096).ok());
  ASSERT_TRUE(WriteZeroes(*dev, 3 * kMiB + 65536, 12288).ok());
  // A range crossing the 4 MiB object boundary.
  ASSERT_TRUE(Discard(*dev, 4 * kMiB - 8192, 16384).ok());
  std::vector<std::byte> back(2 * kMiB);
  ASSERT_TRUE(ReadAt(*dev, 3 * kMiB, back).ok());
  auto expect = data;
  std::memset(expect.data() + 4096, 0, 4096);
  std::memset(expect.data() + 65536, 0, 12288);
  std::memset(expect.data() + kMiB - 8192, 0, 16384);
  EXPECT_TRUE(back == expect);
}

TEST_F(RbdDeviceTest, ErrorCodes) {
  Volume v = NewVolume(4 * kMiB);
  auto dev = Open(v);
  ASSERT_TRUE(dev);
  std::vector<std::byte> buf(4096);
  EXPECT_EQ(ReadAt(*dev, 100, buf).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ReadAt(*dev, 4 * kMiB, buf).code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(WriteAt(*dev, 4 * kMiB - 512, buf).code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(Discard(*dev, 0, 100).code(), absl::StatusCode::kInvalidArgument);

  auto ro = Open(v, /*ro=*/true);
  ASSERT_TRUE(ro);
  EXPECT_TRUE(ro->read_only());
  EXPECT_EQ(WriteAt(*ro, 0, buf).code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(Discard(*ro, 0, 4096).code(), absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(ReadAt(*ro, 0, buf).ok());

  // More operations than the depth: the extra ones fail, the others complete.
  auto q = dev->open_queue(2);
  ASSERT_TRUE(q.ok());
  int ok = 0, exhausted = 0;
  std::vector<std::vector<std::byte>> bufs(4, std::vector<std::byte>(4096));
  for (int i = 0; i < 4; ++i)
    (*q)->read(i * 4096, bufs[i], [&](Status s) {
      if (s.ok()) ++ok;
      else if (s.code() == absl::StatusCode::kResourceExhausted) ++exhausted;
    });
  ASSERT_TRUE((*q)->drain().ok());
  EXPECT_EQ(ok, 2);
  EXPECT_EQ(exhausted, 2);
}

TEST_F(RbdDeviceTest, AllocatedExtentsCoverExactlyTheWrittenObjects) {
  Volume v = NewVolume(64 * kMiB);
  auto dev = Open(v);
  ASSERT_TRUE(dev);
  auto empty = dev->allocated(0, dev->size());
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_TRUE(empty->empty());
  auto data = Pattern(4096, 9);
  ASSERT_TRUE(WriteAt(*dev, 10 * kMiB, data).ok());
  ASSERT_TRUE(WriteAt(*dev, 40 * kMiB + 8192, data).ok());
  ASSERT_TRUE(Flush(*dev).ok());
  // Default features include fast-diff: whole 4 MiB objects.
  auto whole = dev->allocated(0, dev->size());
  ASSERT_TRUE(whole.ok()) << whole.status();
  EXPECT_EQ(*whole, (ExtentList{{8 * kMiB, 4 * kMiB}, {40 * kMiB, 4 * kMiB}}));
  // A clipped query.
  auto clipped = dev->allocated(9 * kMiB, 2 * kMiB);
  ASSERT_TRUE(clipped.ok());
  EXPECT_EQ(*clipped, (ExtentList{{9 * kMiB, 2 * kMiB}}));

  // Exact mode (no fast-diff): never less than the truth, never beyond the written objects.
  auto exact_pool = vdisk::testing::OpenPool(
      vdisk::testing::RbdPoolConfig(env_, "ceph", {{"diff", "exact"}}));
  ASSERT_TRUE(exact_pool.ok()) << exact_pool.status();
  auto edev = (*exact_pool)->open_volume(v.id, true);
  ASSERT_TRUE(edev.ok()) << edev.status();
  auto exact = (*edev)->allocated(0, (*edev)->size());
  ASSERT_TRUE(exact.ok()) << exact.status();
  ASSERT_EQ(exact->size(), 2u);
  for (const auto& [off, len] : std::vector<std::pair<uint64_t, uint64_t>>{
           {10 * kMiB, 4096}, {40 * kMiB + 8192, 4096}}) {
    bool covered = false;
    for (const auto& e : *exact) covered |= e.offset <= off && e.end() >= off + len;
    EXPECT_TRUE(covered) << off;
  }
  for (const auto& e : *exact)
    EXPECT_EQ(e.offset / (4 * kMiB), (e.end() - 1) / (4 * kMiB)) << "extent spans objects";
  EXPECT_LT(TotalBytes(*exact), TotalBytes(*whole));
}

TEST_F(RbdDeviceTest, UriSchemeOpensImagesAndSnapshots) {
  Volume v = NewVolume(8 * kMiB);
  auto data = Pattern(8192, 11);
  {
    auto dev = Open(v);
    ASSERT_TRUE(dev);
    auto ws = WriteAt(*dev, 0, data);
    ASSERT_TRUE(ws.ok()) << ws;
    ASSERT_TRUE(Flush(*dev).ok());
  }
  auto snap = pool_->create_snapshot(v.id, vdisk::testing::UniqueName("devsnap"));
  ASSERT_TRUE(snap.ok()) << snap.status();
  const std::string creds = absl::StrCat("?conf=", env_.conf, "&id=", env_.driver_user,
                                         "&keyring=", env_.driver_keyring);
  const std::string image = v.context.at("rbdImage");
  RegisterBuiltinBackends();
  auto dev = OpenDeviceUri(absl::StrCat("rbd:", env_.rbd_pool, "/", image, creds), false);
  ASSERT_TRUE(dev.ok()) << dev.status();
  std::vector<std::byte> back(8192);
  ASSERT_TRUE(ReadAt(**dev, 0, back).ok());
  EXPECT_EQ(back, data);
  // Overwrite the head; the snapshot keeps the old bytes and is read-only.
  auto other = Pattern(8192, 12);
  ASSERT_TRUE(WriteAt(**dev, 0, other).ok());
  std::string snap_name = snap->id.substr(snap->id.rfind('.') + 1);
  auto sdev = OpenDeviceUri(absl::StrCat("rbd:", env_.rbd_pool, "/", image, "@", snap_name, creds),
                            false);
  ASSERT_TRUE(sdev.ok()) << sdev.status();
  EXPECT_TRUE((*sdev)->read_only());
  ASSERT_TRUE(ReadAt(**sdev, 0, back).ok());
  EXPECT_EQ(back, data);
  EXPECT_EQ(WriteAt(**sdev, 0, other).code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(OpenDeviceUri(absl::StrCat("rbd:", env_.rbd_pool, "/no-such-image", creds), true)
                .status()
                .code(),
            absl::StatusCode::kNotFound);
  // A snapshot that does not exist on an image that does.
  EXPECT_EQ(OpenDeviceUri(absl::StrCat("rbd:", env_.rbd_pool, "/", image, "@no-such-snap", creds),
                          true)
                .status()
                .code(),
            absl::StatusCode::kNotFound);
  sdev->reset();
  dev->reset();
  EXPECT_TRUE(pool_->delete_snapshot(snap->id).ok());
}

TEST_F(RbdDeviceTest, QueueOutlivesItsDevice) {
  Volume v = NewVolume(4 * kMiB);
  auto dev = Open(v);
  ASSERT_TRUE(dev);
  auto q = dev->open_queue(4);
  ASSERT_TRUE(q.ok());
  auto data = Pattern(8192, 21);
  Status result = absl::UnknownError("not run");
  (*q)->write(0, data, [&](Status s) { result = std::move(s); });
  ASSERT_TRUE((*q)->submit().ok());
  dev.reset();  // the queue keeps the image open
  ASSERT_TRUE((*q)->drain().ok());
  EXPECT_TRUE(result.ok()) << result;
  q->reset();
  auto again = Open(v, true);
  std::vector<std::byte> back(8192);
  ASSERT_TRUE(ReadAt(*again, 0, back).ok());
  EXPECT_EQ(back, data);
}

TEST_F(RbdDeviceTest, TwoClientsWriteTheSameImage) {
  // RWX Block (live migration): two separate clients (two cluster connections) write the same
  // image in turns; librbd hands the exclusive lock back and forth and nothing is lost.
  Volume v = NewVolume(8 * kMiB);
  const std::string uri = absl::StrCat("rbd:", env_.rbd_pool, "/", v.context.at("rbdImage"),
                                       "?conf=", env_.conf, "&id=", env_.driver_user,
                                       "&keyring=", env_.driver_keyring);
  RegisterBuiltinBackends();
  auto a = OpenDeviceUri(uri, false);
  auto b = OpenDeviceUri(uri, false);
  ASSERT_TRUE(a.ok() && b.ok()) << a.status() << b.status();
  std::vector<std::vector<std::byte>> data;
  for (int round = 0; round < 6; ++round) {
    data.push_back(Pattern(65536, 100 + round));
    Device& dev = round % 2 ? **b : **a;
    ASSERT_TRUE(WriteAt(dev, round * kMiB, data.back()).ok()) << "round " << round;
    ASSERT_TRUE(Flush(dev).ok());
  }
  for (Device* dev : {a->get(), b->get()}) {
    std::vector<std::byte> back(65536);
    for (int round = 0; round < 6; ++round) {
      ASSERT_TRUE(ReadAt(*dev, round * kMiB, back).ok());
      EXPECT_EQ(back, data[round]) << "round " << round;
    }
  }
  a->reset();
  b->reset();
}

}  // namespace
}  // namespace vdisk::blockdev
