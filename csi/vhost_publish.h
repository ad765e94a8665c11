// Where a vhost-user export of a published volume lives on the node, and how it reaches the pod
// (attach: vhost-user, node_attach.h).
//
// Each publish (volume, target path) gets its own export, served from a short node-local
// directory <vhost-dir>/<16 hex digits of SHA-256(volume id, target path)>/ holding
//   vhost-user-blk.sock   the vhost-user-blk socket a VMM connects to (QEMU: reconnect=1)
//   vhost-user-blk.json   what it serves (VhostExportInfo below), for the VMM's configuration
// NodePublishVolume bind-mounts that directory, read-only, nosuid/nodev/noexec, onto the CSI
// target path: a Filesystem-mode target, the directory kubelet makes under the pod's volumes
// and the container runtime mounts into the container. So the target path's length never
// meets the 107-byte socket path limit, and a socket the plugin re-creates after a restart
// appears in every pod that mounted the directory (a VMM reconnects to it). The directory stays
// in place for as long as the volume is published there; only its socket is re-created.
//
// Pure path functions are thread-safe; the file and mount functions act on one directory and
// are serialised per volume by the node service's locks.
#pragma once

#include <cstdint>
#include <string>

#include "common/status.h"

namespace vdisk::csi {

inline constexpr char kVhostSocketName[] = "vhost-user-blk.sock";
inline constexpr char kVhostInfoName[] = "vhost-user-blk.json";

// The export directory of `volume_id` published at `target` under `vhost_dir`.
std::string VhostExportDir(const std::string& vhost_dir, const std::string& volume_id,
                           const std::string& target);
inline std::string VhostSocketPath(const std::string& export_dir) {
  return export_dir + "/" + kVhostSocketName;
}

// INVALID_ARGUMENT unless `vhost_dir` is absolute and short enough for every socket under it
// to fit a Unix socket address (checked once, at start-up).
Status CheckVhostDir(const std::string& vhost_dir);

// What vhost-user-blk.json says (format 1). Sizes in bytes.
struct VhostExportInfo {
  std::string volume_id;
  uint64_t size_bytes = 0;
  uint32_t logical_block_size = 512;
  unsigned num_queues = 1;
  bool read_only = false;
  std::string serial;
};

// Creates the export directory (mode 0755: the VMM, maybe unprivileged, must look inside).
Status MakeVhostExportDir(const std::string& export_dir);
// Writes vhost-user-blk.json atomically (mode 0644).
Status WriteVhostExportInfo(const std::string& export_dir, const VhostExportInfo& info);
// Serialisation, exposed for tests.
std::string VhostExportInfoJson(const VhostExportInfo& info);

// Makes the target a read-only bind mount of the export directory (creating the target
// directory, not its parent, if kubelet did not); OK if it already is a mount point.
// FAILED_PRECONDITION if the target's parent does not exist. The one place the export directory
// is mounted.
Status MountVhostExportDir(const std::string& export_dir, const std::string& target);

// Removes the export directory and what is left in it (the socket is removed by the export).
Status RemoveVhostExportDir(const std::string& export_dir);

}  // namespace vdisk::csi
