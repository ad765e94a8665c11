#include "blockdev/iscsi/iscsi_queue.h"

#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "blockdev/queue_support.h"
#include "spdlog/spdlog.h"

namespace vdisk::blockdev::iscsi {

static_assert(sizeof(struct iovec) == sizeof(struct scsi_iovec), "scsi_iovec must match iovec");

namespace {

constexpr uint32_t kNoSlot = UINT32_MAX;
constexpr int kMaxRetries = 250;              // transient SCSI errors, ~5 s at 20 ms
constexpr auto kRetryDelay = std::chrono::milliseconds(20);
constexpr uint64_t kZeroWriteBytes = 1 << 20;
constexpr uint64_t kTagSocket = 1, kTagEvent = 2, kTagTimer = 3;

const char* OpName(int op) {
  static const char* names[] = {"read", "write", "flush", "discard", "write_zeroes"};
  return names[op];
}

// One zero-filled buffer shared by every queue: the block of WRITE SAME and the zero writes.
const unsigned char* ZeroBuffer() {
  static const auto* buf = new unsigned char[kZeroWriteBytes]();
  return buf;
}

void DrainFd(int fd) {
  uint64_t v;
  while (::read(fd, &v, sizeof v) > 0) {
  }
}

}  // namespace

StatusOr<std::unique_ptr<IscsiQueue>> IscsiQueue::Create(std::shared_ptr<const QueueTarget> target,
                                                         unsigned depth) {
  if (depth == 0 || depth > 4096)
    return absl::InvalidArgumentError(absl::StrCat("iSCSI queue depth ", depth, " out of range [1, 4096]"));
  std::unique_ptr<IscsiQueue> q(new IscsiQueue(std::move(target), depth));
  RETURN_IF_ERROR(q->Init());
  return q;
}

IscsiQueue::IscsiQueue(std::shared_ptr<const QueueTarget> target, unsigned depth)
    : target_(std::move(target)), depth_(depth), bs_(target_->info.block_size), slots_(depth) {
  for (uint32_t i = 0; i < depth_; ++i) {
    slots_[i].queue = this;
    slots_[i].index = i;
    slots_[i].next_free = i + 1 < depth_ ? i + 1 : kNoSlot;
  }
  parked_.reserve(depth_);
  recorded_.reserve(depth_);
}

Status IscsiQueue::Init() {
  epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  event_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  timer_fd_ = ::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (epoll_fd_ < 0 || event_fd_ < 0 || timer_fd_ < 0) return LastErrnoStatus("iSCSI queue: epoll/eventfd/timerfd");
  for (auto [fd, tag] : {std::pair{event_fd_, kTagEvent}, std::pair{timer_fd_, kTagTimer}}) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = tag;
    if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) return LastErrnoStatus("epoll_ctl");
  }
  ASSIGN_OR_RETURN(session_, Session::Login(target_->address, target_->options));
  UpdateInterest();
  return Status();
}

IscsiQueue::~IscsiQueue() {
  // Parked operations are issued too, so every callback runs exactly once.
  while (in_flight() > 0) {
    auto n = poll(1, 1000);
    if (!n.ok()) break;
    if (*n == 0 && !session_ && down_since_ == Clock::time_point{}) break;  // gave up: all failed
  }
  if (session_ && watched_fd_ >= 0) ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, watched_fd_, nullptr);
  session_.reset();
  for (int fd : {epoll_fd_, event_fd_, timer_fd_})
    if (fd >= 0) ::close(fd);
}

std::string IscsiQueue::Where(const Slot& s) const {
  std::string w = absl::StrCat(target_->address.iqn, "/", target_->address.lun, ": ", OpName(static_cast<int>(s.op)));
  if (s.op != Op::kFlush) absl::StrAppend(&w, " [", s.offset, ", +", s.length, ")");
  return w;
}

void IscsiQueue::Wake() {
  uint64_t one = 1;
  ssize_t w = ::write(event_fd_, &one, sizeof one);
  (void)w;
}

// ------------------------------------------------------------------------------------------------
// Queueing

IscsiQueue::Slot* IscsiQueue::Start(Op op, uint64_t offset, uint64_t length, IoCallback& done) {
  auto fail = [&](Status s) -> Slot* {
    deferred_.emplace_back(std::move(done), std::move(s));
    Wake();
    return nullptr;
  };
  auto where = [&] {
    return absl::StrCat(target_->address.iqn, "/", target_->address.lun, ": ", OpName(static_cast<int>(op)), " [",
                        offset, ", +", length, ")");
  };
  if (Status s = CheckIo(where(), op == Op::kRead, op == Op::kFlush, target_->read_only, offset, length, bs_,
                         target_->info.size_bytes);
      !s.ok())
    return fail(std::move(s));
  if (free_head_ == kNoSlot)
    return fail(absl::ResourceExhaustedError(absl::StrCat(where(), ": queue full (depth ", depth_, ")")));
  Slot& s = slots_[free_head_];
  free_head_ = s.next_free;
  ++busy_;
  s.op = op;
  s.offset = offset;
  s.length = op == Op::kFlush ? 1 : length;  // a flush is one piece of "one byte"
  s.done_bytes = 0;
  s.piece = 0;
  s.retries = 0;
  s.waiting = false;
  s.iov = nullptr;
  s.iovcnt = 0;
  s.task = nullptr;
  s.error = Status();
  s.done = std::move(done);
  s.method = ZeroMethod::kWrite;
  if (op == Op::kDiscard || op == Op::kZeroes) {
    const LunInfo& in = target_->info;
    if (in.thin && in.write_same_unmap && write_same_ok_) s.method = ZeroMethod::kWriteSame;
    else if (in.thin && in.unmap && in.zeroes_after_unmap) s.method = ZeroMethod::kUnmap;
    else if (write_same_ok_) s.method = ZeroMethod::kWriteSame;  // WRITE SAME without UNMAP
  }
  if (length == 0 && op != Op::kFlush) {
    Finish(s, Status());
    Wake();
    return nullptr;
  }
  return &s;
}

// ------------------------------------------------------------------------------------------------
// Issuing

uint64_t IscsiQueue::PieceLimit(const Slot& s) const {
  const LunInfo& in = target_->info;
  switch (s.op) {
    case Op::kRead:
    case Op::kWrite:
      return in.max_xfer_blocks ? uint64_t{in.max_xfer_blocks} * bs_ : UINT64_MAX;
    case Op::kFlush:
      return 1;
    case Op::kDiscard:
    case Op::kZeroes:
      switch (s.method) {
        case ZeroMethod::kWriteSame: {
          uint64_t blocks = in.max_write_same_blocks ? in.max_write_same_blocks : UINT32_MAX;
          return std::min<uint64_t>(blocks, UINT32_MAX) * bs_;
        }
        case ZeroMethod::kUnmap: {
          uint64_t per = in.max_unmap_blocks ? in.max_unmap_blocks : UINT32_MAX;
          uint64_t n = std::clamp<uint64_t>(in.max_unmap_descriptors, 1, 64);
          return per * bs_ * n;
        }
        case ZeroMethod::kWrite:
          return kZeroWriteBytes;
      }
  }
  return UINT64_MAX;
}

bool IscsiQueue::IssuePiece(Slot& s) {
  iscsi_context* ctx = session_->ctx();
  const int lun = target_->address.lun;
  const uint64_t pos = s.offset + s.done_bytes;
  s.piece = std::min(s.length - s.done_bytes, PieceLimit(s));
  const uint64_t lba = pos / bs_;
  const uint32_t blocks = static_cast<uint32_t>(s.piece / bs_);
  scsi_task* t = nullptr;
  auto iov_of_piece = [&]() -> std::pair<scsi_iovec*, int> {
    if (s.piece == s.length) return {reinterpret_cast<scsi_iovec*>(const_cast<struct iovec*>(s.iov)), s.iovcnt};
    // The sub-range [done_bytes, done_bytes + piece) of the caller's iovecs.
    s.piece_iov.clear();
    uint64_t skip = s.done_bytes, want = s.piece;
    for (int i = 0; i < s.iovcnt && want > 0; ++i) {
      uint64_t len = s.iov[i].iov_len;
      if (skip >= len) {
        skip -= len;
        continue;
      }
      uint64_t take = std::min(len - skip, want);
      s.piece_iov.push_back({static_cast<char*>(s.iov[i].iov_base) + skip, take});
      want -= take;
      skip = 0;
    }
    return {reinterpret_cast<scsi_iovec*>(s.piece_iov.data()), static_cast<int>(s.piece_iov.size())};
  };
  switch (s.op) {
    case Op::kRead: {
      auto [iov, n] = iov_of_piece();
      t = iscsi_read16_iov_task(ctx, lun, lba, static_cast<uint32_t>(s.piece), bs_, 0, 0, 0, 0, 0, OnTask, &s, iov, n);
      break;
    }
    case Op::kWrite: {
      auto [iov, n] = iov_of_piece();
      t = iscsi_write16_iov_task(ctx, lun, lba, nullptr, static_cast<uint32_t>(s.piece), bs_, 0, 0, 0, 0, 0, OnTask, &s,
                                 iov, n);
      break;
    }
    case Op::kFlush:
      t = iscsi_synchronizecache16_task(ctx, lun, 0, 0, 0, 0, OnTask, &s);
      break;
    case Op::kDiscard:
    case Op::kZeroes:
      switch (s.method) {
        case ZeroMethod::kWriteSame:
          t = iscsi_writesame16_task(ctx, lun, lba, const_cast<unsigned char*>(ZeroBuffer()), bs_, blocks, 0,
                                     target_->info.thin && target_->info.write_same_unmap ? 1 : 0, 0, 0, OnTask, &s);
          break;
        case ZeroMethod::kUnmap: {
          const LunInfo& in = target_->info;
          const uint64_t per = in.max_unmap_blocks ? in.max_unmap_blocks : UINT32_MAX;
          s.unmap.clear();
          for (uint64_t b = 0; b < blocks; b += per)
            s.unmap.push_back({lba + b, static_cast<uint32_t>(std::min<uint64_t>(per, blocks - b))});
          t = iscsi_unmap_task(ctx, lun, 0, 0, s.unmap.data(), static_cast<int>(s.unmap.size()), OnTask, &s);
          break;
        }
        case ZeroMethod::kWrite: {
          s.piece_iov.assign(1, {const_cast<unsigned char*>(ZeroBuffer()), s.piece});
          t = iscsi_write16_iov_task(ctx, lun, lba, nullptr, static_cast<uint32_t>(s.piece), bs_, 0, 0, 0, 0, 0, OnTask,
                                     &s, reinterpret_cast<scsi_iovec*>(s.piece_iov.data()), 1);
          break;
        }
      }
      break;
  }
  if (t == nullptr) {
    s.error = absl::UnavailableError(absl::StrCat(Where(s), ": cannot queue the command: ", iscsi_get_error(ctx)));
    return false;
  }
  s.task = t;
  return true;
}

void IscsiQueue::Issue(Slot& s) {
  if (s.done_bytes >= s.length) {
    Finish(s, Status());
    return;
  }
  if (!session_) {
    Wait(s, Clock::now());
    return;
  }
  if (!IssuePiece(s)) {
    if (!iscsi_is_logged_in(session_->ctx())) {
      session_lost_ = true;
      Wait(s, Clock::now());
    } else {
      Finish(s, s.error);
    }
  }
}

void IscsiQueue::Wait(Slot& s, Clock::time_point at) {
  s.retry_at = at;
  if (!s.waiting) {
    s.waiting = true;
    waiting_.push_back(s.index);
  }
}

void IscsiQueue::OnTask(iscsi_context*, int status, void*, void* private_data) {
  Slot& s = *static_cast<Slot*>(private_data);
  IscsiQueue* q = s.queue;
  scsi_task* task = s.task;
  s.task = nullptr;
  if (q->tearing_down_) {
    if (task) scsi_free_scsi_task(task);
    return;  // SessionLost() has already listed the slot for re-issue
  }
  s.status = status;
  s.transient = IsTransientScsi(status, task);
  s.unit_attention = status == SCSI_STATUS_CHECK_CONDITION && task && task->sense.key == SCSI_SENSE_UNIT_ATTENTION;
  s.unsupported = status == SCSI_STATUS_CHECK_CONDITION && task && task->sense.key == SCSI_SENSE_ILLEGAL_REQUEST &&
                  (task->sense.ascq == SCSI_SENSE_ASCQ_INVALID_OPERATION_CODE ||
                   task->sense.ascq == SCSI_SENSE_ASCQ_INVALID_FIELD_IN_CDB);
  s.error = ScsiStatus(status, task, q->Where(s));
  if (s.error.ok() && s.op == Op::kRead && task && task->residual_status == SCSI_RESIDUAL_UNDERFLOW &&
      task->residual > 0)
    s.error = absl::DataLossError(absl::StrCat(q->Where(s), ": short read (", task->residual, " bytes missing)"));
  if (task) scsi_free_scsi_task(task);
  if (IsTransportFailure(status)) {
    q->session_lost_ = true;
    if (q->lost_reason_.empty()) q->lost_reason_ = std::string(s.error.message());
    q->Wait(s, Clock::now());
    return;
  }
  q->recorded_.push_back(s.index);
}

void IscsiQueue::Handle(Slot& s) {
  if (s.error.ok()) {
    s.done_bytes += s.piece;
    s.retries = 0;
    Issue(s);
    return;
  }
  if (s.unsupported && (s.op == Op::kDiscard || s.op == Op::kZeroes) && s.method != ZeroMethod::kWrite) {
    // The target refused WRITE SAME / UNMAP after all: write zeroes for the rest.
    if (s.method == ZeroMethod::kWriteSame) write_same_ok_ = false;
    s.method = ZeroMethod::kWrite;
    Issue(s);
    return;
  }
  if (s.transient && s.retries < kMaxRetries) {
    ++s.retries;
    Wait(s, Clock::now() + (s.unit_attention ? Clock::duration::zero() : Clock::duration(kRetryDelay)));
    return;
  }
  Finish(s, s.error);
}

void IscsiQueue::Finish(Slot& s, Status status) {
  deferred_.emplace_back(std::move(s.done), std::move(status));
  s.done = nullptr;
  Release(s);
}

void IscsiQueue::Release(Slot& s) {
  s.next_free = free_head_;
  free_head_ = s.index;
  --busy_;
}

// ------------------------------------------------------------------------------------------------
// The event loop

void IscsiQueue::FlushOut() {
  if (session_ && (iscsi_which_events(session_->ctx()) & POLLOUT)) Service(POLLOUT);
}

void IscsiQueue::Service(uint32_t events) {
  if (!session_) return;
  if (iscsi_service(session_->ctx(), static_cast<int>(events)) < 0) {
    session_lost_ = true;
    if (lost_reason_.empty()) lost_reason_ = iscsi_get_error(session_->ctx());
  }
}

void IscsiQueue::SessionLost(const std::string& why) {
  session_lost_ = false;
  if (!session_) return;
  spdlog::warn("iSCSI {}/{} at {}: session lost ({}); logging in again for up to {} s",
               target_->address.iqn, target_->address.lun, target_->address.portal, why,
               target_->options.reconnect_timeout_s);
  if (watched_fd_ >= 0) ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, watched_fd_, nullptr);
  watched_fd_ = -1;
  watched_events_ = 0;
  // Everything in flight on this session is re-issued on the next one.
  for (Slot& s : slots_)
    if (s.task) Wait(s, Clock::now());
  tearing_down_ = true;
  session_->MarkLost();
  session_.reset();
  tearing_down_ = false;
  for (Slot& s : slots_) {
    if (s.task) {  // libiscsi did not call back while tearing down: the task is ours to free
      scsi_free_scsi_task(s.task);
      s.task = nullptr;
    }
  }
  // Results recorded before the loss still count; the rest waits for the next session.
  down_since_ = Clock::now();
  next_login_ = down_since_;
}

void IscsiQueue::FailWaiting(const Status& why) {
  std::vector<uint32_t> w;
  w.swap(waiting_);
  for (uint32_t i : w) {
    slots_[i].waiting = false;
    Finish(slots_[i], why);
  }
  for (uint32_t i : parked_) Finish(slots_[i], why);
  parked_.clear();
}

void IscsiQueue::TryReconnect() {
  if (session_ || (waiting_.empty() && parked_.empty())) return;
  const auto now = Clock::now();
  if (down_since_ == Clock::time_point{}) down_since_ = next_login_ = now;  // a new window
  if (now < next_login_) return;
  const auto window = std::chrono::seconds(target_->options.reconnect_timeout_s);
  const auto left = std::chrono::duration_cast<std::chrono::seconds>(down_since_ + window - now).count();
  if (left <= 0) {
    Status why = absl::UnavailableError(absl::StrCat(
        "iSCSI session to ", target_->address.iqn, " at ", target_->address.portal, " lost",
        lost_reason_.empty() ? "" : " (" + lost_reason_ + ")", "; no new session within ",
        target_->options.reconnect_timeout_s, " s", last_login_error_.empty() ? "" : ": " + last_login_error_));
    spdlog::error("{}", std::string(why.message()));
    FailWaiting(why);
    down_since_ = {};
    lost_reason_.clear();
    return;
  }
  SessionOptions o = target_->options;
  o.login_timeout_s = static_cast<int>(std::clamp<int64_t>(left, 1, o.login_timeout_s));
  auto s = Session::Login(target_->address, o);
  if (!s.ok()) {
    last_login_error_ = std::string(s.status().message());
    next_login_ = Clock::now() + std::chrono::milliseconds(250);
    return;
  }
  session_ = std::move(*s);
  spdlog::info("iSCSI {}/{}: logged in again; re-issuing {} command(s)", target_->address.iqn,
               target_->address.lun, waiting_.size() + parked_.size());
  down_since_ = {};
  lost_reason_.clear();
  last_login_error_.clear();
  UpdateInterest();
  for (uint32_t i : waiting_) slots_[i].retry_at = Clock::now();
}

void IscsiQueue::Progress() {
  for (int round = 0; round < 64; ++round) {
    bool again = false;
    if (!recorded_.empty()) {
      std::vector<uint32_t> r;
      r.swap(recorded_);
      for (uint32_t i : r) Handle(slots_[i]);
      again = true;
    }
    if (session_lost_) {
      SessionLost(lost_reason_);
      again = true;
    }
    if (!session_) TryReconnect();
    if (session_ && !waiting_.empty()) {
      const auto now = Clock::now();
      std::vector<uint32_t> due, later;
      for (uint32_t i : waiting_) (slots_[i].retry_at <= now ? due : later).push_back(i);
      if (!due.empty()) {
        waiting_.swap(later);
        for (uint32_t i : due) {
          slots_[i].waiting = false;
          Issue(slots_[i]);
        }
        again = true;
      }
    }
    if (session_) FlushOut();
    if (!again && recorded_.empty() && !session_lost_) break;
  }
  UpdateInterest();
  ArmTimer();
}

void IscsiQueue::UpdateInterest() {
  if (!session_) return;
  const int fd = iscsi_get_fd(session_->ctx());
  const int which = iscsi_which_events(session_->ctx());
  const uint32_t events = EPOLLIN | ((which & POLLOUT) ? static_cast<uint32_t>(EPOLLOUT) : 0u);
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = kTagSocket;
  if (fd != watched_fd_) {
    if (watched_fd_ >= 0) ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, watched_fd_, nullptr);
    watched_fd_ = -1;
    if (fd >= 0 && ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) == 0) {
      watched_fd_ = fd;
      watched_events_ = events;
    }
  } else if (events != watched_events_ && fd >= 0) {
    if (::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &ev) == 0) watched_events_ = events;
  }
}

void IscsiQueue::ArmTimer() {
  // Wake for: a due retry, a due login attempt, and once a second while commands are in flight
  // (libiscsi checks command timeouts only inside iscsi_service()).
  std::optional<Clock::time_point> at;
  auto consider = [&](Clock::time_point t) {
    if (!at || t < *at) at = t;
  };
  const auto now = Clock::now();
  if (session_) {
    for (uint32_t i : waiting_) consider(slots_[i].retry_at);
    if (busy_ > 0 && target_->options.command_timeout_s > 0) consider(now + std::chrono::seconds(1));
  } else if (!waiting_.empty() || !parked_.empty()) {
    consider(next_login_);
  }
  // An armed wake that comes no later than needed stays (an early wake costs one empty pass, a
  // timerfd_settime per poll would cost a syscall per I/O); an unneeded one is left to expire.
  if (!at || (timer_at_ > now && timer_at_ <= *at)) return;
  itimerspec spec{};
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(*at - now).count();
  if (ns < 1000) ns = 1000;  // 0 would disarm
  spec.it_value.tv_sec = ns / 1000000000;
  spec.it_value.tv_nsec = ns % 1000000000;
  ::timerfd_settime(timer_fd_, 0, &spec, nullptr);
  timer_at_ = *at;
}

void IscsiQueue::Pump(int timeout_ms) {
  epoll_event evs[4];
  int n = ::epoll_wait(epoll_fd_, evs, 4, timeout_ms);
  for (int i = 0; i < n; ++i) {
    switch (evs[i].data.u64) {
      case kTagSocket: {
        uint32_t e = evs[i].events;
        int revents = ((e & EPOLLIN) ? POLLIN : 0) | ((e & EPOLLOUT) ? POLLOUT : 0) | ((e & EPOLLERR) ? POLLERR : 0) |
                      ((e & EPOLLHUP) ? POLLHUP : 0);
        Service(static_cast<uint32_t>(revents));
        break;
      }
      case kTagEvent: DrainFd(event_fd_); break;
      case kTagTimer: DrainFd(timer_fd_); if (session_) Service(0); break;
    }
  }
  Progress();
}

unsigned IscsiQueue::RunDone() { return RunDeferred(deferred_); }

Status IscsiQueue::submit() {
  if (parked_.empty()) return Status();
  std::vector<uint32_t> p;
  p.swap(parked_);
  for (uint32_t i : p) Issue(slots_[i]);
  Progress();
  return Status();
}

StatusOr<unsigned> IscsiQueue::poll(unsigned min_complete, int timeout_ms) {
  // Operations queued but not submitted are issued here too (as the other engines do).
  RETURN_IF_ERROR(submit());
  const unsigned target = std::min(min_complete, in_flight());
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  Pump(0);
  unsigned n = RunDone();
  while (n < target) {
    RETURN_IF_ERROR(submit());
    int wait_ms = -1;
    if (timeout_ms >= 0) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      if (left <= 0) break;
      wait_ms = static_cast<int>(std::min<int64_t>(left, INT_MAX));
    }
    Pump(wait_ms);
    n += RunDone();
  }
  return n;
}

}  // namespace vdisk::blockdev::iscsi
