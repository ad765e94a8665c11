#include "blockdev/rbd/rbd_queue.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "blockdev/queue_support.h"

namespace vdisk::blockdev::rbd {

namespace {
constexpr uint32_t kNoSlot = UINT32_MAX;

const char* OpName(int op) {
  static const char* names[] = {"read", "write", "flush", "discard", "write_zeroes"};
  return names[op];
}
}  // namespace

StatusOr<std::unique_ptr<RbdQueue>> RbdQueue::Create(std::shared_ptr<void> owner,
                                                     rbd_image_t image, unsigned depth,
                                                     bool read_only, uint32_t block_size,
                                                     std::string name) {
  if (depth == 0 || depth > 65536)
    return absl::InvalidArgumentError(absl::StrCat(name, ": queue depth ", depth,
                                                   " out of range [1, 65536]"));
  std::unique_ptr<RbdQueue> q(new RbdQueue(image, depth, read_only, block_size, std::move(name)));
  q->owner_ = std::move(owner);
  q->eventfd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (q->eventfd_ < 0) return LastErrnoStatus(absl::StrCat(q->name_, ": eventfd"));
  return q;
}

RbdQueue::RbdQueue(rbd_image_t image, unsigned depth, bool read_only, uint32_t block_size,
                   std::string name)
    : image_(image), depth_(depth), read_only_(read_only), block_size_(block_size),
      name_(std::move(name)), slots_(depth) {
  for (uint32_t i = 0; i < depth_; ++i) {
    slots_[i].queue = this;
    slots_[i].index = i;
    slots_[i].next_free = i + 1 < depth_ ? i + 1 : kNoSlot;
  }
  parked_.reserve(depth_);
  done_.reserve(depth_);
  reaping_.reserve(depth_);
}

RbdQueue::~RbdQueue() {
  // Parked operations are issued too, so every callback runs exactly once.
  (void)submit();
  while (in_flight() > 0) {
    auto n = poll(1, -1);
    if (!n.ok()) break;
  }
  if (eventfd_ >= 0) ::close(eventfd_);
}

Status RbdQueue::ErrorFor(const Slot& s, int err) const {
  std::string what = absl::StrCat(name_, ": ", OpName(static_cast<int>(s.op)));
  if (s.op != Op::kFlush) absl::StrAppend(&what, " [", s.offset, ", +", s.length, ")");
  return ErrnoStatus(err, what);
}

RbdQueue::Slot* RbdQueue::Start(Op op, uint64_t offset, uint64_t length, IoCallback& done) {
  auto where = [&] {
    return absl::StrCat(name_, ": ", OpName(static_cast<int>(op)), " [", offset, ", +", length,
                        ")");
  };
  uint64_t size = 0;
  if (op != Op::kFlush) {
    int r = rbd_get_size(image_, &size);
    if (r < 0) {
      deferred_.emplace_back(std::move(done), ErrnoStatus(-r, where() + ": rbd_get_size"));
      return nullptr;
    }
  }
  if (Status s = CheckIo(where(), op == Op::kRead, op == Op::kFlush, read_only_, offset, length, block_size_, size);
      !s.ok()) {
    deferred_.emplace_back(std::move(done), std::move(s));
    return nullptr;
  }
  if (free_head_ == kNoSlot) {
    deferred_.emplace_back(std::move(done),
                           absl::ResourceExhaustedError(absl::StrCat(
                               where(), ": queue full (depth ", depth_, ")")));
    return nullptr;
  }
  Slot& s = slots_[free_head_];
  free_head_ = s.next_free;
  ++busy_;
  s.op = op;
  s.offset = offset;
  s.length = length;
  s.iov = nullptr;
  s.iovcnt = 0;
  s.done = std::move(done);
  return &s;
}

void RbdQueue::OnComplete(rbd_completion_t, void* arg) {
  // Runs on a librbd thread: only hand the slot over to the owner thread. The eventfd is
  // signalled with mu_ held: once the owner has taken this slot (under mu_) it may destroy the
  // queue and close the eventfd, so nothing here may touch the queue after unlocking. (Writing
  // after the unlock once let a late completion write into a closed, reused descriptor.)
  Slot* s = static_cast<Slot*>(arg);
  RbdQueue* q = s->queue;
  std::lock_guard lock(q->mu_);
  const bool was_empty = q->done_.empty();
  q->done_.push_back(s->index);
  if (was_empty) {
    uint64_t one = 1;
    ssize_t w = ::write(q->eventfd_, &one, sizeof one);
    (void)w;  // EAGAIN only if the counter is saturated: already readable
  }
}

void RbdQueue::Issue(Slot& s) {
  if ((s.op == Op::kDiscard || s.op == Op::kZeroes || s.op == Op::kRead || s.op == Op::kWrite) &&
      s.length == 0) {
    deferred_.emplace_back(std::move(s.done), Status());
    s.next_free = free_head_;
    free_head_ = s.index;
    --busy_;
    return;
  }
  int r = rbd_aio_create_completion(&s, &RbdQueue::OnComplete, &s.completion);
  if (r == 0) {
    switch (s.op) {
      case Op::kRead:
        r = rbd_aio_readv(image_, s.iov, s.iovcnt, s.offset, s.completion);
        break;
      case Op::kWrite:
        r = rbd_aio_writev(image_, s.iov, s.iovcnt, s.offset, s.completion);
        break;
      case Op::kFlush:
        r = rbd_aio_flush(image_, s.completion);
        break;
      case Op::kDiscard:
        r = rbd_aio_discard(image_, s.offset, s.length, s.completion);
        break;
      case Op::kZeroes:
        r = rbd_aio_write_zeroes(image_, s.offset, s.length, s.completion, 0, 0);
        break;
    }
    if (r < 0) {
      rbd_aio_release(s.completion);
      s.completion = nullptr;
    }
  }
  if (r < 0) {
    deferred_.emplace_back(std::move(s.done), ErrorFor(s, -r));
    s.next_free = free_head_;
    free_head_ = s.index;
    --busy_;
  }
}

Status RbdQueue::submit() {
  // Issue in queue order; Issue() never runs callbacks, so parked_ cannot grow meanwhile.
  for (uint32_t index : parked_) Issue(slots_[index]);
  parked_.clear();
  return Status();
}

void RbdQueue::Finish(Slot& s, Status status) {
  IoCallback done = std::move(s.done);
  s.done = nullptr;
  s.next_free = free_head_;
  free_head_ = s.index;
  --busy_;
  std::move(done)(std::move(status));
}

unsigned RbdQueue::RunDeferred() { return blockdev::RunDeferred(deferred_); }

unsigned RbdQueue::Reap() {
  uint64_t count;
  while (::read(eventfd_, &count, sizeof count) > 0) {
  }
  {
    std::lock_guard lock(mu_);
    reaping_.swap(done_);
  }
  unsigned n = 0;
  for (uint32_t index : reaping_) {
    Slot& s = slots_[index];
    ssize_t r = rbd_aio_get_return_value(s.completion);
    rbd_aio_release(s.completion);
    s.completion = nullptr;
    Status status;
    if (r < 0) {
      status = ErrorFor(s, static_cast<int>(-r));
    } else if (s.op == Op::kRead && static_cast<uint64_t>(r) < s.length) {
      // librbd reports bytes read; like QEMU, treat a short read (past a clone's parent
      // overlap, on older librbd) as zeroes rather than an error.
      uint64_t skip = static_cast<uint64_t>(r);
      for (int i = 0; i < s.iovcnt; ++i) {
        const size_t len = s.iov[i].iov_len;
        if (skip >= len) {
          skip -= len;
          continue;
        }
        std::memset(static_cast<char*>(s.iov[i].iov_base) + skip, 0, len - skip);
        skip = 0;
      }
    }
    Finish(s, std::move(status));
    ++n;
  }
  reaping_.clear();
  return n;
}

StatusOr<unsigned> RbdQueue::poll(unsigned min_complete, int timeout_ms) {
  // Operations queued but not submitted are issued here too (as the io_uring engine does), so
  // a caller that only polls keeps its queue moving; callbacks that queue more are covered by
  // the submit at the top of each round.
  RETURN_IF_ERROR(submit());
  const unsigned target = std::min(min_complete, in_flight());
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  unsigned n = RunDeferred() + Reap();
  while (n < target) {
    RETURN_IF_ERROR(submit());
    int wait_ms = -1;
    if (timeout_ms >= 0) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                      deadline - std::chrono::steady_clock::now())
                      .count();
      if (left <= 0) break;
      wait_ms = static_cast<int>(std::min<int64_t>(left, INT_MAX));
    }
    struct pollfd pfd = {eventfd_, POLLIN, 0};
    int r = ::poll(&pfd, 1, wait_ms);
    if (r < 0 && errno != EINTR) return LastErrnoStatus(name_ + ": poll");
    n += Reap() + RunDeferred();
  }
  return n;
}

}  // namespace vdisk::blockdev::rbd
