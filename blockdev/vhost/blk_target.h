// What every queue of one export shares: the Device, the export's policy (read-only, serial,
// limits) and the current capacity. Thread-safe: immutable except `capacity_bytes` and the
// counters, which are atomics.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "blockdev/device.h"
#include "blockdev/vhost/export_metrics.h"

namespace vdisk::blockdev::vhost {

constexpr unsigned kMaxExportQueues = 64;

struct BlkStats {
  std::atomic<uint64_t> requests{0};
  std::atomic<uint64_t> read_bytes{0};
  std::atomic<uint64_t> write_bytes{0};
  std::atomic<uint64_t> io_errors{0};       // requests completed with IOERR
  std::atomic<uint64_t> unsupported{0};     // requests completed with UNSUPP
  std::atomic<uint64_t> bad_requests{0};    // malformed / hostile descriptor chains
  std::atomic<uint64_t> bounced{0};         // requests copied through an aligned buffer
  std::atomic<uint64_t> resubmitted{0};     // requests an earlier back end left in flight
  std::atomic<uint64_t> queue_requests[kMaxExportQueues] = {};  // per virtqueue
};

struct BlkTarget {
  std::atomic<Device*> device{nullptr};  // replaced by Export::Resize(reopened)
  bool read_only = false;
  std::string serial;               // VIRTIO_BLK_T_GET_ID (at most 20 bytes used)
  uint32_t block_size = 512;        // logical block size advertised (device's)
  uint32_t buffer_alignment = 1;    // device buffer alignment; others go through a bounce buffer
  uint32_t max_discard_sectors = 0;       // 0: discard not offered
  uint32_t max_write_zeroes_sectors = 0;  // 0: write-zeroes not offered
  std::atomic<uint64_t> capacity_bytes{0};
  BlkStats stats;
  ExportMetrics* metrics = nullptr;  // per-volume Prometheus series, if the export has a name
};

}  // namespace vdisk::blockdev::vhost
