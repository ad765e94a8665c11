// Watches the configured pools in the background so that Probe (which the livenessprobe
// sidecar calls every few seconds with a short deadline) answers at once with the pools' real
// state: each pool gets its own thread that runs Pool::health() and Pool::capacity() every
// `interval`. A pool is unhealthy when its last check failed, or when a check has not returned
// within `timeout` (a cluster that stopped answering blocks librados instead of failing).
// Pools that need CSI secrets to open are not watched (nothing to open them with).
// Changes of state are logged (warning when a pool goes bad, with the reason; info when it
// recovers). Series: vdisk_pool_up{pool,kind}, vdisk_pool_capacity_bytes{pool},
// vdisk_pool_available_bytes{pool}. Thread-safe; a check stuck in a backend at shutdown is
// left behind (its thread is detached and holds what it uses).
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "blockdev/registry.h"
#include "common/status.h"

namespace vdisk::csi {

class PoolHealthMonitor {
 public:
  PoolHealthMonitor(std::shared_ptr<blockdev::PoolSet> pools, std::chrono::milliseconds interval,
                    std::chrono::milliseconds timeout);
  ~PoolHealthMonitor();

  // OK when every watched pool is healthy (or not checked yet); else FAILED_PRECONDITION
  // naming the pool and the reason.
  Status Ready() const;

  struct State;  // per pool, shared with its thread

 private:
  std::vector<std::shared_ptr<State>> states_;
  uint64_t collector_ = 0;
};

}  // namespace vdisk::csi
