// RbdPool: group snapshots, one point in time across several images.
//
// librbd's own group snapshot (rbd_group_snap_create) gets its point in time by acquiring the
// exclusive lock of every member image (blocking their writers, which must give the lock up on
// request) before taking the member snapshots. vdisk does the same with rbd_lock_acquire on
// every member, and takes ordinary (user-namespace) snapshots while it holds all the locks:
// librbd 16's rbd_clone3 clones only user-namespace snapshots, so members in the group
// namespace could not be restored or cloned alone, and an image can be in only one rbd group,
// while CSI groups are ad hoc (the same volume in several VolumeGroupSnapshots).
//
// Records: a GroupRecord ("g/<id>", name "gn/<name>") lists its member SnapshotRecords, which
// carry group_id and are named vdisk-group-<id>-<i>-of-<n>. Everything is written "creating"
// before any image is touched, so a crash leaves records the startup sweep (or a retry of the
// same name) recognises and discards, snapshots included.
#include <cerrno>
#include <vector>

#include "absl/strings/str_cat.h"
#include "blockdev/rbd/rbd_pool_impl.h"
#include "spdlog/spdlog.h"

namespace vdisk::blockdev::rbd {

namespace {

std::string MemberName(const std::string& group_id, size_t i, size_t n) {
  return absl::StrCat("vdisk-group-", group_id, "-", i, "-of-", n);
}

// Releases the exclusive locks taken so far (best effort: closing the image releases them too).
struct LockSet {
  std::vector<rbd_image_t> held;
  ~LockSet() {
    for (rbd_image_t img : held) rbd_lock_release(img);
  }
};

}  // namespace

StatusOr<std::optional<GroupRecord>> RbdPool::ReadGroupAny(const std::string& id) {
  ASSIGN_OR_RETURN(auto raw, journal_->Get(GroupKey(id)));
  if (!raw) return std::optional<GroupRecord>();
  ASSIGN_OR_RETURN(GroupRecord rec, GroupRecordFromJson(*raw));
  return std::optional<GroupRecord>(std::move(rec));
}

StatusOr<GroupSnapshot> RbdPool::ToGroup(const GroupRecord& rec) {
  GroupSnapshot g;
  g.id = rec.id;
  g.name = rec.name;
  g.created_unix_ns = rec.created_unix_ns;
  g.ready = rec.state == RecordState::kReady;
  for (const auto& sid : rec.members) {
    ASSIGN_OR_RETURN(auto s, ReadSnapshotAny(sid));
    if (!s || s->state == RecordState::kDeleting) continue;  // deleted on its own
    g.snapshots.push_back(ToSnapshot(*s));
    g.ready = g.ready && s->state == RecordState::kReady;
  }
  return g;
}

bool RbdPool::ClaimIfAbandoned(GroupRecord& g) {
  if (g.state != RecordState::kCreating || CreatorAlive(g.id, g.owner, g.updated_unix_ns)) return false;
  std::map<std::string, std::string> set;
  g.owner = owner_;
  g.updated_unix_ns = NowUnixNs();
  set[GroupKey(g.id)] = ToJson(g);
  for (const auto& sid : g.members) {
    auto s = ReadSnapshotAny(sid);
    if (!s.ok() || !*s) continue;
    (*s)->owner = owner_;
    (*s)->updated_unix_ns = g.updated_unix_ns;
    set[SnapshotKey(sid)] = ToJson(**s);
  }
  if (!journal_->Update(set).ok()) return false;
  MarkBuilding(g.id, true);
  for (const auto& sid : g.members) MarkBuilding(sid, true);
  return true;
}

Status RbdPool::DiscardCreatingGroup(const GroupRecord& g) {
  Status first;
  for (const auto& sid : g.members) {
    auto s = ReadSnapshotAny(sid);
    if (!s.ok()) {
      if (first.ok()) first = s.status();
      continue;
    }
    if (!*s) continue;
    Status d = DiscardCreatingSnapshot(**s);
    if (!d.ok() && first.ok()) first = d;
  }
  if (first.ok()) {
    ASSIGN_OR_RETURN(Journal::Lock held, journal_->Acquire());
    std::vector<std::string> remove = {GroupKey(g.id)};
    auto name_owner = journal_->Get(GroupNameKey(g.name));
    if (name_owner.ok() && *name_owner && **name_owner == g.id) remove.push_back(GroupNameKey(g.name));
    first = journal_->Update({}, remove);
    if (first.ok()) spdlog::info("rbd pool {}: discarded half-made group snapshot {} '{}'", options_.name, g.id, g.name);
  }
  MarkBuilding(g.id, false);
  return first;
}

// Locks every member image, snapshots them all, unlocks (see the file comment).
Status RbdPool::TakeGroup(std::vector<SnapshotRecord>& members) {
  std::vector<Image> images;
  for (const auto& m : members) {
    ASSIGN_OR_RETURN(const IoCtx* io, Io(m.rbd_pool));
    ASSIGN_OR_RETURN(Image img, Image::OpenById(*io, m.image_id, "", false));
    uint64_t features = 0;
    if (int r = rbd_get_features(img.get(), &features); r < 0) return RadosError(r, "rbd_get_features");
    if (!(features & RBD_FEATURE_EXCLUSIVE_LOCK))
      return absl::FailedPreconditionError(absl::StrCat(
          "image ", m.rbd_pool, "/", m.image, " lacks the exclusive-lock feature, which an atomic group "
          "snapshot needs"));
    images.push_back(std::move(img));
  }
  {
    LockSet locks;
    for (size_t i = 0; i < images.size(); ++i) {
      int r = rbd_lock_acquire(images[i].get(), RBD_LOCK_MODE_EXCLUSIVE);
      if (r < 0)
        return RadosError(r, absl::StrCat("exclusive lock of ", members[i].rbd_pool, "/", members[i].image,
                                          " for a group snapshot"));
      locks.held.push_back(images[i].get());
    }
    // Every writer of every member is now blocked: this is the group's point in time.
    for (size_t i = 0; i < images.size(); ++i) {
      const auto& m = members[i];
      int r = rbd_snap_create2(images[i].get(), m.snap.c_str(), RBD_SNAP_CREATE_SKIP_QUIESCE, &NoProgress, nullptr);
      if (r < 0) return RadosError(r, absl::StrCat("snapshot ", m.rbd_pool, "/", m.image, "@", m.snap));
    }
  }
  for (size_t i = 0; i < images.size(); ++i) RETURN_IF_ERROR(ReadSnapFacts(images[i].get(), &members[i]));
  return Status();
}

StatusOr<GroupSnapshot> RbdPool::create_group_snapshot(const std::string& name,
                                                       const std::vector<std::string>& volume_ids) {
  RETURN_IF_ERROR(ValidateSnapName(name));
  if (volume_ids.empty()) return absl::InvalidArgumentError("a group snapshot needs at least one volume");
  GroupRecord g;
  std::vector<SnapshotRecord> members;
  for (int attempt = 0;; ++attempt) {
    std::optional<GroupRecord> abandoned;
    {
      ASSIGN_OR_RETURN(Journal::Lock held, journal_->Acquire());
      ASSIGN_OR_RETURN(auto taken, journal_->Get(GroupNameKey(name)));
      std::optional<GroupRecord> old;
      if (taken) {
        ASSIGN_OR_RETURN(old, ReadGroupAny(*taken));
      }
      if (old && old->state != RecordState::kCreating)
        return absl::AlreadyExistsError(absl::StrCat("group snapshot name '", name, "' is taken (id ", old->id, ")"));
      if (old) {
        if (attempt > 0 || !ClaimIfAbandoned(*old))
          return absl::AbortedError(absl::StrCat("group snapshot '", name, "' is being created (id ", old->id, ")"));
        abandoned = *old;
      } else {
        const int64_t now = NowUnixNs();
        g.id = NewGroupId();
        g.name = name;
        g.owner = owner_;
        g.created_unix_ns = g.updated_unix_ns = now;
        std::map<std::string, std::string> set;
        for (size_t i = 0; i < volume_ids.size(); ++i) {
          ASSIGN_OR_RETURN(VolumeRecord vol, ReadVolume(volume_ids[i]));
          if (vol.state == RecordState::kPending)
            return absl::FailedPreconditionError(absl::StrCat("volume ", volume_ids[i], " is still pending"));
          SnapshotRecord m;
          m.name = MemberName(g.id, i, volume_ids.size());
          m.source_volume_id = vol.id;
          m.rbd_pool = vol.rbd_pool;
          m.image = vol.image;
          m.image_id = vol.image_id;
          m.snap = NewSnapName();
          m.id = MakeSnapshotId(m.rbd_pool, m.image, m.snap);
          m.size_bytes = vol.size_bytes;
          m.created_unix_ns = m.updated_unix_ns = now;
          m.owner = owner_;
          m.group_id = g.id;
          g.members.push_back(m.id);
          set[SnapshotKey(m.id)] = ToJson(m);
          set[SnapshotNameKey(m.name)] = m.id;
          members.push_back(std::move(m));
        }
        set[GroupKey(g.id)] = ToJson(g);
        set[GroupNameKey(name)] = g.id;
        MarkBuilding(g.id, true);
        for (const auto& m : members) MarkBuilding(m.id, true);
        Status reserved = journal_->Update(set);
        if (!reserved.ok()) {
          MarkBuilding(g.id, false);
          for (const auto& m : members) MarkBuilding(m.id, false);
          return reserved;
        }
        break;
      }
    }
    RETURN_IF_ERROR(DiscardCreatingGroup(*abandoned));
  }

  Status taken = TakeGroup(members);
  if (!taken.ok()) {
    spdlog::warn("rbd pool {}: group snapshot '{}' failed: {}", options_.name, name, taken.ToString());
    Status d = DiscardCreatingGroup(g);
    if (!d.ok()) spdlog::warn("rbd pool {}: cleanup of {} left for the sweep: {}", options_.name, g.id, d.ToString());
    return taken;
  }
  g.state = RecordState::kReady;
  g.updated_unix_ns = NowUnixNs();
  std::map<std::string, std::string> set;
  for (auto& m : members) {
    m.state = RecordState::kReady;
    m.updated_unix_ns = g.updated_unix_ns;
    g.created_unix_ns = std::min(g.created_unix_ns, m.created_unix_ns);
    set[SnapshotKey(m.id)] = ToJson(m);
  }
  set[GroupKey(g.id)] = ToJson(g);
  Status committed;
  {
    auto held = journal_->Acquire();
    committed = held.ok() ? journal_->Update(set) : held.status();
  }
  MarkBuilding(g.id, false);
  for (const auto& m : members) MarkBuilding(m.id, false);
  RETURN_IF_ERROR(committed);
  spdlog::info("rbd pool {}: group snapshot {} '{}' of {} volume(s)", options_.name, g.id, name, members.size());
  return ToGroup(g);
}

Status RbdPool::delete_group_snapshot(const std::string& id) {
  if (!IsGroupId(id)) return Status();
  GroupRecord g;
  bool claimed = false;
  {
    ASSIGN_OR_RETURN(Journal::Lock held, journal_->Acquire());
    ASSIGN_OR_RETURN(auto found, ReadGroupAny(id));
    if (!found) return Status();
    g = std::move(*found);
    if (g.state == RecordState::kCreating) {
      if (!ClaimIfAbandoned(g)) return absl::AbortedError(absl::StrCat("group snapshot ", id, " is being created"));
      claimed = true;
    } else if (g.state != RecordState::kDeleting) {
      g.state = RecordState::kDeleting;
      g.updated_unix_ns = NowUnixNs();
      std::vector<std::string> remove;
      auto name_owner = journal_->Get(GroupNameKey(g.name));
      if (name_owner.ok() && *name_owner && **name_owner == g.id) remove.push_back(GroupNameKey(g.name));
      RETURN_IF_ERROR(journal_->Update({{GroupKey(id), ToJson(g)}}, remove));  // the commit point
    }
  }
  if (claimed) return DiscardCreatingGroup(g);
  for (const auto& sid : g.members) RETURN_IF_ERROR(delete_snapshot(sid));
  {
    ASSIGN_OR_RETURN(Journal::Lock held, journal_->Acquire());
    RETURN_IF_ERROR(journal_->Update({}, {GroupKey(id)}));
  }
  spdlog::info("rbd pool {}: deleted group snapshot {} '{}'", options_.name, id, g.name);
  return Status();
}

StatusOr<GroupSnapshot> RbdPool::get_group_snapshot(const std::string& id) {
  if (!IsGroupId(id)) return absl::NotFoundError(absl::StrCat("no group snapshot ", id));
  ASSIGN_OR_RETURN(auto g, ReadGroupAny(id));
  if (!g || g->state == RecordState::kDeleting ||
      (g->state == RecordState::kCreating && !CreatorAlive(g->id, g->owner, g->updated_unix_ns)))
    return absl::NotFoundError(absl::StrCat("no group snapshot ", id));
  return ToGroup(*g);
}

StatusOr<std::optional<GroupSnapshot>> RbdPool::find_group_snapshot_by_name(const std::string& name) {
  RETURN_IF_ERROR(ValidateSnapName(name));
  ASSIGN_OR_RETURN(auto id, journal_->Get(GroupNameKey(name)));
  if (!id) return std::optional<GroupSnapshot>();
  ASSIGN_OR_RETURN(auto g, ReadGroupAny(*id));
  if (!g || g->name != name || g->state != RecordState::kReady) return std::optional<GroupSnapshot>();
  ASSIGN_OR_RETURN(GroupSnapshot out, ToGroup(*g));
  return std::optional<GroupSnapshot>(std::move(out));
}

void RbdPool::SweepGroups() {
  auto groups = journal_->List("g/");
  if (!groups.ok()) return;
  for (const auto& [key, raw] : *groups) {
    auto g = GroupRecordFromJson(raw);
    if (!g.ok()) continue;
    if (g->state == RecordState::kDeleting) {
      (void)delete_group_snapshot(g->id);
    } else if (g->state == RecordState::kCreating && !CreatorAlive(g->id, g->owner, g->updated_unix_ns)) {
      std::optional<GroupRecord> claimed;
      {
        auto held = journal_->Acquire();
        if (!held.ok()) continue;
        auto again = ReadGroupAny(g->id);
        if (again.ok() && *again && ClaimIfAbandoned(**again)) claimed = **again;
      }
      if (claimed) (void)DiscardCreatingGroup(*claimed);
    }
  }
}

}  // namespace vdisk::blockdev::rbd
