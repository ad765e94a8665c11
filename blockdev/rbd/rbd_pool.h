// The RBD pool (kind "rbd"): volumes are RBD images in a Ceph cluster, snapshots are native RBD
// snapshots of the volume's image, restores and clones are clone-v2 children (no protect step).
//
// - Names and ids live in a journal in RADOS omap (journal.h): a create first writes a
//   "creating" record, then makes the image, then marks it ready, so retries and restarts are
//   idempotent and a half-made image is never returned and is cleaned up (on the next create
//   of the same name, or by the sweep at open once its creator has been silent for
//   abandon_after, 2 min by default; long steps refresh a heartbeat).
// - Volume ids are "<rados-pool>.<image>", snapshot ids "<rados-pool>.<image>.<snap>"
//   (records.h); images carry metadata vdisk.name / vdisk.id for operators.
// - Clone from a volume goes through a hidden snapshot "clone-<hex>" of the source that is
//   removed (moved to the RBD trash namespace) as soon as the child exists; librbd drops it
//   when the last child is gone or flattened.
// - Clone depth (ancestors of the new image) past clone_soft_depth: the child is flattened in
//   the background (progress in the log); past clone_hard_depth: the create waits for the
//   flatten. Pending background flattens survive restarts (journal flag).
// - Deleting a volume whose image still has snapshots (or trashed snapshots with live clones)
//   hides it (record "deleted", name freed) and the image is removed once nothing needs it;
//   deleting a snapshot with clones moves it to the RBD trash namespace. No child ever breaks.
// - Block mode RWO/ROX/RWX (RWX: several writers via librbd's exclusive-lock hand-over, as VM
//   live migration needs). attach() maps through the kernel RBD client (rbd device map) and
//   fails with FAILED_PRECONDITION on nodes without it; Filesystem-mode attach is UNIMPLEMENTED
//   (vhost-user export is the user-space attach path).
// Options and StorageClass parameters: rbd_options.h. Thread-safe (see blockdev/pool.h).
#pragma once

#include <memory>

#include "blockdev/pool.h"
#include "blockdev/rbd/rbd_options.h"
#include "common/status.h"

namespace vdisk::blockdev::rbd {

// Connects to the cluster and opens the pool. INVALID_ARGUMENT (bad options, missing rados
// pool), PERMISSION_DENIED (credentials refused), UNAVAILABLE (cluster unreachable).
StatusOr<std::shared_ptr<Pool>> OpenRbdPool(const RbdPoolOptions& options);

}  // namespace vdisk::blockdev::rbd
