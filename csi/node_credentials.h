// The credentials a node keeps for the volumes staged on it.
//
// kubelet passes secrets to NodeStageVolume (nodeStageSecretRef), NodePublishVolume
// (nodePublishSecretRef) and NodeExpandVolume (nodeExpandSecretRef) only; NodeUnstage,
// NodeUnpublish and NodeGetVolumeStats carry none, and neither does a plugin restart that must
// serve its vhost-user exports again. For a pool without an identity of its own (its credentials
// come only from CSI secrets), the node keeps the secrets NodeStageVolume brought until
// NodeUnstageVolume, and opens the pool with them for the calls that carry none.
//
// One JSON file per volume under <state-dir>/credentials/ (directory 0700, files 0600, root's),
// written atomically; never logged. Thread-safety: as NodeStateStore (the node service serialises
// calls on one volume).
#pragma once

#include <string>
#include <vector>

#include "blockdev/pool.h"
#include "common/status.h"

namespace vdisk::csi {

class NodeCredentialStore {
 public:
  explicit NodeCredentialStore(std::string dir);
  Status Init();

  // Keeps `secrets` for the volume (an empty map removes what was kept).
  Status Save(const std::string& volume_id, const blockdev::Params& secrets);
  // What was kept; an empty map if nothing. DATA_LOSS for an unreadable file.
  StatusOr<blockdev::Params> Load(const std::string& volume_id) const;
  // OK if nothing was kept.
  Status Remove(const std::string& volume_id);
  // Removes what is kept for volumes not in `staged` (left by a crash between unstage steps).
  void RemoveAllBut(const std::vector<std::string>& staged);

 private:
  StatusOr<std::string> PathFor(const std::string& volume_id) const;
  std::string dir_;
};

}  // namespace vdisk::csi
