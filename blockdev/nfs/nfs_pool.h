// The NFS pool (kind "nfs"): VM disks as thin raw images on an NFS export, the KubeVirt/CDI
// way -- one directory per volume holding `disk.img` -- provisioned, expanded and deleted by
// the controller through libnfs (NFSv3; no kernel mount on the controller).
//
// - Layout and journal on the export: nfs_store.h. A create claims its name atomically on the
//   server, builds the image in staging/, renames it into place and commits by writing its
//   record; a crash at any point leaves nothing visible under the final name, and the next
//   create of the name (or the sweep at open) removes the debris once its creator's heartbeat
//   is older than abandon_after. Retries and restarts are idempotent (blockdev/pool.h).
// - Capacity is real: the image is created with the volume's size (thin) and grows only by
//   expand_volume(); capacity() is the server's FSSTAT; preallocation=full reserves the blocks
//   (local_path: fallocate; otherwise zeroes are written over NFSv3, which has no ALLOCATE:
//   the cost is writing the whole image once). A thin volume larger than the free space has a
//   "thin:" condition.
// - Snapshots are sparse raw images under snapshots/ (never archives). With local_path on a
//   reflink file system (nfs_options.h) snapshots and clones are server-side FICLONE reflinks,
//   O(1), and changed_extents() compares their block maps; without it the pool copies the
//   volume into the snapshot itself (the copy engine over libnfs at queue depth, zeroes left
//   as holes; a snapshot of a volume in use is then not point-in-time -- freeze the guest),
//   and clones are host copies made by clone/ (resumable). NFSv4.2 CLONE / COPY would do this
//   server-side without local_path; neither ganesha 4.3 nor libnfs 4.0 has them.
// - The data path is the libnfs Device (nfs_device.h). Nodes: Filesystem mode is a kernel NFS
//   mount of the volume's directory (node_mount_dir; mount options from the pool);
//   Block mode is served through the vhost-user export over libnfs (attach: vhost-user), and
//   attach() refuses kernel Block attachments (FAILED_PRECONDITION). RWX: every mode; several
//   nodes open one image over their own NFS connections (live migration).
// Thread-safe (see blockdev/pool.h).
#pragma once

#include <memory>

#include "blockdev/nfs/nfs_options.h"
#include "blockdev/pool.h"
#include "common/status.h"

namespace vdisk::blockdev::nfs {

// Connects, checks the layout (creating it in an empty directory) and sweeps what interrupted
// operations left. UNAVAILABLE (server silent), NOT_FOUND (export unknown to this host),
// PERMISSION_DENIED (the export refuses this host or its identity may not write the pool's
// directory), FAILED_PRECONDITION (a non-empty directory that is not a vdisk pool; local_path
// showing another tree; reflink=on without reflink).
StatusOr<std::shared_ptr<Pool>> OpenNfsPool(const NfsPoolOptions& options);

}  // namespace vdisk::blockdev::nfs
