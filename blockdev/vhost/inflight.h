// Inflight I/O tracking for split virtqueues (VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD; QEMU
// docs/interop/vhost-user.rst, "Inflight I/O tracking"). It lets a restarted back end pick up a
// running VM: the back end logs, in memory QEMU keeps across the back end's death, which heads it
// has taken from the avail ring and not yet returned; a new back end resubmits exactly those.
//
// InflightArea is the shared area: a memfd created for GET_INFLIGHT_FD (QEMU keeps the fd for
// the VM's life) and mapped from SET_INFLIGHT_FD (on every connection). InflightLog is one
// queue's region, written by that queue's worker: Taken() when a head is popped, Used() when its
// used entry is queued, Published() once the used index covering them is visible to the driver.
// A crash between any two steps is recoverable: a popped head is logged before its I/O starts,
// and a used head stays logged until the driver can see it completed, so nothing completed is
// run again and nothing taken is forgotten.
//
// The area's contents are written by us but held by the front end: every value read back is
// range-checked (a corrupt area fails the queue's start, it is never trusted blindly).
// InflightArea: immutable after Map(), unmapped on destruction. InflightLog: single-threaded.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "blockdev/vhost/protocol.h"
#include "blockdev/vhost/unique_fd.h"
#include "common/status.h"

namespace vdisk::blockdev::vhost {

class InflightArea {
 public:
  // A zeroed memfd for `num_queues` regions of `queue_size` entries; `reply` describes it.
  // INVALID_ARGUMENT for 0 queues or a queue size that is not a power of two <= kMaxQueueSize.
  static StatusOr<UniqueFd> Create(uint16_t num_queues, uint16_t queue_size, InflightPayload* reply);
  // Maps the area `p` describes from `fd`. INVALID_ARGUMENT if it cannot hold `num_queues`
  // regions of `queue_size` entries or lies past the end of the fd.
  static StatusOr<std::unique_ptr<InflightArea>> Map(const InflightPayload& p, UniqueFd fd);
  ~InflightArea();
  InflightArea(const InflightArea&) = delete;
  InflightArea& operator=(const InflightArea&) = delete;

  uint16_t num_queues() const { return num_queues_; }
  uint16_t queue_size() const { return queue_size_; }
  // The region of queue `index`, or nullptr past num_queues().
  InflightQueueHeader* queue(unsigned index) const;

 private:
  InflightArea() = default;
  void* map_base_ = nullptr;
  size_t map_size_ = 0;
  uint8_t* area_ = nullptr;
  uint16_t num_queues_ = 0;
  uint16_t queue_size_ = 0;
};

class InflightLog {
 public:
  // Takes over `region` (room for `entries` heads) for a ring of `num` entries whose used index
  // (read from the ring) is `used_idx`. A fresh region is initialised. A used region is repaired
  // (a batch the driver could already see is no longer in flight) and the heads still in flight
  // are collected, oldest first. INVALID_ARGUMENT if the region is too small for the ring or
  // holds impossible state (a head out of range, a batch longer than the ring).
  static StatusOr<InflightLog> Attach(InflightQueueHeader* region, uint16_t entries, uint16_t num,
                                      uint16_t used_idx);

  // Heads taken by an earlier back end and never used, in the order they were taken.
  const std::vector<uint16_t>& in_flight() const { return resubmit_; }

  void Taken(uint16_t head);
  void Used(uint16_t head);
  // The driver can now see used index `used_idx`, which covers every head Used() since the last
  // call.
  void Published(uint16_t used_idx);

 private:
  InflightLog() = default;
  InflightQueueHeader* hdr_ = nullptr;
  InflightDescSplit* desc_ = nullptr;
  uint64_t counter_ = 0;
  std::vector<uint16_t> batch_;     // heads used since the last Published()
  std::vector<uint16_t> resubmit_;
};

}  // namespace vdisk::blockdev::vhost
