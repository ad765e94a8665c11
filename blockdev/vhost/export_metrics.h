// Prometheus series of one vhost-user-blk export (common/metrics.h, the default registry):
//   vdisk_vhost_requests_total{volume,socket,op}            requests completed
//   vdisk_vhost_bytes_total{volume,socket,op}               data bytes moved by reads / writes
//   vdisk_vhost_errors_total{volume,socket,op}              completed with IOERR or UNSUPP
//   vdisk_vhost_request_duration_seconds{volume,socket,op}  from the guest's request to its answer
// op is read, write, flush, discard, write_zeroes, get_id or other. The series are dropped when
// the export stops (the destructor). Record() is lock-free: safe from every queue worker.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "common/metrics.h"

namespace vdisk::blockdev::vhost {

class ExportMetrics {
 public:
  // `volume` names what is exported (a volume id, or a device URI for `vdisk serve`).
  ExportMetrics(std::string volume, std::string socket);
  ~ExportMetrics();
  ExportMetrics(const ExportMetrics&) = delete;
  ExportMetrics& operator=(const ExportMetrics&) = delete;

  // One completed request of virtio-blk type `type` (VIRTIO_BLK_T_*).
  void Record(uint32_t type, uint64_t data_bytes, bool failed, double seconds);

 private:
  static constexpr int kOps = 7;
  struct Op {
    std::shared_ptr<metrics::Counter> requests, bytes, errors;
    std::shared_ptr<metrics::Histogram> seconds;
  };
  std::string volume_, socket_;
  Op ops_[kOps];
};

}  // namespace vdisk::blockdev::vhost
