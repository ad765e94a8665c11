// What the CSI services of one vdisk-csi process share: its options, the configured pools, the
// per-object operation locks, the node's persisted state and its vhost-user exports.
//
// Thread-safety: all members are safe to use from concurrent RPC handlers.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "blockdev/qos/io_gate.h"
#include "blockdev/registry.h"
#include "blockdev/vhost/export_registry.h"
#include "common/status.h"
#include "csi/csi.pb.h"
#include "csi/node_credentials.h"
#include "csi/node_state.h"
#include "csi/op_locks.h"
#include "csi/pool_health.h"
#include "csi/provisioning_limit.h"

namespace vdisk::csi {

inline constexpr char kDefaultDriverName[] = "vdisk.csi.io";
inline constexpr char kVendorVersion[] = "0.1.0";

// The secrets of a call that carries none by the CSI spec (ListVolumes, GetCapacity,
// ControllerGetVolume, Probe, the plugin's own start-up): the pool opens with its own identity,
// and one that has none answers UNAUTHENTICATED (never a default identity from a config file).
inline const blockdev::Params kNoCallSecrets{};

struct DriverOptions {
  std::string driver_name = kDefaultDriverName;
  std::string node_id;
  bool serve_controller = true;
  bool serve_node = true;
  // Node records (staging / publish state). One directory per node.
  std::string state_dir = "/var/lib/vdisk-csi";
  // Staging and target paths must lie under one of these, and are resolved beneath it without
  // following symlinks (csi/mounter.h). Empty: any absolute path, resolved from "/" without
  // symlinks (csi-sanity and manual use); deployments set the kubelet directory.
  std::vector<std::string> allowed_path_roots;
  // Reported by NodeGetInfo; 0 means no limit.
  int64_t max_volumes_per_node = 0;
  // Short node-local directory holding the vhost-user export directories (vhost_publish.h);
  // empty: <state_dir>/vhost. Must persist across plugin restarts (a hostPath).
  std::string vhost_dir;
  // Group given to vhost-user sockets (mode 0660) so an unprivileged QEMU can connect, e.g.
  // KubeVirt's virt-launcher (qemu, gid 107); -1 leaves them root:root.
  int64_t vhost_socket_gid = -1;
  // Topology segment key naming this node (for node-local pools).
  std::string topology_key = "topology.vdisk.csi.io/node";
  // Whether GetPluginCapabilities lists SNAPSHOT_METADATA_SERVICE (older csi-sanity rejects
  // services it does not know; the deployment with the snapshot-metadata sidecar turns it on).
  bool advertise_snapshot_metadata = false;
  // How often the node re-reads the mutable parameters (QoS) of the volumes it exports, to pick
  // up a ControllerModifyVolume served by another process. 0: never.
  int qos_refresh_seconds = 5;
};

class DriverContext {
 public:
  DriverContext(DriverOptions options, std::shared_ptr<blockdev::PoolSet> pools);

  // Creates the state directory (node records, clone checkpoints). Call once before serving.
  Status Init();

  // Where the vhost-user export directories of published volumes live (vhost_publish.h).
  std::string vhost_dir() const {
    return options_.vhost_dir.empty() ? options_.state_dir + "/vhost" : options_.vhost_dir;
  }

  // Where interrupted host copies keep their checkpoints.
  std::string checkpoint_dir() const { return options_.state_dir + "/clone-checkpoints"; }

  // Set at shutdown: long operations (host copies) stop and stay resumable.
  void RequestCancel() { cancel_ = true; }
  const std::atomic<bool>* cancel_flag() const { return &cancel_; }

  const DriverOptions& options() const { return options_; }
  blockdev::PoolSet& pools() { return *pools_; }
  OpLocks& locks() { return locks_; }
  NodeStateStore& node_state() { return node_state_; }
  // Stage secrets kept for the node calls that carry none (node_credentials.h).
  NodeCredentialStore& node_credentials() { return node_credentials_; }
  // The vhost-user-blk exports of volumes published with attach: vhost-user (node_attach.h).
  blockdev::vhost::ExportRegistry& vhost_exports() { return vhost_exports_; }
  // The I/O gates (QoS limits, group-snapshot holds) of the volumes this process exports, by
  // CSI volume id.
  blockdev::qos::GateRegistry& io_gates() { return io_gates_; }

  // The pool named in a decoded id. NOT_FOUND (the object cannot exist) if no such pool is
  // configured; otherwise the PoolSet's result.
  StatusOr<std::shared_ptr<blockdev::Pool>> PoolForId(const std::string& pool_name,
                                                      const blockdev::Params& secrets);

  // Reserves `extra_bytes` more in pool `pool_name` against its over-provisioning limit, read
  // against the pool's capacity for the StorageClass `params` (provisioning_limit.h).
  // RESOURCE_EXHAUSTED past the limit; the pool's error if its capacity cannot be read.
  StatusOr<ProvisioningLimits::Reservation> ReserveCapacity(const std::string& pool_name, blockdev::Pool& pool,
                                                            const blockdev::Params& params, uint64_t extra_bytes);
  // What pool `pool_name` can still promise, given its `capacity`.
  StatusOr<uint64_t> PromisableCapacity(const std::string& pool_name, blockdev::Pool& pool,
                                        const blockdev::Capacity& capacity);
  // Starts watching the pools' health (pool_health.h); Probe then reports it.
  void StartHealthMonitor(std::chrono::milliseconds interval, std::chrono::milliseconds timeout) {
    health_ = std::make_unique<PoolHealthMonitor>(pools_, interval, timeout);
  }
  // OK, or FAILED_PRECONDITION naming an unhealthy pool. Without a monitor: every pool that
  // needs no secrets must open.
  Status PoolsReady();

  // {topology_key: node_id}.
  ::csi::v1::Topology NodeTopology() const;

  // True if any configured pool can be opened without secrets and reports node_local.
  bool AnyNodeLocalPool();
  // True if any configured pool admits nodes one by one (Capabilities::controller_publish): the
  // driver then offers ControllerPublishVolume.
  bool AnyPublishingPool();

  // INVALID_ARGUMENT unless `path` is absolute, free of ".." components, and under an allowed
  // root. `what` names the field.
  Status CheckPathAllowed(const std::string& path, const std::string& what) const;

 private:
  DriverOptions options_;
  std::shared_ptr<blockdev::PoolSet> pools_;
  OpLocks locks_;
  NodeStateStore node_state_;
  NodeCredentialStore node_credentials_;
  blockdev::qos::GateRegistry io_gates_;  // outlives the exports (declared before them)
  blockdev::vhost::ExportRegistry vhost_exports_;
  ProvisioningLimits limits_;
  std::unique_ptr<PoolHealthMonitor> health_;
  std::atomic<bool> cancel_{false};
};

// VolumeCondition from a pool's condition string: "" healthy; "thin: ..." a warning (reported,
// not abnormal); anything else abnormal.
void FillCondition(const std::string& condition, ::csi::v1::VolumeCondition* out);

}  // namespace vdisk::csi
