// Snapshot policy: how vdisk takes a snapshot of a volume (CSI CreateSnapshot, `vdisk snapshot`).
//
// A snapshot is always taken BY THE POOL (reflink, RBD snapshot, the local pool's own sparse
// copy where it has no reflink). When the pool cannot snapshot (capabilities().snapshots is
// false) vdisk does NOT fall back to copying the volume somewhere on the host: such a copy of a
// live disk is not a point in time, there is no pool-managed place to keep it, and a CSI
// snapshot that silently becomes a full copy surprises capacity planning. The call fails with
// FAILED_PRECONDITION and says so; users who want a copy clone the volume instead
// (clone/clone.h), or back it up (backup/).
//
// This is the one home of the rule for every pool: the CSI CreateSnapshot calls it.
// CreateSnapshot() is idempotent by name: a snapshot with this name of the same volume is
// returned as is; of another volume, ALREADY_EXISTS. Errors: INVALID_ARGUMENT (empty name/id),
// NOT_FOUND (volume), FAILED_PRECONDITION (volume pending, pool without snapshots), and the
// pool's. Thread-safe as the Pool is.
#pragma once

#include <string>

#include "blockdev/pool.h"
#include "common/status.h"

namespace vdisk::snapshot {

// The part of the rule that is about the volume (FAILED_PRECONDITION: pool without snapshots,
// volume still being filled). Group snapshots (group_snapshot.h) check every member with it
// before they hold any writer.
Status CheckSnapshottable(const blockdev::Pool& pool, const blockdev::Volume& volume);

StatusOr<blockdev::Snapshot> CreateSnapshot(blockdev::Pool& pool, const std::string& volume_id,
                                            const std::string& name);

}  // namespace vdisk::snapshot
