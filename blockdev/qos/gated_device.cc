#include "blockdev/qos/gated_device.h"

#include <poll.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <deque>

#include "absl/strings/str_cat.h"

namespace vdisk::blockdev::qos {

namespace {

using Clock = std::chrono::steady_clock;

uint64_t IovBytes(const struct iovec* iov, int iovcnt) {
  uint64_t n = 0;
  for (int i = 0; i < iovcnt; ++i) n += iov[i].iov_len;
  return n;
}

// An operation waiting for tokens (its buffers and iovec array stay valid: the caller's).
struct Parked {
  enum class Type { kReadv, kWritev, kFlush, kDiscard, kWriteZeroes } type;
  uint64_t offset = 0;
  uint64_t bytes = 0;   // metered bytes (0 for flush, discard, write-zeroes)
  uint64_t length = 0;  // discard / write-zeroes range
  const struct iovec* iov = nullptr;
  int iovcnt = 0;
  IoCallback done;
};

OpKind KindOf(Parked::Type t) {
  switch (t) {
    case Parked::Type::kReadv: return OpKind::kRead;
    case Parked::Type::kFlush: return OpKind::kUnmetered;
    default: return OpKind::kWrite;
  }
}

class GatedQueue final : public IoQueue, public Waker {
 public:
  static StatusOr<std::unique_ptr<GatedQueue>> Create(std::unique_ptr<IoQueue> inner, std::shared_ptr<IoGate> gate) {
    std::unique_ptr<GatedQueue> q(new GatedQueue(std::move(inner), std::move(gate)));
    q->timer_fd_ = ::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    if (q->timer_fd_ < 0) return LastErrnoStatus("timerfd_create");
    const int inner_fd = q->inner_->completion_fd();
    if (inner_fd >= 0) {
      q->ep_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
      if (q->ep_fd_ < 0) return LastErrnoStatus("epoll_create1");
      for (int fd : {inner_fd, q->timer_fd_}) {
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.fd = fd;
        if (::epoll_ctl(q->ep_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) return LastErrnoStatus("epoll_ctl");
      }
    }
    q->gate_->Register(q.get());
    return q;
  }

  ~GatedQueue() override {
    gate_->Unregister(this);
    if (!parked_.empty() || inner_->in_flight() > 0) drain().IgnoreError();
    inner_.reset();
    if (ep_fd_ >= 0) ::close(ep_fd_);
    if (timer_fd_ >= 0) ::close(timer_fd_);
  }

  // Unlimited and nothing parked (the common case): straight to the engine, nothing metered.
  void readv(uint64_t offset, const struct iovec* iov, int iovcnt, IoCallback done) override {
    if (PassThrough()) return inner_->readv(offset, iov, iovcnt, std::move(done));
    Route({Parked::Type::kReadv, offset, IovBytes(iov, iovcnt), 0, iov, iovcnt, std::move(done)});
  }
  void writev(uint64_t offset, const struct iovec* iov, int iovcnt, IoCallback done) override {
    if (PassThrough()) return inner_->writev(offset, iov, iovcnt, std::move(done));
    Route({Parked::Type::kWritev, offset, IovBytes(iov, iovcnt), 0, iov, iovcnt, std::move(done)});
  }
  void flush(IoCallback done) override { Route({Parked::Type::kFlush, 0, 0, 0, nullptr, 0, std::move(done)}); }
  // Deallocation moves no data: metered as a write operation, not as bytes.
  void discard(uint64_t offset, uint64_t length, IoCallback done) override {
    Route({Parked::Type::kDiscard, offset, 0, length, nullptr, 0, std::move(done)});
  }
  void write_zeroes(uint64_t offset, uint64_t length, IoCallback done) override {
    Route({Parked::Type::kWriteZeroes, offset, 0, length, nullptr, 0, std::move(done)});
  }

  Status submit() override {
    if (!parked_.empty()) Release();
    return inner_->submit();
  }

  StatusOr<unsigned> poll(unsigned min_complete, int timeout_ms) override {
    ConsumeTimer();
    if (!parked_.empty() && Release() > 0) RETURN_IF_ERROR(inner_->submit());
    min_complete = std::min(min_complete, in_flight());
    const auto deadline = timeout_ms < 0 ? Clock::time_point::max()
                                         : Clock::now() + std::chrono::milliseconds(timeout_ms);
    auto remaining_ms = [&]() -> int {
      if (timeout_ms < 0) return -1;
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      return static_cast<int>(std::max<int64_t>(left, 0));
    };
    unsigned total = 0;
    for (;;) {
      if (gate_->EnterPoll()) {
        ArmInner(true);
        const unsigned want = std::min(min_complete > total ? min_complete - total : 0u, inner_->in_flight());
        auto n = inner_->poll(want, want > 0 ? remaining_ms() : 0);
        gate_->LeavePoll();
        if (!n.ok()) return n.status();
        total += *n;
        if (total >= min_complete) return total;
        if (inner_->in_flight() > 0) {
          if (remaining_ms() == 0) return total;
          continue;
        }
        // Only parked operations are left: wait for their tokens.
        if (parked_.empty() || remaining_ms() == 0) return total;
        WaitTimer(remaining_ms());
        ConsumeTimer();
        if (Release() > 0) RETURN_IF_ERROR(inner_->submit());
        continue;
      }
      // Held: leave completions in the engine until the hold ends (its Wake() fires the timer).
      ArmInner(false);
      if (min_complete == 0 || remaining_ms() == 0) return total;
      WaitTimer(remaining_ms());
      ConsumeTimer();
      if (Release() > 0) RETURN_IF_ERROR(inner_->submit());
    }
  }

  unsigned in_flight() const override { return inner_->in_flight() + static_cast<unsigned>(parked_.size()); }
  unsigned depth() const override { return inner_->depth(); }
  int completion_fd() const override { return ep_fd_; }
  Status register_buffers(const struct iovec* regions, int count) override {
    return inner_->register_buffers(regions, count);
  }

  // Any thread: makes the owner look at parked operations and holds again.
  void Wake() override {
    Fire(0);
    wake_seq_.fetch_add(1);
  }

 private:
  GatedQueue(std::unique_ptr<IoQueue> inner, std::shared_ptr<IoGate> gate)
      : inner_(std::move(inner)), gate_(std::move(gate)) {}

  bool PassThrough() const { return parked_.empty() && !gate_->limited(); }

  void Route(Parked p) {
    if (parked_.empty()) {
      const double wait = gate_->TryAdmit(KindOf(p.type), p.bytes);
      if (wait == 0) {
        Start(std::move(p));
        return;
      }
      ArmTimer(wait);
    }
    parked_.push_back(std::move(p));
  }

  void Start(Parked p) {
    switch (p.type) {
      case Parked::Type::kReadv: inner_->readv(p.offset, p.iov, p.iovcnt, std::move(p.done)); break;
      case Parked::Type::kWritev: inner_->writev(p.offset, p.iov, p.iovcnt, std::move(p.done)); break;
      case Parked::Type::kFlush: inner_->flush(std::move(p.done)); break;
      case Parked::Type::kDiscard: inner_->discard(p.offset, p.length, std::move(p.done)); break;
      case Parked::Type::kWriteZeroes: inner_->write_zeroes(p.offset, p.length, std::move(p.done)); break;
    }
  }

  // Starts parked operations, in order, while the gate admits them. Returns how many started.
  unsigned Release() {
    unsigned started = 0;
    while (!parked_.empty()) {
      Parked& p = parked_.front();
      const double wait = gate_->TryAdmit(KindOf(p.type), p.bytes);
      if (wait > 0) {
        ArmTimer(wait);
        break;
      }
      Start(std::move(p));
      parked_.pop_front();
      ++started;
    }
    return started;
  }

  void Fire(double seconds) {
    itimerspec its{};
    const auto ns = static_cast<int64_t>(std::max(seconds, 20e-6) * 1e9);
    its.it_value.tv_sec = ns / 1000000000;
    its.it_value.tv_nsec = ns % 1000000000;
    ::timerfd_settime(timer_fd_, 0, &its, nullptr);
  }

  void ArmTimer(double seconds) {
    Fire(seconds);
    armed_ = true;
  }

  // Reads the timer if it may have fired (our own arm, or a Wake() since the last read), so that
  // an expired timer does not keep completion_fd() readable.
  void ConsumeTimer() {
    const uint64_t seq = wake_seq_.load();
    if (!armed_ && seq == consumed_seq_) return;
    uint64_t expirations;
    if (::read(timer_fd_, &expirations, sizeof expirations) == sizeof expirations) {
      armed_ = false;
      consumed_seq_ = seq;
    }
  }

  void WaitTimer(int timeout_ms) {
    pollfd p{timer_fd_, POLLIN, 0};
    while (::poll(&p, 1, timeout_ms) < 0 && errno == EINTR) {
    }
  }

  // Keeps the engine's fd in completion_fd() only while completions may be reaped.
  void ArmInner(bool on) {
    if (ep_fd_ < 0 || inner_armed_ == on) return;
    epoll_event ev{};
    ev.events = on ? static_cast<uint32_t>(EPOLLIN) : 0u;
    ev.data.fd = inner_->completion_fd();
    ::epoll_ctl(ep_fd_, EPOLL_CTL_MOD, ev.data.fd, &ev);
    inner_armed_ = on;
  }

  std::unique_ptr<IoQueue> inner_;
  std::shared_ptr<IoGate> gate_;
  std::deque<Parked> parked_;
  int timer_fd_ = -1;
  int ep_fd_ = -1;
  bool inner_armed_ = true;
  bool armed_ = false;
  std::atomic<uint64_t> wake_seq_{0};
  uint64_t consumed_seq_ = 0;
};

class GatedDevice final : public Device {
 public:
  GatedDevice(std::unique_ptr<Device> inner, std::shared_ptr<IoGate> gate)
      : inner_(std::move(inner)), gate_(std::move(gate)) {}

  uint64_t size() const override { return inner_->size(); }
  uint32_t block_size() const override { return inner_->block_size(); }
  uint32_t buffer_alignment() const override { return inner_->buffer_alignment(); }
  bool read_only() const override { return inner_->read_only(); }
  std::string describe() const override { return inner_->describe(); }
  StatusOr<std::unique_ptr<IoQueue>> open_queue(unsigned depth) override {
    ASSIGN_OR_RETURN(auto q, inner_->open_queue(depth));
    ASSIGN_OR_RETURN(auto gated, GatedQueue::Create(std::move(q), gate_));
    return std::unique_ptr<IoQueue>(std::move(gated));
  }
  StatusOr<ExtentList> allocated(uint64_t offset, uint64_t length) override {
    return inner_->allocated(offset, length);
  }
  StatusOr<ExtentList> changed_since(Device& base) override { return inner_->changed_since(base); }

 private:
  std::unique_ptr<Device> inner_;
  std::shared_ptr<IoGate> gate_;
};

}  // namespace

std::unique_ptr<Device> GateDevice(std::unique_ptr<Device> inner, std::shared_ptr<IoGate> gate) {
  return std::make_unique<GatedDevice>(std::move(inner), std::move(gate));
}

}  // namespace vdisk::blockdev::qos
