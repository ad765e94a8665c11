// Internal to the RBD engine: the IoQueue over librbd aio.
//
// Operations are validated and parked when queued, and issued to librbd (rbd_aio_*) by submit()
// (poll() submits whatever is parked, too).
// librbd completes them on its own threads; the completion callback only appends the slot index
// to a mutex-protected list and signals an eventfd (completion_fd()). poll() runs the callers'
// callbacks on the owner thread. Request state lives in `depth` preallocated slots; validation
// errors and a full queue are delivered through poll() like any completion.
#pragma once

#include <rbd/librbd.h>
#include <sys/uio.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "blockdev/device.h"
#include "blockdev/parking_queue.h"
#include "blockdev/queue_support.h"

namespace vdisk::blockdev::rbd {

class RbdQueue final : public ParkingIoQueue<RbdQueue> {
 public:
  // `owner` keeps `image` open for as long as the queue lives (it may outlive its Device).
  // `name` is for messages.
  static StatusOr<std::unique_ptr<RbdQueue>> Create(std::shared_ptr<void> owner,
                                                   rbd_image_t image, unsigned depth,
                                                   bool read_only, uint32_t block_size,
                                                   std::string name);
  ~RbdQueue() override;

  // readv / writev / flush / discard / write_zeroes: ParkingIoQueue.

  Status submit() override;
  StatusOr<unsigned> poll(unsigned min_complete, int timeout_ms) override;
  unsigned in_flight() const override {
    return busy_ + static_cast<unsigned>(deferred_.size());
  }
  unsigned depth() const override { return depth_; }
  int completion_fd() const override { return eventfd_; }

 private:
  friend class ParkingIoQueue<RbdQueue>;
  enum class Op : uint8_t { kRead, kWrite, kFlush, kDiscard, kZeroes };
  struct Slot {
    RbdQueue* queue = nullptr;
    uint32_t index = 0;
    uint32_t next_free = 0;
    Op op = Op::kRead;
    const struct iovec* iov = nullptr;
    int iovcnt = 0;
    uint64_t offset = 0;
    uint64_t length = 0;
    rbd_completion_t completion = nullptr;
    IoCallback done;
  };

  RbdQueue(rbd_image_t image, unsigned depth, bool read_only, uint32_t block_size,
           std::string name);
  Slot* Start(Op op, uint64_t offset, uint64_t length, IoCallback& done);
  void Issue(Slot& s);
  void Finish(Slot& s, Status status);
  Status ErrorFor(const Slot& s, int err) const;
  unsigned RunDeferred();
  unsigned Reap();
  static void OnComplete(rbd_completion_t c, void* arg);

  std::shared_ptr<void> owner_;
  rbd_image_t image_;
  unsigned depth_;
  bool read_only_;
  uint32_t block_size_;
  std::string name_;
  int eventfd_ = -1;

  std::vector<Slot> slots_;
  uint32_t free_head_ = 0;
  unsigned busy_ = 0;                 // slots in use (parked or issued)
  std::vector<uint32_t> parked_;      // queued, not yet submitted
  DeferredCompletions deferred_;

  std::mutex mu_;                     // guards done_ (written by librbd threads)
  std::vector<uint32_t> done_;
  std::vector<uint32_t> reaping_;     // owner-thread scratch swapped with done_
};

}  // namespace vdisk::blockdev::rbd
