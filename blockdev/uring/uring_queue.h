// Internal to the io_uring engine: the IoQueue over one io_uring instance.
//
// One ring per queue; the device fd is a registered file (index 0). Request state lives in
// `depth` preallocated slots (user_data = slot index), so queuing an operation allocates nothing
// (the caller's callback is moved into the slot). Validation errors and "queue full" are
// delivered through poll() like any completion. Owned by one thread (see blockdev/device.h).
// Operations queued by a completion callback inside poll() are submitted as that callback
// returns (one submission per completion, so the queue does not run in lockstep bursts),
// except those of the last callback of a reaped batch: like operations queued outside poll(),
// they go with the next submit() or waiting poll() (submit + wait in one syscall).
#pragma once

#include <liburing.h>
#include <sys/uio.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "blockdev/aligned_buffer.h"
#include "blockdev/device.h"

namespace vdisk::blockdev::uring {

// What a queue needs to know about its device (copied at open; the queue keeps the fd alive
// through the ring's registered-file reference, so it may outlive the Device object).
struct QueueTarget {
  int fd = -1;
  bool block_device = false;
  bool direct = false;
  bool read_only = false;
  uint64_t size = 0;
  uint32_t block_size = 512;
  uint32_t buffer_alignment = 1;
  std::string name;  // for error messages ("file:/path")
};

class UringQueue final : public IoQueue {
 public:
  static StatusOr<std::unique_ptr<UringQueue>> Create(const QueueTarget& target, unsigned depth);
  ~UringQueue() override;

  void readv(uint64_t offset, const struct iovec* iov, int iovcnt, IoCallback done) override;
  void writev(uint64_t offset, const struct iovec* iov, int iovcnt, IoCallback done) override;
  void flush(IoCallback done) override;
  void discard(uint64_t offset, uint64_t length, IoCallback done) override;
  void write_zeroes(uint64_t offset, uint64_t length, IoCallback done) override;

  Status submit() override;
  StatusOr<unsigned> poll(unsigned min_complete, int timeout_ms) override;
  unsigned in_flight() const override { return busy_ + static_cast<unsigned>(deferred_.size()); }
  unsigned depth() const override { return depth_; }
  int completion_fd() const override;
  Status register_buffers(const struct iovec* regions, int count) override;

 private:
  enum class Op : uint8_t { kRead, kWrite, kFlush, kDiscard, kZeroes };
  // How a discard / write-zeroes is carried out; on EOPNOTSUPP the next one is tried.
  enum class Method : uint8_t { kPunchHole, kZeroRange, kWriteZeroBuffer, kNone };

  struct Slot {
    IoCallback done;
    Op op = Op::kRead;
    Method method = Method::kNone;
    int iovcnt = 0;
    const struct iovec* iov = nullptr;  // caller's array, valid until `done` runs
    uint64_t offset = 0;
    uint64_t length = 0;
    uint64_t transferred = 0;           // bytes done so far (short transfers, zero-buffer writes)
    std::vector<struct iovec> rest;     // remaining iovecs after a short transfer (rare path)
    uint32_t next_free = 0;
  };

  UringQueue(const QueueTarget& target, unsigned depth);
  Status Init();

  // Validates and claims a slot; on failure queues a deferred error and returns nullptr.
  Slot* Start(Op op, uint64_t offset, uint64_t length, IoCallback& done);
  void Fail(IoCallback& done, Status status);
  bool CheckBuffers(Op op, uint64_t offset, const struct iovec* iov, int iovcnt, uint64_t* length,
                    IoCallback& done);
  io_uring_sqe* GetSqe();
  // Prepares the SQE for the slot's next step (first issue, resubmission, fallback).
  void Issue(uint32_t index);
  // Handles one CQE; returns true when the operation finished (callback ran).
  bool Complete(uint32_t index, int res);
  void Finish(uint32_t index, Status status);
  Status ErrorFor(const Slot& slot, int err) const;
  int FixedBufferIndex(const void* base, size_t len) const;
  unsigned RunDeferred();
  // Enables a ring created disabled, binding it to the calling thread (SINGLE_ISSUER).
  Status Enable();
  void DrainEventfd();

  QueueTarget target_;
  unsigned depth_;
  io_uring ring_{};
  bool ring_ok_ = false;
  bool disabled_ = false;
  std::vector<Slot> slots_;
  uint32_t free_head_ = 0;
  unsigned busy_ = 0;
  unsigned unsubmitted_ = 0;
  std::vector<std::pair<IoCallback, Status>> deferred_;
  std::vector<struct iovec> fixed_;  // registered buffer regions
  AlignedBuffer zero_buffer_;        // only for the write-zeroes fallback
  mutable int eventfd_ = -1;         // created on first completion_fd()
};

}  // namespace vdisk::blockdev::uring
