// RbdPool: snapshots (native RBD snapshots of the volume's image) and change maps.
#include <cerrno>
#include <ctime>
#include <vector>

#include "absl/strings/str_cat.h"
#include "blockdev/rbd/rbd_device.h"
#include "blockdev/rbd/rbd_pool_impl.h"
#include "common/step_log.h"
#include "spdlog/spdlog.h"

namespace vdisk::blockdev::rbd {

int NoProgress(uint64_t, uint64_t, void*) { return 0; }

Status ValidateSnapName(const std::string& name) {
  if (name.empty()) return absl::InvalidArgumentError("snapshot name must not be empty");
  if (name.size() > 1024) return absl::InvalidArgumentError("snapshot name longer than 1024 bytes");
  if (name.find('\0') != std::string::npos)
    return absl::InvalidArgumentError("snapshot name must not contain NUL");
  return Status();
}

Status ReadSnapFacts(rbd_image_t img, SnapshotRecord* rec) {
  uint64_t snap_id = 0;
  int r = rbd_snap_get_id(img, rec->snap.c_str(), &snap_id);
  if (r < 0) return RadosError(r, "rbd_snap_get_id");
  struct timespec ts = {};
  if (rbd_snap_get_timestamp(img, snap_id, &ts) >= 0 && ts.tv_sec > 0)
    rec->created_unix_ns = ts.tv_sec * 1000000000LL + ts.tv_nsec;
  // The snapshot's own size (the image may have been expanded since the volume record).
  int max = 16;
  std::vector<rbd_snap_info_t> snaps;
  int n;
  do {
    snaps.resize(max);
    n = rbd_snap_list(img, snaps.data(), &max);
  } while (n == -ERANGE);
  if (n < 0) return RadosError(n, "rbd_snap_list");
  bool found = false;
  for (int i = 0; i < n; ++i)
    if (snaps[i].id == snap_id) {
      rec->size_bytes = snaps[i].size;
      found = true;
    }
  rbd_snap_list_end(snaps.data());
  if (!found) return absl::InternalError("the new snapshot is not listed");
  return Status();
}

StatusOr<Snapshot> RbdPool::create_snapshot(const std::string& volume_id,
                                            const std::string& name) {
  RETURN_IF_ERROR(ValidateSnapName(name));
  RETURN_IF_ERROR(lease_->Ensure());  // our record names us: be provably alive first
  StepLog steps(absl::StrCat("rbd pool ", options_.name, ": create_snapshot '", name, "'"));
  SnapshotRecord rec;
  std::string written;  // the record as this request stored it (for the commit)
  for (int attempt = 0;; ++attempt) {
    std::optional<SnapshotRecord> abandoned;
    {
      ASSIGN_OR_RETURN(Journal::Lock held, journal_->Acquire());
      ASSIGN_OR_RETURN(auto taken, journal_->Get(SnapshotNameKey(name)));
      std::optional<SnapshotRecord> old;
      if (taken) {
        ASSIGN_OR_RETURN(old, ReadSnapshotAny(*taken));
      }
      if (old && old->state == RecordState::kReady)
        return absl::AlreadyExistsError(absl::StrCat("snapshot name '", name, "' is taken (id ",
                                                     old->id, ", of volume ",
                                                     old->source_volume_id, ")"));
      if (old && old->state == RecordState::kCreating) {
        if (attempt > 0 || !ClaimIfAbandoned(*old))
          return absl::AbortedError(
              absl::StrCat("snapshot '", name, "' is being created (id ", old->id, ")"));
        abandoned = *old;
      } else {
        if (taken) RETURN_IF_ERROR(journal_->Update({}, {SnapshotNameKey(name)}));  // dangling
        ASSIGN_OR_RETURN(VolumeRecord vol, ReadVolume(volume_id));
        if (vol.state == RecordState::kPending)
          return absl::FailedPreconditionError(absl::StrCat(
              "volume ", volume_id, " is still pending; snapshot it when it is ready"));
        rec.name = name;
        rec.source_volume_id = volume_id;
        rec.rbd_pool = vol.rbd_pool;
        rec.image = vol.image;
        rec.image_id = vol.image_id;
        rec.snap = NewSnapName();
        rec.id = MakeSnapshotId(rec.rbd_pool, rec.image, rec.snap);
        rec.size_bytes = vol.size_bytes;
        rec.state = RecordState::kCreating;
        rec.created_unix_ns = rec.updated_unix_ns = NowUnixNs();
        rec.owner = owner_;
        rec.chain_depth = vol.chain_depth;
        MarkBuilding(rec.id, true);
        Status reserved = WriteSnapshot(rec, {}, {{SnapshotNameKey(name), rec.id}}, &written);
        if (!reserved.ok()) {
          MarkBuilding(rec.id, false);
          return reserved;
        }
        break;
      }
    }
    RETURN_IF_ERROR(DiscardCreatingSnapshot(*abandoned));
  }

  auto take = [&]() -> Status {
    ASSIGN_OR_RETURN(const IoCtx* io, Io(rec.rbd_pool));
    ASSIGN_OR_RETURN(Image img, Image::OpenById(*io, rec.image_id, "", false));
    steps.Step("open");
    int r = rbd_snap_create2(img.get(), rec.snap.c_str(), RBD_SNAP_CREATE_SKIP_QUIESCE,
                             &NoProgress, nullptr);
    steps.Step("snap_create");
    if (r < 0)
      return RadosError(r, absl::StrCat("snapshot ", rec.rbd_pool, "/", rec.image, "@", rec.snap));
    RETURN_IF_ERROR(ReadSnapFacts(img.get(), &rec));
    steps.Step("snap_info");
    return Status();
  };
  steps.Step("reserve");
  Status taken = take();
  steps.Step("close");
  if (!taken.ok()) {
    spdlog::warn("rbd pool {}: snapshot '{}' of {} failed: {}", options_.name, name, volume_id,
                 taken.ToString());
    Status c = DiscardCreatingSnapshot(rec);
    if (!c.ok())
      spdlog::warn("rbd pool {}: cleanup of {} failed, left for the sweep: {}", options_.name,
                   rec.id, c.ToString());
    return taken;
  }
  rec.state = RecordState::kReady;
  rec.updated_unix_ns = NowUnixNs();
  Status committed = CommitSnapshot(rec, written);
  steps.Step("commit");
  MarkBuilding(rec.id, false);
  RETURN_IF_ERROR(committed);
  spdlog::info("rbd pool {}: snapshot {} '{}' of volume {} ({} bytes)", options_.name, rec.id,
               name, volume_id, rec.size_bytes);
  return ToSnapshot(rec);
}

Status RbdPool::delete_snapshot(const std::string& id) {
  if (!ParseSnapshotId(id).ok()) return Status();  // not an id we make: nothing to delete
  SnapshotRecord rec;
  bool claimed = false;  // an abandoned half-made snapshot: discard it instead
  {
    ASSIGN_OR_RETURN(Journal::Lock held, journal_->Acquire());
    ASSIGN_OR_RETURN(auto found, ReadSnapshotAny(id));
    if (!found) return Status();
    rec = std::move(*found);
    if (rec.state == RecordState::kCreating) {
      if (!ClaimIfAbandoned(rec))
        return absl::AbortedError(absl::StrCat("snapshot ", id, " is being created"));
      claimed = true;
    }
    if (rec.state != RecordState::kDeleting) {
      rec.state = RecordState::kDeleting;
      rec.updated_unix_ns = NowUnixNs();
      std::vector<std::string> remove;
      auto name_owner = journal_->Get(SnapshotNameKey(rec.name));
      if (name_owner.ok() && *name_owner && **name_owner == rec.id)
        remove.push_back(SnapshotNameKey(rec.name));
      RETURN_IF_ERROR(WriteSnapshot(rec, remove));  // the commit point of the deletion
    }
  }
  if (claimed) return DiscardCreatingSnapshot(rec);
  // Clone v2: a snapshot with children moves to the trash namespace; librbd removes it when
  // the last child is deleted or flattened. Never unprotect / flatten anything here.
  ASSIGN_OR_RETURN(const IoCtx* io, Io(rec.rbd_pool));
  {
    // The sweep may be finishing this same deletion (a kill left it "deleting").
    auto one_at_a_time = image_locks_.Lock(MakeVolumeId(rec.rbd_pool, rec.image));
    auto img = Image::OpenById(*io, rec.image_id, "", false);
    if (img.ok()) {
      int r = rbd_snap_remove2(img->get(), rec.snap.c_str(), 0, &NoProgress, nullptr);
      if (r < 0 && r != -ENOENT)
        return RadosError(r, absl::StrCat("removing snapshot ", rec.rbd_pool, "/", rec.image,
                                          "@", rec.snap));
    } else if (!absl::IsNotFound(img.status())) {
      return img.status();
    }
  }  // closed before CollectVolume: an open handle is a watcher and blocks removal
  RETURN_IF_ERROR(ForgetRecord(SnapshotKey(id)));
  spdlog::info("rbd pool {}: deleted snapshot {} '{}'", options_.name, id, rec.name);
  CollectVolume(MakeVolumeId(rec.rbd_pool, rec.image));
  return Status();
}

StatusOr<Snapshot> RbdPool::get_snapshot(const std::string& id) {
  ASSIGN_OR_RETURN(SnapshotRecord rec, ReadSnapshot(id));
  return ToSnapshot(rec);
}

StatusOr<std::optional<Snapshot>> RbdPool::find_snapshot_by_name(const std::string& name) {
  RETURN_IF_ERROR(ValidateSnapName(name));
  ASSIGN_OR_RETURN(auto id, journal_->Get(SnapshotNameKey(name)));
  if (!id) return std::optional<Snapshot>();
  ASSIGN_OR_RETURN(auto rec, ReadSnapshotAny(*id));
  if (!rec || rec->name != name || rec->state != RecordState::kReady)
    return std::optional<Snapshot>();
  return std::optional<Snapshot>(ToSnapshot(*rec));
}

StatusOr<std::vector<Snapshot>> RbdPool::list_snapshots() {
  ASSIGN_OR_RETURN(auto all, journal_->List("s/"));
  std::vector<Snapshot> out;
  for (const auto& [key, raw] : all) {
    auto rec = SnapshotRecordFromJson(raw);
    if (!rec.ok()) {
      spdlog::warn("rbd pool {}: journal key {}: {}", options_.name, key, rec.status().ToString());
      continue;
    }
    if (rec->state == RecordState::kReady) out.push_back(ToSnapshot(*rec));
  }
  return out;
}

StatusOr<std::unique_ptr<Device>> RbdPool::open_snapshot(const std::string& id) {
  ASSIGN_OR_RETURN(SnapshotRecord rec, ReadSnapshot(id));
  return OpenRbdDevice(cluster_, ImageSpec{rec.rbd_pool, rec.image, rec.image_id, rec.snap}, true,
                       options_.diff);
}

StatusOr<ExtentList> RbdPool::changed_extents(const std::string& base_id, const std::string& id) {
  ASSIGN_OR_RETURN(SnapshotRecord to, ReadSnapshot(id));
  std::string from_snap;
  if (!base_id.empty()) {
    ASSIGN_OR_RETURN(SnapshotRecord base, ReadSnapshot(base_id));
    if (base.image_id != to.image_id || base.rbd_pool != to.rbd_pool)
      return absl::InvalidArgumentError(absl::StrCat(
          "snapshots ", base_id, " and ", id, " are not of the same volume"));
    if (base.created_unix_ns > to.created_unix_ns)
      return absl::InvalidArgumentError(
          absl::StrCat("base snapshot ", base_id, " is newer than ", id));
    from_snap = base.snap;
  }
  ASSIGN_OR_RETURN(const IoCtx* io, Io(to.rbd_pool));
  ASSIGN_OR_RETURN(Image img, Image::OpenById(*io, to.image_id, to.snap, true));
  uint64_t size = 0;
  int r = rbd_get_size(img.get(), &size);
  if (r < 0) return RadosError(r, "rbd_get_size");
  bool whole = options_.diff == DiffMode::kWholeObject ||
               (options_.diff == DiffMode::kAuto && HasValidFastDiff(img.get()));
  return DiffExtents(img.get(), from_snap, 0, size, whole, /*include_zeroed=*/!from_snap.empty());
}

}  // namespace vdisk::blockdev::rbd
