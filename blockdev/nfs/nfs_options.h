// Configuration of an NFS pool (from its PoolConfig), of one volume (StorageClass parameters),
// and the node's kernel mount command. Pure functions, thread-safe.
//
// Pool options (PoolConfig.options; `--pool name=nas,kind=nfs,server=...,export=...` or
// `--pool 'nfs://<server>/<export>?dir=/vdisk&nfsport=2049&...'`):
//   server, export   the NFS server and the export to use (required)
//   dir              the pool's directory inside the export (default "/": the export's root;
//                    created if missing; a non-empty directory without a vdisk pool is refused)
//   nfsport, mountport   ports for servers without rpcbind (default: ask rpcbind)
//   uid, gid         AUTH_SYS identity for the controller and the data path (default: own)
//   local_path       where THIS host sees the export's root on the NFS server's own file system
//                    (vdisk running beside the server, e.g. the export is a local XFS). Enables
//                    server-side reflink snapshots and clones (O(1)); checked at open against a
//                    marker written through NFS (FAILED_PRECONDITION if it shows another tree)
//   reflink          auto (reflink when local_path can) | on (refuse to open without) | off
//   mount_options    options of the nodes' kernel NFS mounts (Filesystem mode), e.g.
//                    "nfsvers=4.1,hard"; default: the kernel's
//   node_mount_dir   where nodes mount volume directories (default /var/lib/vdisk/nfs)
//   timeout          seconds the controller waits for the server per call (default 30)
//   abandon_after    seconds after which a create whose creator went silent is cleaned up by
//                    the next one that meets it (default 120)
//
// StorageClass parameters (VolumeRequest.params): preallocation=none|full (full reserves the
// image's blocks: fallocate through local_path, else zeroes written through NFSv3; RESOURCE_
// EXHAUSTED without the space). `pool` and namespaced keys (with '/') are ignored; anything
// else is INVALID_ARGUMENT.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "blockdev/nfs/nfs_target.h"
#include "blockdev/pool.h"
#include "blockdev/registry.h"
#include "common/status.h"

namespace vdisk::blockdev::nfs {

struct NfsPoolOptions {
  std::string name = "nfs";  // the configured (vdisk) pool name
  NfsTarget target;
  std::string dir = "/";     // within the export
  std::string local_path;    // "" = none
  enum class Reflink { kAuto, kOn, kOff } reflink = Reflink::kAuto;
  std::string mount_options;
  std::string node_mount_dir = "/var/lib/vdisk/nfs";
  int timeout_s = 30;
  int abandon_after_s = 120;
};

// INVALID_ARGUMENT for unknown options, bad values, a missing server or export.
StatusOr<NfsPoolOptions> ParseNfsPoolConfig(const PoolConfig& config);

struct NfsVolumeParams {
  bool preallocate = false;
};
// INVALID_ARGUMENT on unknown keys or bad values.
StatusOr<NfsVolumeParams> ParseNfsVolumeParams(const Params& params);

// The node's kernel mount of a volume directory (`path` within the export):
//   mount -t nfs -o <mount_options>[,port=N,mountport=M][,ro] <server>:<export><path> <target>
std::vector<std::string> NodeMountCommand(const NfsPoolOptions& options, const std::string& path,
                                          const std::string& target, bool read_only);

}  // namespace vdisk::blockdev::nfs
