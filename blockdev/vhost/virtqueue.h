// A split virtqueue (virtio 1.x, 2.7) living in guest memory, processed by one thread.
//
// The device side: pops available descriptor heads, walks each chain into host iovecs that
// point straight into guest memory (no copies), and returns used entries, with notification
// suppression (VIRTIO_RING_F_EVENT_IDX or the ring flags). Everything read from guest memory is
// read once into local copies and validated: a descriptor outside guest memory, a chain longer
// than the ring (loops), a nested or malformed indirect table, readable-after-writable buffers
// or more than the configured iovecs / bytes fail that chain (INVALID_ARGUMENT) without touching
// anything outside guest memory. A corrupt ring (avail index jumping more than the ring size, a
// head out of range) fails with FAILED_PRECONDITION: the queue cannot be trusted any more.
// Not thread-safe: owned by the queue's worker thread. The GuestMemory must outlive it.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "blockdev/vhost/guest_memory.h"
#include "blockdev/vhost/inflight.h"
#include "blockdev/vhost/protocol.h"
#include "common/status.h"

namespace vdisk::blockdev::vhost {

// One descriptor chain, translated.
struct DescChain {
  uint16_t head = 0;
  std::vector<iovec> readable;  // driver -> device buffers, in order
  std::vector<iovec> writable;  // device -> driver buffers, in order
  uint64_t readable_bytes = 0;
  uint64_t writable_bytes = 0;
  void Clear() {
    readable.clear();
    writable.clear();
    readable_bytes = writable_bytes = 0;
  }
};

struct ChainLimits {
  size_t max_iovs = 1024;                  // readable + writable host iovecs
  uint64_t max_bytes = 64ull << 20;        // readable + writable bytes
};

struct VringConfig {
  uint16_t num = 0;            // ring size (entries)
  uint64_t desc_va = 0;        // front-end virtual addresses (SET_VRING_ADDR)
  uint64_t avail_va = 0;
  uint64_t used_va = 0;
  uint16_t last_avail_idx = 0; // SET_VRING_BASE
  bool event_idx = false;      // VIRTIO_RING_F_EVENT_IDX negotiated
  bool indirect = false;       // VIRTIO_RING_F_INDIRECT_DESC negotiated
  // The queue's inflight region (SET_INFLIGHT_FD), with room for `inflight_entries` heads; null
  // without inflight tracking. With it, the ring resumes where the region says (see Create).
  InflightQueueHeader* inflight = nullptr;
  uint16_t inflight_entries = 0;
};

class SplitVirtqueue {
 public:
  // Translates and checks the ring addresses: INVALID_ARGUMENT if num is 0 or above
  // kMaxQueueSize, or a ring is misaligned or not wholly inside one guest memory region.
  // With an inflight region (inflight.h) every pop and completion is logged in it, and a region
  // left by an earlier back end decides where the ring resumes: at the used index plus the heads
  // still in flight (whatever SET_VRING_BASE said), those heads being handed out again by
  // TakeResubmit(). INVALID_ARGUMENT for a region that does not fit the ring.
  static StatusOr<SplitVirtqueue> Create(const GuestMemory& mem, const VringConfig& config);

  // Heads the driver has made available and we have not popped yet.
  // FAILED_PRECONDITION if the driver's index runs more than `num` ahead (corrupt ring).
  StatusOr<uint16_t> Available();
  // Pops the next head; only after Available() > 0. FAILED_PRECONDITION if out of range.
  StatusOr<uint16_t> PopHead();
  // Heads an earlier back end took and never completed, oldest first (once; empty afterwards).
  // They count as popped: start them before anything Available() reports.
  bool has_resubmit() const { return !resubmit_.empty(); }
  std::vector<uint16_t> TakeResubmit() { return std::exchange(resubmit_, {}); }
  // Translates the chain starting at `head` (see the header comment for what fails it).
  Status ReadChain(uint16_t head, const ChainLimits& limits, DescChain* chain) const;

  // Queues a used entry; it becomes visible to the driver at PublishUsed().
  void AddUsed(uint16_t head, uint32_t written_len);
  // Publishes the queued used entries. Returns true if the driver asked to be notified for them
  // (call the call eventfd then).
  bool PublishUsed();
  // Tells the driver to kick for anything after what we popped (event index / flags), then
  // re-checks: returns true if more heads arrived meanwhile (process them before sleeping).
  bool ArmKick();
  // Asks the driver not to kick (we are busy and will look at the ring again on our own).
  // With EVENT_IDX a stale avail_event already does that; otherwise VRING_USED_F_NO_NOTIFY.
  void DisarmKick();

  uint16_t num() const { return num_; }
  uint16_t last_avail_idx() const { return last_avail_idx_; }
  uint16_t used_idx() const { return used_idx_; }

 private:
  SplitVirtqueue() = default;
  uint16_t LoadAvailIdx() const;

  const GuestMemory* mem_ = nullptr;
  uint16_t num_ = 0;
  bool event_idx_ = false;
  bool indirect_ = false;
  const VringDesc* desc_ = nullptr;   // num_ entries
  uint16_t* avail_ = nullptr;         // flags, idx, ring[num], used_event
  uint8_t* used_ = nullptr;           // flags, idx, ring[num] {id, len}, avail_event
  uint16_t last_avail_idx_ = 0;
  uint16_t used_idx_ = 0;             // next used slot (what we will publish)
  uint16_t published_used_idx_ = 0;
  uint16_t signalled_used_ = 0;
  bool signalled_used_valid_ = false;
  std::optional<InflightLog> log_;
  std::vector<uint16_t> resubmit_;
};

}  // namespace vdisk::blockdev::vhost
