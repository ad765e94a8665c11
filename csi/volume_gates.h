// The node side of per-volume QoS and group-snapshot holds: every Device a vhost-user export
// serves is wrapped in the volume's IoGate (blockdev/qos/gated_device.h), keyed by the CSI volume
// id in DriverContext::io_gates(), with the QoS the pool stores for the volume (its mutable
// parameters). QosRefresher re-reads them every few seconds, so a ControllerModifyVolume served
// by another process (the controller Deployment) reaches a running export without a restart;
// one served by this process applies at once (csi/modify_volume.h). On pools with write holds
// (RBD) the gate also answers other processes' requests to hold the volume's writes during a
// group snapshot (Pool::watch_write_holds). Thread-safe.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "blockdev/pool.h"
#include "blockdev/vhost/export_registry.h"
#include "common/periodic.h"
#include "csi/driver.h"

namespace vdisk::csi {

// Opens the volume (in the mode asked) through its gate, loading its QoS from the pool.
blockdev::vhost::VolumeOpener GatedOpener(DriverContext& ctx, std::shared_ptr<blockdev::Pool> pool,
                                          const std::string& csi_id, const std::string& local_id);

// Re-reads the pool's mutable parameters of every gated volume (see above).
class QosRefresher {
 public:
  QosRefresher(std::shared_ptr<DriverContext> ctx, int interval_seconds);
  ~QosRefresher() = default;  // stops the thread

  // One pass (also what the thread does each interval).
  void RefreshOnce();

 private:
  std::shared_ptr<DriverContext> ctx_;
  PeriodicThread thread_;  // last: stopped before ctx_ goes
};

}  // namespace vdisk::csi
