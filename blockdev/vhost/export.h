// vhost-user-blk export: serves one blockdev::Device to a QEMU (or any vhost-user front end)
// over a Unix socket, so a VM's virtio-blk disk reads and writes the volume directly through
// the Device's data path (io_uring, librbd, ...), without a kernel block device in between.
//
// Start() binds the socket and returns; a listener thread accepts one front end at a time. Each
// connection negotiates virtio-blk (read, write, flush, get-id, discard, write-zeroes, read-only,
// multi-queue, config space), maps the guest memory the front end shares, and runs one worker
// thread per virtqueue with its own IoQueue. When the front end disconnects (QEMU exits, is
// killed or restarts), in-flight requests complete, the state is reset and the listener accepts
// the next connection; the socket stays up until Stop().
//
// Ownership: the export shares ownership of the Device. Thread-safety: every method may be
// called from any thread. Errors: Start() returns INVALID_ARGUMENT for bad options, or the errno
// of socket/bind; a misbehaving front end or guest never crashes the export (its request fails,
// or its connection is closed).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "blockdev/device.h"
#include "common/status.h"

namespace vdisk::blockdev::vhost {

struct ExportOptions {
  std::string socket_path;            // created (a stale socket file is replaced)
  unsigned num_queues = 1;            // virtqueues offered (1..64); one worker thread each
  bool read_only = false;             // also forced when the Device is read-only
  std::string serial;                 // VIRTIO_BLK_T_GET_ID, at most 20 bytes
  bool discard = true;                // offer VIRTIO_BLK_F_DISCARD (writable exports)
  bool write_zeroes = true;           // offer VIRTIO_BLK_F_WRITE_ZEROES (writable exports)
  uint32_t max_discard_sectors = 1u << 21;       // per request, 512-byte sectors (1 GiB)
  uint32_t max_write_zeroes_sectors = 1u << 21;
  uint32_t max_request_bytes = 64u << 20;        // larger requests fail (IOERR)
  unsigned socket_mode = 0660;        // permissions of the socket file
  // Non-empty: per-volume Prometheus series labelled with this name (export_metrics.h).
  std::string metrics_volume;
};

struct ExportStats {
  uint64_t connections = 0;    // front ends accepted so far
  bool connected = false;      // a front end is attached now
  uint64_t requests = 0;
  uint64_t read_bytes = 0;
  uint64_t write_bytes = 0;
  uint64_t io_errors = 0;      // requests answered VIRTIO_BLK_S_IOERR
  uint64_t unsupported = 0;    // requests answered VIRTIO_BLK_S_UNSUPP
  uint64_t bad_requests = 0;   // malformed or hostile descriptor chains
  uint64_t bounced = 0;        // requests copied through an aligned bounce buffer
  uint64_t resubmitted = 0;    // requests a previous back end left in flight, run again here
  uint64_t broken_queues = 0;  // virtqueues abandoned because the driver corrupted the ring
  uint64_t capacity_bytes = 0;
  uint32_t block_size = 0;     // logical block size the guest sees
  bool read_only = false;      // served read-only (asked for, or the Device is)
  std::vector<uint64_t> queue_requests;  // requests per virtqueue (num_queues entries)
};

class Export {
 public:
  static StatusOr<std::unique_ptr<Export>> Start(std::shared_ptr<Device> device,
                                                 const ExportOptions& options);
  virtual ~Export() = default;  // stops the export (as Stop())

  // Disconnects the front end (in-flight requests complete first), stops the listener and
  // removes the socket file. Idempotent.
  virtual void Stop() = 0;

  // After the volume grew (Pool::expand_volume / node_expand): makes the guest see the new
  // size. `reopened`, if given, is the volume opened again (for engines whose Device captures
  // its size at open, like the io_uring file engine) and replaces the exported Device; else the
  // current Device's size() is taken. The queues' I/O is reopened so they see the new size, then
  // a connected guest gets a virtio config-change notification (vhost-user back-end request
  // channel; QEMU forwards it to the guest). FAILED_PRECONDITION if the size shrank (not
  // supported) or the new Device differs in block size or writability. Returns the new size.
  virtual StatusOr<uint64_t> Resize(std::shared_ptr<Device> reopened = nullptr) = 0;

  virtual std::string socket_path() const = 0;
  virtual ExportStats stats() const = 0;
};

}  // namespace vdisk::blockdev::vhost
