#include "snapshot/snapshot_policy.h"

#include "absl/strings/str_cat.h"

namespace vdisk::snapshot {

Status CheckSnapshottable(const blockdev::Pool& pool, const blockdev::Volume& vol) {
  if (!pool.capabilities().snapshots)
    return absl::FailedPreconditionError(absl::StrCat(
        "pool '", pool.name(), "' (", pool.kind(), ") cannot take snapshots; vdisk does not "
        "substitute a host copy of a live volume (clone or back it up instead)"));
  if (vol.pending)
    return absl::FailedPreconditionError(
        absl::StrCat("volume ", vol.id, " is still being filled; snapshot it when it is ready"));
  return Status();
}

StatusOr<blockdev::Snapshot> CreateSnapshot(blockdev::Pool& pool, const std::string& volume_id,
                                            const std::string& name) {
  if (name.empty()) return absl::InvalidArgumentError("snapshot name is empty");
  if (volume_id.empty()) return absl::InvalidArgumentError("source volume id is empty");
  ASSIGN_OR_RETURN(auto existing, pool.find_snapshot_by_name(name));
  if (existing) {
    if (existing->source_volume_id == volume_id) return *existing;
    return absl::AlreadyExistsError(absl::StrCat("snapshot name '", name,
                                                 "' is taken by a snapshot of volume ",
                                                 existing->source_volume_id));
  }
  ASSIGN_OR_RETURN(auto vol, pool.get_volume(volume_id));
  RETURN_IF_ERROR(CheckSnapshottable(pool, vol));
  auto snap = pool.create_snapshot(volume_id, name);
  if (absl::IsAlreadyExists(snap.status())) {  // lost a race with an identical request
    ASSIGN_OR_RETURN(auto again, pool.find_snapshot_by_name(name));
    if (again && again->source_volume_id == volume_id) return *again;
  }
  return snap;
}

}  // namespace vdisk::snapshot
