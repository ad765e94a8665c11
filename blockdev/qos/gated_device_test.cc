// The gated Device over the real io_uring file engine: bytes pass unchanged, IOPS and bandwidth
// limits hold over a timed run at queue depth, a limit changed while I/O runs takes effect at
// once, and a hold keeps completions from being reaped until it ends.
#include "blockdev/qos/gated_device.h"

#include <fcntl.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "blockdev/aligned_buffer.h"
#include "blockdev/uring/uring_device.h"

namespace vdisk::blockdev::qos {
namespace {

using Clock = std::chrono::steady_clock;
constexpr uint64_t kSize = 64 << 20;

class GatedDeviceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/vdisk-qos-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    uring::FileDeviceOptions o;
    o.create = true;
    o.create_size = kSize;
    auto dev = uring::OpenFileDevice(dir_ + "/disk.img", o);
    ASSERT_TRUE(dev.ok()) << dev.status();
    gate_ = std::make_shared<IoGate>("test");
    dev_ = GateDevice(std::move(*dev), gate_);
  }
  void TearDown() override {
    dev_.reset();
    std::filesystem::remove_all(dir_);
  }

  // Keeps `depth` reads (or writes) of `bs` bytes in flight for `seconds`, waiting on
  // completion_fd() like the vhost-user worker does; returns the operations completed.
  uint64_t Run(double seconds, unsigned depth, uint32_t bs, bool write,
               const std::function<void(double)>& at = nullptr) {
    auto q = dev_->open_queue(depth);
    EXPECT_TRUE(q.ok()) << q.status();
    if (!q.ok()) return 0;
    IoQueue& io = **q;
    std::vector<AlignedBuffer> bufs;
    for (unsigned i = 0; i < depth; ++i) bufs.emplace_back(bs, 4096);
    int ep = ::epoll_create1(EPOLL_CLOEXEC);
    if (io.completion_fd() >= 0) {
      epoll_event ev{};
      ev.events = EPOLLIN;
      EXPECT_EQ(::epoll_ctl(ep, EPOLL_CTL_ADD, io.completion_fd(), &ev), 0);
    }
    uint64_t done = 0, issued = 0;
    std::vector<bool> busy(depth, false);
    const auto start = Clock::now();
    auto elapsed = [&] { return std::chrono::duration<double>(Clock::now() - start).count(); };
    double next_tick = 0.1;
    while (elapsed() < seconds) {
      for (unsigned i = 0; i < depth; ++i) {
        if (busy[i]) continue;
        busy[i] = true;
        const uint64_t off = (issued++ * bs) % kSize;
        auto cb = [&, i](Status s) {
          EXPECT_TRUE(s.ok()) << s;
          busy[i] = false;
          ++done;
        };
        if (write) io.write(off, std::span<const std::byte>(bufs[i].data(), bs), cb);
        else io.read(off, std::span<std::byte>(bufs[i].data(), bs), cb);
      }
      EXPECT_TRUE(io.submit().ok());
      epoll_event ev;
      ::epoll_wait(ep, &ev, 1, 10);
      EXPECT_TRUE(io.poll(0, 0).ok());
      if (at && elapsed() >= next_tick) {
        at(elapsed());
        next_tick += 0.1;
      }
    }
    const uint64_t in_time = done;
    EXPECT_TRUE(io.drain().ok());
    ::close(ep);
    return in_time;
  }

  std::string dir_;
  std::shared_ptr<IoGate> gate_;
  std::unique_ptr<Device> dev_;
};

TEST_F(GatedDeviceTest, UnlimitedPassesBytesThrough) {
  auto q = dev_->open_queue(4);
  ASSERT_TRUE(q.ok());
  AlignedBuffer w(1 << 20, 4096), r(1 << 20, 4096);
  for (size_t i = 0; i < w.size(); ++i) w.data()[i] = static_cast<std::byte>(i * 7 + 3);
  Status ws, rs, fs, ds;
  (*q)->write(4 << 20, std::span<const std::byte>(w.data(), w.size()), [&](Status s) { ws = s; });
  (*q)->flush([&](Status s) { fs = s; });
  ASSERT_TRUE((*q)->drain().ok());
  (*q)->read(4 << 20, std::span<std::byte>(r.data(), r.size()), [&](Status s) { rs = s; });
  (*q)->discard(8 << 20, 1 << 20, [&](Status s) { ds = s; });
  ASSERT_TRUE((*q)->drain().ok());
  EXPECT_TRUE(ws.ok() && rs.ok() && fs.ok() && ds.ok());
  EXPECT_EQ(std::memcmp(w.data(), r.data(), w.size()), 0);
  EXPECT_EQ(gate_->stats().delayed, 0u);
}

TEST_F(GatedDeviceTest, IopsLimitHolds) {
  QosLimits l;
  l.read_iops.limit = 500;
  gate_->SetLimits(l);
  const uint64_t n = Run(2.0, 16, 4096, false);
  // 500/s over 2 s, plus the initial bucket (50) and the queue's depth of debt.
  EXPECT_GE(n, 950u);
  EXPECT_LE(n, 1000u + 50 + 16);
  EXPECT_GT(gate_->stats().delayed, 0u);
}

TEST_F(GatedDeviceTest, BandwidthLimitHoldsForLargeWrites) {
  QosLimits l;
  l.bps.limit = 32 << 20;  // 32 MiB/s with 1 MiB writes
  gate_->SetLimits(l);
  const uint64_t n = Run(2.0, 8, 1 << 20, true);
  EXPECT_GE(n, 60u);
  EXPECT_LE(n, 64u + 4 + 8);
}

TEST_F(GatedDeviceTest, LimitChangedWhileRunning) {
  QosLimits slow;
  slow.iops.limit = 200;
  gate_->SetLimits(slow);
  uint64_t at_switch = 0;
  bool switched = false;
  // Count completions via the run; switch to 2000/s after 1 s from inside the loop.
  uint64_t total = Run(2.0, 16, 4096, false, [&](double t) {
    if (!switched && t >= 1.0) {
      QosLimits fast;
      fast.iops.limit = 2000;
      gate_->SetLimits(fast);
      switched = true;
      at_switch = gate_->stats().admitted;
    }
  });
  ASSERT_TRUE(switched);
  EXPECT_LE(at_switch, 200u + 20 + 16 + 40);  // about 1 s at 200/s
  const uint64_t after = total - std::min(total, at_switch);
  EXPECT_GE(after, 1600u);  // about 1 s at 2000/s
  EXPECT_LE(after, 2000u + 200 + 16 + 100);
}

TEST_F(GatedDeviceTest, HoldKeepsCompletionsUntilReleased) {
  auto q = dev_->open_queue(4);
  ASSERT_TRUE(q.ok());
  AlignedBuffer w(4096, 4096);
  int completed = 0;
  auto hold = gate_->Hold();
  ASSERT_TRUE(hold.ok());
  (*q)->write(0, std::span<const std::byte>(w.data(), w.size()), [&](Status s) {
    EXPECT_TRUE(s.ok());
    ++completed;
  });
  ASSERT_TRUE((*q)->submit().ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // the write itself is done by now
  auto n = (*q)->poll(0, 0);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 0u);
  EXPECT_EQ(completed, 0);
  // A blocking poll waits for the release.
  std::thread releaser([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    hold->reset();
  });
  const auto t0 = Clock::now();
  n = (*q)->poll(1, 2000);
  releaser.join();
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 1u);
  EXPECT_EQ(completed, 1);
  EXPECT_GE(Clock::now() - t0, std::chrono::milliseconds(80));
}

}  // namespace
}  // namespace vdisk::blockdev::qos
