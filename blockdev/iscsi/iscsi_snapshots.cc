// IscsiPool: snapshots (iscsi_pool.h).
#include <chrono>

#include "absl/strings/str_cat.h"
#include "blockdev/iscsi/iscsi_pool_impl.h"
#include "spdlog/spdlog.h"

namespace vdisk::blockdev::iscsi {

namespace {
Snapshot ToSnapshot(const SnapshotRecord& r) {
  Snapshot s;
  s.id = r.id;
  s.name = r.name;
  s.source_volume_id = r.source_volume_id;
  s.size_bytes = r.size_bytes;
  s.created_unix_ns = r.created_unix_ns;
  s.ready = true;
  return s;
}
}  // namespace

StatusOr<Snapshot> IscsiPool::create_snapshot(const std::string& volume_id, const std::string& name) {
  RETURN_IF_ERROR(RequireManager("CreateSnapshot"));
  if (name.empty()) return absl::InvalidArgumentError("snapshot name is empty");
  ASSIGN_OR_RETURN(VolumeRecord vol, VisibleVolume(volume_id));
  if (vol.state != RecordState::kReady)
    return absl::FailedPreconditionError(absl::StrCat("volume ", volume_id, " is still being filled"));
  SnapshotRecord rec;
  rec.id = NewId(name);
  rec.name = name;
  rec.source_volume_id = volume_id;
  rec.size_bytes = vol.size_bytes;
  rec.state = RecordState::kCreating;
  rec.created_unix_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  {
    std::lock_guard lock(mu_);
    for (const auto& [id, s] : state_.snapshots)
      if (s.name == name) return absl::AlreadyExistsError(absl::StrCat("a snapshot named '", name, "' exists (", id, ")"));
    JournalState next = state_;
    next.snapshots[rec.id] = rec;
    RETURN_IF_ERROR(CommitLocked(std::move(next)));
  }
  // The point in time: a reflink of the backing file takes the blocks tgtd has written (XFS
  // writes back the source range first). Without reflink, a sparse copy on the target host.
  Status made = reflink_ ? host_->Reflink(VolumePath(volume_id), SnapshotPath(rec.id))
                         : host_->CopySparse(VolumePath(volume_id), SnapshotPath(rec.id));
  rec.state = RecordState::kReady;
  std::lock_guard lock(mu_);
  JournalState next = state_;
  if (made.ok()) {
    next.snapshots[rec.id] = rec;
    made = CommitLocked(std::move(next));
    if (made.ok()) {
      spdlog::info("iscsi pool {}: snapshot {} '{}' of volume {} ({})", o_.name, rec.id, name, volume_id,
                   reflink_ ? "reflink" : "target-side copy");
      return ToSnapshot(rec);
    }
  }
  (void)host_->Remove(SnapshotPath(rec.id));
  next = state_;
  next.snapshots.erase(rec.id);
  (void)CommitLocked(std::move(next));
  return made;
}

Status IscsiPool::delete_snapshot(const std::string& id) {
  RETURN_IF_ERROR(RequireManager("DeleteSnapshot"));
  if (!ValidateId(id, "snapshot").ok()) return Status();
  {
    std::lock_guard lock(mu_);
    auto it = state_.snapshots.find(id);
    if (it == state_.snapshots.end()) return Status();
    if (auto l = leases_.find(SnapshotIqn(id)); l != leases_.end() && !l->second.expired())
      return absl::FailedPreconditionError(absl::StrCat("snapshot ", id, " is open (a copy or backup reads it)"));
    JournalState next = state_;
    next.snapshots[id].state = RecordState::kDeleting;
    RETURN_IF_ERROR(CommitLocked(std::move(next)));
  }
  // Clones are reflinks or copies of their own: removing the snapshot's file breaks none.
  RETURN_IF_ERROR(host_->Remove(SnapshotPath(id)));
  std::lock_guard lock(mu_);
  JournalState next = state_;
  next.snapshots.erase(id);
  return CommitLocked(std::move(next));
}

StatusOr<Snapshot> IscsiPool::get_snapshot(const std::string& id) {
  RETURN_IF_ERROR(RequireManager("GetSnapshot"));
  ASSIGN_OR_RETURN(SnapshotRecord r, VisibleSnapshot(id));
  return ToSnapshot(r);
}

StatusOr<std::optional<Snapshot>> IscsiPool::find_snapshot_by_name(const std::string& name) {
  RETURN_IF_ERROR(RequireManager("looking snapshots up by name"));
  std::lock_guard lock(mu_);
  for (const auto& [id, s] : state_.snapshots)
    if (s.name == name && s.state == RecordState::kReady) return std::optional<Snapshot>(ToSnapshot(s));
  return std::optional<Snapshot>();
}

StatusOr<std::vector<Snapshot>> IscsiPool::list_snapshots() {
  RETURN_IF_ERROR(RequireManager("ListSnapshots"));
  std::lock_guard lock(mu_);
  std::vector<Snapshot> out;
  for (const auto& [id, s] : state_.snapshots)
    if (s.state == RecordState::kReady) out.push_back(ToSnapshot(s));
  return out;
}

StatusOr<std::unique_ptr<Device>> IscsiPool::open_snapshot(const std::string& id) {
  RETURN_IF_ERROR(RequireManager("opening a snapshot"));
  ASSIGN_OR_RETURN(SnapshotRecord rec, VisibleSnapshot(id));
  ASSIGN_OR_RETURN(std::shared_ptr<Lease> lease, SnapshotLease(rec));
  ASSIGN_OR_RETURN(auto dev, IscsiDevice::Open(Address(SnapshotIqn(id)), LoginOptions(Chap{}), true, lease));
  return std::unique_ptr<Device>(std::move(dev));
}

StatusOr<ExtentList> IscsiPool::changed_extents(const std::string& base_id, const std::string& id) {
  if (!base_id.empty()) RETURN_IF_ERROR(VisibleSnapshot(base_id).status());
  RETURN_IF_ERROR(VisibleSnapshot(id).status());
  return absl::UnimplementedError("iscsi pools keep no change maps; compare the snapshots' contents");
}

}  // namespace vdisk::blockdev::iscsi
