// Turns one virtqueue's virtio-blk requests into IoQueue operations and completes them.
//
// Process() pops every available chain, validates it (types, alignment, bounds against the
// current capacity, read-only policy, hostile descriptors) and queues the I/O with the buffers
// pointing straight into guest memory (a request whose buffers do not meet the device's
// alignment goes through an aligned bounce buffer). Completion callbacks (run inside
// IoQueue::poll() on the same thread) write the status byte and queue the used entry;
// Publish() makes them visible and says whether to notify the driver. A bad chain completes
// with VIRTIO_BLK_S_IOERR when its status byte can be located (used length 0 otherwise) and
// never stops the queue; only a corrupt ring does (Process returns FAILED_PRECONDITION).
// Single-threaded: owned by the queue's worker.
#pragma once

#include <chrono>
#include <cstdint>
#include <vector>

#include "blockdev/aligned_buffer.h"
#include "blockdev/device.h"
#include "blockdev/vhost/blk_target.h"
#include "blockdev/vhost/virtqueue.h"

namespace vdisk::blockdev::vhost {

class BlkProcessor {
 public:
  BlkProcessor(BlkTarget* target, unsigned queue_index, SplitVirtqueue* vq, IoQueue* io,
               ChainLimits limits);

  // Starts every available request and submits them. FAILED_PRECONDITION on a corrupt ring.
  // While requests are in flight the driver is asked not to kick: call Process() again after
  // every completion batch (the worker does), so requests queued meanwhile are picked up.
  Status Process();
  // Makes completed requests visible; true if the driver wants an interrupt.
  bool Publish() { return vq_->PublishUsed(); }
  unsigned in_flight() const { return in_flight_; }

 private:
  struct Request {
    bool busy = false;
    DescChain chain;
    uint8_t* status = nullptr;     // in guest memory; null if the chain has no writable byte
    uint32_t written = 0;          // used length reported to the driver
    uint32_t type = 0;
    uint64_t data_len = 0;
    std::vector<iovec> data;       // data buffers (views into chain)
    AlignedBuffer bounce;
    iovec bounce_iov{};
    std::chrono::steady_clock::time_point started;  // for the latency metric
  };

  Status StartOne(uint16_t head);
  void Start(Request& r);
  void Complete(Request& r, uint8_t status);
  void OnIo(uint16_t head, Status s);
  IoCallback Callback(uint16_t head);
  bool NeedsBounce(const Request& r) const;

  BlkTarget* target_;
  unsigned queue_index_;
  SplitVirtqueue* vq_;
  IoQueue* io_;
  ChainLimits limits_;
  std::vector<Request> requests_;  // indexed by head
  unsigned in_flight_ = 0;
};

}  // namespace vdisk::blockdev::vhost
