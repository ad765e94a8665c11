#include "blockdev/uring/uring_queue.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>

#include "absl/strings/str_cat.h"

namespace vdisk::blockdev::uring {

namespace {

constexpr uint32_t kNoSlot = UINT32_MAX;
constexpr unsigned kReapBatch = 64;
constexpr size_t kZeroBufferBytes = 1 << 20;
// Single-buffer requests up to this size use IORING_OP_READ/WRITE (nbytes is 32-bit).
constexpr uint64_t kMaxSingleBuffer = 1u << 30;

const char* OpName(int op) {
  static const char* const kNames[] = {"read", "write", "flush", "discard", "write_zeroes"};
  return kNames[op];
}

}  // namespace

UringQueue::UringQueue(const QueueTarget& target, unsigned depth)
    : target_(target), depth_(depth) {}

StatusOr<std::unique_ptr<UringQueue>> UringQueue::Create(const QueueTarget& target,
                                                         unsigned depth) {
  if (depth == 0 || depth > 4096)
    return absl::InvalidArgumentError(
        absl::StrCat(target.name, ": queue depth must be 1..4096, got ", depth));
  std::unique_ptr<UringQueue> q(new UringQueue(target, depth));
  RETURN_IF_ERROR(q->Init());
  return q;
}

Status UringQueue::Init() {
  // Fastest setup first (what fio's io_uring engine uses): one issuer, task work deferred until
  // the owner reaps (no IPIs, completions batched), TASKRUN_FLAG so a non-blocking peek knows to
  // enter the kernel. R_DISABLED: the ring binds to the thread that first submits (see
  // Enable()), not to the one that opened the queue. Older kernels: plain rings.
  // SUBMIT_ALL: one bad SQE does not stop the rest of a batch. No SQPOLL (a kernel thread per
  // queue would burn one of few cores).
  const unsigned kFlagSets[] = {
      IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG |
          IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_R_DISABLED,
      IORING_SETUP_SUBMIT_ALL,
      0,
  };
  int r = -EINVAL;
  for (unsigned flags : kFlagSets) {
    io_uring_params params{};
    params.flags = flags;
    r = io_uring_queue_init_params(depth_, &ring_, &params);
    if (r != -EINVAL) {
      disabled_ = r >= 0 && (flags & IORING_SETUP_R_DISABLED);
      break;
    }
  }
  if (r < 0) return ErrnoStatus(-r, absl::StrCat(target_.name, ": io_uring_setup"));
  ring_ok_ = true;
  r = io_uring_register_files(&ring_, &target_.fd, 1);
  if (r < 0) return ErrnoStatus(-r, absl::StrCat(target_.name, ": io_uring_register_files"));
  io_uring_register_ring_fd(&ring_);  // optional speed-up (5.18+); fine without
  slots_.resize(depth_);
  for (uint32_t i = 0; i < depth_; ++i) slots_[i].next_free = (i + 1 < depth_) ? i + 1 : kNoSlot;
  free_head_ = 0;
  deferred_.reserve(8);
  return Status();
}

UringQueue::~UringQueue() {
  if (ring_ok_) {
    while (in_flight() > 0) {
      auto n = poll(1, -1);
      if (!n.ok()) break;
    }
    // Drop the registered file (and buffers) synchronously: ring teardown itself is
    // asynchronous in the kernel, and a file reference it still held would keep e.g. the
    // file system busy for an umount right after the device is closed.
    if (!disabled_) {
      io_uring_unregister_files(&ring_);
      if (!fixed_.empty()) io_uring_unregister_buffers(&ring_);
    }
    io_uring_queue_exit(&ring_);
  }
  if (eventfd_ >= 0) ::close(eventfd_);
}

void UringQueue::Fail(IoCallback& done, Status status) {
  deferred_.emplace_back(std::move(done), std::move(status));
}

UringQueue::Slot* UringQueue::Start(Op op, uint64_t offset, uint64_t length, IoCallback& done) {
  auto where = [&] {
    return absl::StrCat(target_.name, ": ", OpName(static_cast<int>(op)), " [", offset, ", +",
                        length, ")");
  };
  if (!ring_ok_) {
    Fail(done, absl::FailedPreconditionError(absl::StrCat(where(), ": queue is not usable")));
    return nullptr;
  }
  if (op != Op::kRead && op != Op::kFlush && target_.read_only) {
    Fail(done, absl::PermissionDeniedError(absl::StrCat(where(), ": device is read-only")));
    return nullptr;
  }
  if (op != Op::kFlush) {
    const uint64_t bs = target_.block_size;
    const bool tail = offset + length == target_.size;  // an unaligned file size's last block
    if (offset % bs != 0 || (length % bs != 0 && !tail)) {
      Fail(done, absl::InvalidArgumentError(absl::StrCat(
                     where(), ": offset and length must be multiples of the block size ", bs)));
      return nullptr;
    }
    if (offset > target_.size || length > target_.size - offset) {
      Fail(done, absl::OutOfRangeError(
                     absl::StrCat(where(), ": beyond the end of the device (size ", target_.size,
                                  ")")));
      return nullptr;
    }
  }
  if (free_head_ == kNoSlot) {
    Fail(done, absl::ResourceExhaustedError(
                   absl::StrCat(where(), ": queue full (depth ", depth_, ")")));
    return nullptr;
  }
  uint32_t index = free_head_;
  Slot& s = slots_[index];
  free_head_ = s.next_free;
  ++busy_;
  s.done = std::move(done);
  s.op = op;
  s.method = Method::kNone;
  s.offset = offset;
  s.length = length;
  s.transferred = 0;
  s.iov = nullptr;
  s.iovcnt = 0;
  return &s;
}

bool UringQueue::CheckBuffers(Op op, uint64_t offset, const struct iovec* iov, int iovcnt,
                              uint64_t* length, IoCallback& done) {
  uint64_t total = 0;
  bool aligned = true;
  const uint64_t align = target_.buffer_alignment;
  if (iovcnt <= 0 || iovcnt > IOV_MAX || iov == nullptr) {
    Fail(done, absl::InvalidArgumentError(absl::StrCat(target_.name, ": ",
                                                       OpName(static_cast<int>(op)), ": ", iovcnt,
                                                       " iovecs (1..", IOV_MAX, " allowed)")));
    return false;
  }
  for (int i = 0; i < iovcnt; ++i) {
    total += iov[i].iov_len;
    if (target_.direct &&
        ((reinterpret_cast<uintptr_t>(iov[i].iov_base) % align) != 0 ||
         iov[i].iov_len % target_.block_size != 0))
      aligned = false;
  }
  *length = total;
  if (!aligned) {
    Fail(done, absl::InvalidArgumentError(absl::StrCat(
                   target_.name, ": ", OpName(static_cast<int>(op)), " [", offset, ", +", total,
                   "): O_DIRECT needs buffers aligned to ", align,
                   " bytes and segment lengths that are multiples of ", target_.block_size)));
    return false;
  }
  return true;
}

void UringQueue::readv(uint64_t offset, const struct iovec* iov, int iovcnt, IoCallback done) {
  uint64_t length = 0;
  if (!CheckBuffers(Op::kRead, offset, iov, iovcnt, &length, done)) return;
  Slot* s = Start(Op::kRead, offset, length, done);
  if (!s) return;
  s->iov = iov;
  s->iovcnt = iovcnt;
  if (length == 0) return Finish(static_cast<uint32_t>(s - slots_.data()), Status());
  Issue(static_cast<uint32_t>(s - slots_.data()));
}

void UringQueue::writev(uint64_t offset, const struct iovec* iov, int iovcnt, IoCallback done) {
  uint64_t length = 0;
  if (!CheckBuffers(Op::kWrite, offset, iov, iovcnt, &length, done)) return;
  Slot* s = Start(Op::kWrite, offset, length, done);
  if (!s) return;
  s->iov = iov;
  s->iovcnt = iovcnt;
  if (length == 0) return Finish(static_cast<uint32_t>(s - slots_.data()), Status());
  Issue(static_cast<uint32_t>(s - slots_.data()));
}

void UringQueue::flush(IoCallback done) {
  Slot* s = Start(Op::kFlush, 0, 0, done);
  if (s) Issue(static_cast<uint32_t>(s - slots_.data()));
}

void UringQueue::discard(uint64_t offset, uint64_t length, IoCallback done) {
  Slot* s = Start(Op::kDiscard, offset, length, done);
  if (!s) return;
  s->method = Method::kPunchHole;
  if (length == 0) return Finish(static_cast<uint32_t>(s - slots_.data()), Status());
  Issue(static_cast<uint32_t>(s - slots_.data()));
}

void UringQueue::write_zeroes(uint64_t offset, uint64_t length, IoCallback done) {
  Slot* s = Start(Op::kZeroes, offset, length, done);
  if (!s) return;
  s->method = Method::kZeroRange;
  if (length == 0) return Finish(static_cast<uint32_t>(s - slots_.data()), Status());
  Issue(static_cast<uint32_t>(s - slots_.data()));
}

io_uring_sqe* UringQueue::GetSqe() {
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  if (sqe == nullptr) {
    // Cannot happen while slots <= SQ entries, but never lose a request over it.
    if (Enable().ok()) io_uring_submit(&ring_);
    sqe = io_uring_get_sqe(&ring_);
  }
  return sqe;
}

int UringQueue::FixedBufferIndex(const void* base, size_t len) const {
  const auto* p = static_cast<const char*>(base);
  for (size_t i = 0; i < fixed_.size(); ++i) {
    const auto* start = static_cast<const char*>(fixed_[i].iov_base);
    if (p >= start && p + len <= start + fixed_[i].iov_len) return static_cast<int>(i);
  }
  return -1;
}

void UringQueue::Issue(uint32_t index) {
  Slot& s = slots_[index];
  io_uring_sqe* sqe = GetSqe();
  if (sqe == nullptr) {
    return Finish(index, absl::ResourceExhaustedError(
                             absl::StrCat(target_.name, ": no submission queue entry free")));
  }
  const uint64_t pos = s.offset + s.transferred;
  switch (s.op) {
    case Op::kRead:
    case Op::kWrite: {
      const struct iovec* iov = s.transferred == 0 ? s.iov : s.rest.data();
      const int cnt = s.transferred == 0 ? s.iovcnt : static_cast<int>(s.rest.size());
      const bool read = s.op == Op::kRead;
      if (cnt == 1 && iov[0].iov_len <= kMaxSingleBuffer) {
        const unsigned len = static_cast<unsigned>(iov[0].iov_len);
        const int fixed = fixed_.empty() ? -1 : FixedBufferIndex(iov[0].iov_base, len);
        if (fixed >= 0 && read) {
          io_uring_prep_read_fixed(sqe, 0, iov[0].iov_base, len, pos, fixed);
        } else if (fixed >= 0) {
          io_uring_prep_write_fixed(sqe, 0, iov[0].iov_base, len, pos, fixed);
        } else if (read) {
          io_uring_prep_read(sqe, 0, iov[0].iov_base, len, pos);
        } else {
          io_uring_prep_write(sqe, 0, iov[0].iov_base, len, pos);
        }
      } else if (read) {
        io_uring_prep_readv(sqe, 0, iov, cnt, pos);
      } else {
        io_uring_prep_writev(sqe, 0, iov, cnt, pos);
      }
      break;
    }
    case Op::kFlush:
      io_uring_prep_fsync(sqe, 0, IORING_FSYNC_DATASYNC);
      break;
    case Op::kDiscard:
    case Op::kZeroes: {
      const uint64_t rest = s.length - s.transferred;
      switch (s.method) {
        case Method::kPunchHole:
          io_uring_prep_fallocate(sqe, 0, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                                  static_cast<off_t>(pos), static_cast<off_t>(rest));
          break;
        case Method::kZeroRange:
          io_uring_prep_fallocate(sqe, 0, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
                                  static_cast<off_t>(pos), static_cast<off_t>(rest));
          break;
        case Method::kWriteZeroBuffer:
        case Method::kNone: {
          const unsigned len = static_cast<unsigned>(std::min<uint64_t>(rest, zero_buffer_.size()));
          io_uring_prep_write(sqe, 0, zero_buffer_.data(), len, pos);
          break;
        }
      }
      break;
    }
  }
  sqe->flags |= IOSQE_FIXED_FILE;
  io_uring_sqe_set_data64(sqe, index);
}

Status UringQueue::ErrorFor(const Slot& slot, int err) const {
  std::string what = absl::StrCat(target_.name, ": ", OpName(static_cast<int>(slot.op)));
  if (slot.op != Op::kFlush) absl::StrAppend(&what, " [", slot.offset, ", +", slot.length, ")");
  return ErrnoStatus(err, what);
}

bool UringQueue::Complete(uint32_t index, int res) {
  Slot& s = slots_[index];
  if (res == -EAGAIN || res == -EINTR) {  // transient: resubmit unchanged
    Issue(index);
    return false;
  }
  switch (s.op) {
    case Op::kRead:
    case Op::kWrite: {
      if (res < 0) {
        Finish(index, ErrorFor(s, -res));
        return true;
      }
      if (res == 0) {
        Finish(index, s.op == Op::kRead
                          ? absl::OutOfRangeError(absl::StrCat(
                                ErrorFor(s, EIO).message(), ": unexpected end of file after ",
                                s.transferred, " bytes (file shrank?)"))
                          : absl::DataLossError(absl::StrCat(
                                ErrorFor(s, EIO).message(), ": wrote 0 bytes after ",
                                s.transferred)));
        return true;
      }
      s.transferred += static_cast<uint64_t>(res);
      if (s.transferred >= s.length) {
        Finish(index, Status());
        return true;
      }
      // Short transfer: resubmit the remainder (iovecs rebuilt from the caller's array).
      s.rest.clear();
      uint64_t skip = s.transferred;
      for (int i = 0; i < s.iovcnt; ++i) {
        if (skip >= s.iov[i].iov_len) {
          skip -= s.iov[i].iov_len;
          continue;
        }
        s.rest.push_back({static_cast<char*>(s.iov[i].iov_base) + skip, s.iov[i].iov_len - skip});
        skip = 0;
      }
      Issue(index);
      return false;
    }
    case Op::kFlush:
      Finish(index, res < 0 ? ErrorFor(s, -res) : Status());
      return true;
    case Op::kDiscard:
    case Op::kZeroes: {
      if (s.method == Method::kWriteZeroBuffer) {
        if (res <= 0) {
          Finish(index, ErrorFor(s, res < 0 ? -res : EIO));
          return true;
        }
        s.transferred += static_cast<uint64_t>(res);
        if (s.transferred < s.length) {
          Issue(index);
          return false;
        }
        Finish(index, Status());
        return true;
      }
      if (res == -EOPNOTSUPP) {
        // Fallback chain: discard = punch hole -> zero range -> write zeroes;
        // write_zeroes = zero range -> punch hole -> write zeroes.
        const bool first = (s.op == Op::kDiscard) == (s.method == Method::kPunchHole);
        if (first) {
          s.method = s.method == Method::kPunchHole ? Method::kZeroRange : Method::kPunchHole;
        } else {
          s.method = Method::kWriteZeroBuffer;
          if (zero_buffer_.size() == 0)
            zero_buffer_ = AlignedBuffer(kZeroBufferBytes,
                                         std::max<size_t>(4096, target_.buffer_alignment));
        }
        Issue(index);
        return false;
      }
      Finish(index, res < 0 ? ErrorFor(s, -res) : Status());
      return true;
    }
  }
  return false;
}

void UringQueue::Finish(uint32_t index, Status status) {
  Slot& s = slots_[index];
  IoCallback done = std::move(s.done);
  s.done = nullptr;
  if (!s.rest.empty()) s.rest.clear();
  s.next_free = free_head_;
  free_head_ = index;
  --busy_;
  if (done) std::move(done)(std::move(status));
}

unsigned UringQueue::RunDeferred() {
  if (deferred_.empty()) return 0;
  std::vector<std::pair<IoCallback, Status>> batch;
  batch.swap(deferred_);
  for (auto& [done, status] : batch)
    if (done) std::move(done)(std::move(status));
  return static_cast<unsigned>(batch.size());
}

void UringQueue::DrainEventfd() {
  if (eventfd_ < 0) return;
  uint64_t v;
  while (::read(eventfd_, &v, sizeof v) < 0 && errno == EINTR) {
  }
}

Status UringQueue::Enable() {
  if (!disabled_) return Status();
  // liburing 2.3 declares io_uring_enable_rings() but does not export it: raw syscall.
  if (::syscall(__NR_io_uring_register, ring_.ring_fd, IORING_REGISTER_ENABLE_RINGS, nullptr, 0) < 0)
    return LastErrnoStatus(absl::StrCat(target_.name, ": io_uring enable"));
  disabled_ = false;
  return Status();
}

Status UringQueue::submit() {
  if (!ring_ok_ || io_uring_sq_ready(&ring_) == 0) return Status();
  RETURN_IF_ERROR(Enable());
  int r = io_uring_submit(&ring_);
  if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY)
    return ErrnoStatus(-r, absl::StrCat(target_.name, ": io_uring_enter"));
  return Status();
}

StatusOr<unsigned> UringQueue::poll(unsigned min_complete, int timeout_ms) {
  if (ring_ok_ && busy_ > 0) RETURN_IF_ERROR(Enable());
  DrainEventfd();
  unsigned done = RunDeferred();
  const unsigned target = std::min(min_complete, done + busy_);
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms < 0 ? 0 : timeout_ms);
  struct Reaped {
    uint32_t index;
    int res;
  };
  Reaped reaped[kReapBatch];
  for (;;) {
    io_uring_cqe* cqes[kReapBatch];
    unsigned n = ring_ok_ ? io_uring_peek_batch_cqe(&ring_, cqes, kReapBatch) : 0;
    if (n > 0) {
      // Copy out and release the CQ entries before running callbacks (they may queue more).
      for (unsigned i = 0; i < n; ++i)
        reaped[i] = {static_cast<uint32_t>(io_uring_cqe_get_data64(cqes[i])), cqes[i]->res};
      io_uring_cq_advance(&ring_, n);
      // What a callback queued (typically the next I/O of its slot) goes to the kernel as soon
      // as the callback returns, one submission per completion, as fio does by default
      // (iodepth_batch_submit=1). Holding it until the whole reaped batch had run made the queue
      // run in lockstep on a device that completes in batches (this VM's virtio disk): the
      // full depth went out as one plugged burst, came back as one batch, and each request
      // spent ~40% longer at the device (bench/RESULTS.md, io, 2026-12-06). The last
      // callback's operations stay queued for the wait that usually follows (submit and wait
      // in one syscall: at queue depth 1 one syscall per I/O).
      for (unsigned i = 0; i < n; ++i) {
        if (Complete(reaped[i].index, reaped[i].res)) ++done;
        if (i + 1 < n && io_uring_sq_ready(&ring_) > 0) RETURN_IF_ERROR(submit());
      }
      done += RunDeferred();
      continue;
    }
    if (done >= target || busy_ == 0) break;
    const unsigned want = target - done;
    io_uring_cqe* cqe = nullptr;
    int r;
    if (timeout_ms < 0) {
      r = io_uring_sq_ready(&ring_) > 0 ? io_uring_submit_and_wait(&ring_, want)
                                         : io_uring_wait_cqes(&ring_, &cqe, want, nullptr, nullptr);
      if (r > 0) r = 0;
    } else {
      auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(deadline - Clock::now());
      if (left.count() <= 0) {
        if (io_uring_sq_ready(&ring_) > 0) RETURN_IF_ERROR(submit());
        if (io_uring_cq_ready(&ring_) > 0) continue;
        break;
      }
      __kernel_timespec ts{};
      ts.tv_sec = left.count() / 1000000000;
      ts.tv_nsec = left.count() % 1000000000;
      r = io_uring_submit_and_wait_timeout(&ring_, &cqe, want, &ts, nullptr);
      if (r > 0) r = 0;
    }
    if (r == -ETIME || r == -EINTR || r == -EAGAIN || r == -EBUSY) {
      if (r == -ETIME && io_uring_cq_ready(&ring_) == 0) break;
      continue;
    }
    if (r < 0) return ErrnoStatus(-r, absl::StrCat(target_.name, ": io_uring_enter"));
  }
  return done;
}

int UringQueue::completion_fd() const {
  if (eventfd_ >= 0 || !ring_ok_) return eventfd_;
  // Bind the ring to the calling (owner) thread now: registration after that must come from it.
  if (!const_cast<UringQueue*>(this)->Enable().ok()) return -1;
  int fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fd < 0) return -1;
  if (io_uring_register_eventfd(const_cast<io_uring*>(&ring_), fd) < 0) {
    ::close(fd);
    return -1;
  }
  eventfd_ = fd;
  return eventfd_;
}

Status UringQueue::register_buffers(const struct iovec* regions, int count) {
  if (!ring_ok_) return absl::FailedPreconditionError(target_.name + ": queue is not usable");
  if (busy_ > 0 || !deferred_.empty())
    return absl::FailedPreconditionError(
        absl::StrCat(target_.name, ": register_buffers with operations in flight"));
  if (!fixed_.empty())
    return absl::FailedPreconditionError(
        absl::StrCat(target_.name, ": buffers are already registered on this queue"));
  if (count <= 0 || regions == nullptr) return Status();
  RETURN_IF_ERROR(Enable());
  int r = io_uring_register_buffers(&ring_, regions, static_cast<unsigned>(count));
  if (r < 0) return ErrnoStatus(-r, absl::StrCat(target_.name, ": io_uring_register_buffers"));
  fixed_.assign(regions, regions + count);
  return Status();
}

}  // namespace vdisk::blockdev::uring
