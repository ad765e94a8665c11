// Inflight I/O tracking (VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD) over the socket, no QEMU: a test
// front end plays QEMU with `reconnect=`. An export in a child process takes requests whose I/O
// never finishes (a Device that holds them, the fault injected through the Device interface), is
// SIGKILLed, and a new export on the same socket must finish exactly those requests: the ones
// the driver already saw completed are not run again (newer data written after them survives),
// the ones in flight are run once, and the ring goes on.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <random>
#include <thread>

#include "blockdev/uring/uring_device.h"
#include "blockdev/vhost/export.h"
#include "tests/vhost/export_fixture.h"
#include "tests/vhost/vhost_client.h"

namespace vdisk::blockdev::vhost {
namespace {

using testing::VhostClient;
namespace fs = std::filesystem;

constexpr uint64_t kDiskBytes = 16 << 20;
constexpr uint64_t kHoldFrom = 8 << 20;  // writes at or past this offset never complete
constexpr uint32_t kLen = 65536;

// Forwards to a real queue, except writes at or past kHoldFrom: those are kept in flight forever
// (as if the disk under a dying back end never answered).
class HoldingQueue final : public IoQueue {
 public:
  explicit HoldingQueue(std::unique_ptr<IoQueue> inner) : inner_(std::move(inner)) {}
  void readv(uint64_t o, const iovec* iov, int n, IoCallback done) override { inner_->readv(o, iov, n, std::move(done)); }
  void writev(uint64_t o, const iovec* iov, int n, IoCallback done) override {
    if (o >= kHoldFrom) {
      held_.push_back(std::move(done));
      return;
    }
    inner_->writev(o, iov, n, std::move(done));
  }
  void flush(IoCallback done) override { inner_->flush(std::move(done)); }
  void discard(uint64_t o, uint64_t l, IoCallback done) override { inner_->discard(o, l, std::move(done)); }
  void write_zeroes(uint64_t o, uint64_t l, IoCallback done) override {
    inner_->write_zeroes(o, l, std::move(done));
  }
  Status submit() override { return inner_->submit(); }
  StatusOr<unsigned> poll(unsigned min_complete, int timeout_ms) override {
    return inner_->poll(std::min(min_complete, inner_->in_flight()), timeout_ms);
  }
  unsigned in_flight() const override { return inner_->in_flight() + static_cast<unsigned>(held_.size()); }
  unsigned depth() const override { return inner_->depth(); }
  int completion_fd() const override { return inner_->completion_fd(); }

 private:
  std::unique_ptr<IoQueue> inner_;
  std::vector<IoCallback> held_;
};

class HoldingDevice final : public Device {
 public:
  explicit HoldingDevice(std::unique_ptr<Device> inner) : inner_(std::move(inner)) {}
  uint64_t size() const override { return inner_->size(); }
  uint32_t block_size() const override { return inner_->block_size(); }
  uint32_t buffer_alignment() const override { return inner_->buffer_alignment(); }
  bool read_only() const override { return inner_->read_only(); }
  std::string describe() const override { return "holding:" + inner_->describe(); }
  StatusOr<std::unique_ptr<IoQueue>> open_queue(unsigned depth) override {
    ASSIGN_OR_RETURN(auto q, inner_->open_queue(depth));
    return std::unique_ptr<IoQueue>(new HoldingQueue(std::move(q)));
  }
  StatusOr<ExtentList> allocated(uint64_t o, uint64_t l) override { return inner_->allocated(o, l); }

 private:
  std::unique_ptr<Device> inner_;
};

class VhostInflightTest : public testing::ExportTest {
 protected:
  void SetUp() override {
    ExportTest::SetUp();
    uring::FileDeviceOptions fo;
    fo.create = true;
    fo.create_size = kDiskBytes;
    ASSERT_TRUE(uring::OpenFileDevice(image_, fo).ok());
  }
  void TearDown() override {
    if (child_ > 0) {
      ::kill(child_, SIGKILL);
      ::waitpid(child_, nullptr, 0);
    }
    ExportTest::TearDown();
  }

  std::unique_ptr<Device> OpenImage() {
    auto dev = uring::OpenFileDevice(image_, {});
    EXPECT_TRUE(dev.ok()) << dev.status();
    return dev.ok() ? std::move(*dev) : nullptr;
  }

  // The first back end, in a child process so that it can die the way a node plugin does.
  void StartHoldingExportInChild() {
    int ready[2];
    ASSERT_EQ(::pipe2(ready, O_CLOEXEC), 0);
    child_ = ::fork();
    ASSERT_GE(child_, 0);
    if (child_ == 0) {
      ExportOptions o;
      o.socket_path = socket_;
      auto e = Export::Start(std::make_shared<HoldingDevice>(OpenImage()), o);
      char c = e.ok() ? 'y' : 'n';
      (void)!::write(ready[1], &c, 1);
      for (;;) ::pause();
    }
    ::close(ready[1]);
    char c = 0;
    ASSERT_EQ(::read(ready[0], &c, 1), 1);
    ::close(ready[0]);
    ASSERT_EQ(c, 'y');
  }

  void KillChild() {
    ASSERT_EQ(::kill(child_, SIGKILL), 0);
    int st = 0;
    ASSERT_EQ(::waitpid(child_, &st, 0), child_);
    child_ = -1;
  }

  // Queues a write of Pattern(kLen, seed) at `offset` from guest buffer `scratch`; returns the head.
  static uint16_t Write(VhostClient& c, uint64_t scratch, uint64_t offset, uint32_t seed) {
    std::string data = Pattern(kLen, seed);
    std::memcpy(c.ram().at(c.Layout(scratch, kLen).data_gpa), data.data(), kLen);
    return c.Submit(0, kBlkTOut, offset / 512, scratch, kLen, false);
  }
  static unsigned InFlight(InflightQueueHeader* region, uint16_t num) {
    auto* desc = reinterpret_cast<InflightDescSplit*>(region + 1);
    unsigned n = 0;
    for (uint16_t i = 0; i < num; i++) n += __atomic_load_n(&desc[i].inflight, __ATOMIC_ACQUIRE);
    return n;
  }

  pid_t child_ = -1;
};

TEST_F(VhostInflightTest, GetInflightFdHandsOutAnAreaOrNothing) {
  ExportOptions o;
  o.socket_path = socket_;
  o.num_queues = 2;
  auto e = Export::Start(std::shared_ptr<Device>(OpenImage()), o);
  ASSERT_TRUE(e.ok()) << e.status();
  exp_ = std::move(*e);
  VhostClient c;
  ASSERT_TRUE(c.Connect(socket_).ok());
  auto pf = c.GetU64(Request::kGetProtocolFeatures);
  ASSERT_TRUE(pf.ok());
  EXPECT_TRUE(*pf & (uint64_t{1} << kPfInflightShmfd));
  // More queues than offered: an empty answer (QEMU then runs without inflight tracking).
  auto none = c.GetInflight(3);
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_EQ(none->mmap_size, 0u);
  auto area = c.GetInflight(2);
  ASSERT_TRUE(area.ok()) << area.status();
  EXPECT_EQ(area->num_queues, 2);
  EXPECT_EQ(area->queue_size, VhostClient::kDefaultRingSize);
  EXPECT_GE(area->mmap_size, 2 * InflightQueueStride(VhostClient::kDefaultRingSize));
  ASSERT_NE(c.InflightRegion(1), nullptr);
  EXPECT_EQ(c.InflightRegion(1)->version, 0);  // fresh, zeroed
}

TEST_F(VhostInflightTest, RequestsInFlightWhenTheBackEndDiesAreFinishedByTheNextOne) {
  StartHoldingExportInChild();
  VhostClient c;
  ASSERT_TRUE(c.Connect(socket_).ok());
  ASSERT_TRUE(c.Setup(1, /*event_idx=*/true, false, ~uint64_t{0}, /*inflight=*/true).ok());
  InflightQueueHeader* region = c.InflightRegion(0);
  ASSERT_NE(region, nullptr);
  const uint64_t s = VhostClient::kDataBase;

  // W1 completes. The driver then queues W2 and W3 (held: in flight forever) and W4, which
  // overwrites W1's range and completes: the guest has newer data there than W1's.
  Write(c, s, 0, 1);
  c.Kick(0);
  ASSERT_EQ(c.WaitUsed(0, 1).size(), 1u);
  const uint16_t w2 = Write(c, s + (1 << 20), kHoldFrom, 2);
  const uint16_t w3 = Write(c, s + (2 << 20), kHoldFrom + kLen, 3);
  Write(c, s + (3 << 20), 0, 4);
  c.Kick(0);
  auto used = c.WaitUsed(0, 1);
  ASSERT_EQ(used.size(), 1u);
  EXPECT_EQ(c.StatusByte(s + (3 << 20), kLen), kBlkSOk);
  for (int i = 0; i < 500 && InFlight(region, VhostClient::kDefaultRingSize) < 2; i++) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  ASSERT_EQ(InFlight(region, VhostClient::kDefaultRingSize), 2u) << "W2 and W3 must be logged in flight";
  EXPECT_EQ(region->used_idx, 2);
  EXPECT_EQ(c.StatusByte(s + (1 << 20), kLen), 0xff) << "a held write was answered";

  KillChild();
  EXPECT_EQ(ReadFile(0, kLen), Pattern(kLen, 4));
  EXPECT_EQ(ReadFile(kHoldFrom, kLen), std::string(kLen, '\0'));

  // The restarted back end on the same socket (the stale socket file is replaced).
  ExportOptions o;
  o.socket_path = socket_;
  auto e = Export::Start(std::shared_ptr<Device>(OpenImage()), o);
  ASSERT_TRUE(e.ok()) << e.status();
  exp_ = std::move(*e);
  ASSERT_TRUE(c.Reconnect(socket_, 1, /*event_idx=*/true).ok());
  used = c.WaitUsed(0, 2);
  ASSERT_EQ(used.size(), 2u);
  std::vector<uint16_t> heads = {static_cast<uint16_t>(used[0].id), static_cast<uint16_t>(used[1].id)};
  std::sort(heads.begin(), heads.end());
  EXPECT_EQ(heads, (std::vector<uint16_t>{std::min(w2, w3), std::max(w2, w3)}));
  EXPECT_EQ(c.StatusByte(s + (1 << 20), kLen), kBlkSOk);
  EXPECT_EQ(c.StatusByte(s + (2 << 20), kLen), kBlkSOk);
  EXPECT_EQ(ReadFile(kHoldFrom, kLen), Pattern(kLen, 2));
  EXPECT_EQ(ReadFile(kHoldFrom + kLen, kLen), Pattern(kLen, 3));
  EXPECT_EQ(ReadFile(0, kLen), Pattern(kLen, 4)) << "a write the driver saw completed was run again";
  ExportStats st = exp_->stats();
  EXPECT_EQ(st.resubmitted, 2u);
  EXPECT_EQ(st.requests, 2u);
  EXPECT_EQ(InFlight(region, VhostClient::kDefaultRingSize), 0u);

  // The ring goes on from there: a new request is answered and reads W3's bytes.
  c.Submit(0, kBlkTIn, (kHoldFrom + kLen) / 512, s, kLen, true);
  c.Kick(0);
  ASSERT_EQ(c.WaitUsed(0, 1).size(), 1u);
  EXPECT_EQ(c.StatusByte(s, kLen), kBlkSOk);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(c.ram().at(c.Layout(s, kLen).data_gpa)), kLen), Pattern(kLen, 3));
  // A clean stop (GET_VRING_BASE) leaves nothing in flight and the same base for the next start.
  auto base = c.GetVringBase(0);
  ASSERT_TRUE(base.ok());
  EXPECT_EQ(*base, 5);
  EXPECT_EQ(region->used_idx, 5);
}

}  // namespace
}  // namespace vdisk::blockdev::vhost
