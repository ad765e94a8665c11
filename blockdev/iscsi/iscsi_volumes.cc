// IscsiPool: volumes (iscsi_pool.h).
#include <chrono>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "blockdev/iscsi/iscsi_pool_impl.h"
#include "blockdev/iscsi/xcopy.h"
#include "spdlog/spdlog.h"

namespace vdisk::blockdev::iscsi {

namespace {
int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}
}  // namespace

StatusOr<Volume> IscsiPool::create_volume(const VolumeRequest& req) {
  RETURN_IF_ERROR(RequireManager("CreateVolume"));
  if (req.name.empty()) return absl::InvalidArgumentError("volume name is empty");
  if (req.size_bytes == 0 || req.size_bytes % capabilities().size_granularity != 0)
    return absl::InvalidArgumentError(absl::StrCat("volume size ", req.size_bytes, " is not a positive multiple of 1 MiB"));
  RETURN_IF_ERROR(ValidateIscsiParams(req.params));
  const bool from_source = req.source.kind != VolumeSource::Kind::kNone;
  std::string source_path;
  uint64_t source_size = 0;
  if (from_source) {
    if (req.source.kind == VolumeSource::Kind::kSnapshot) {
      ASSIGN_OR_RETURN(SnapshotRecord s, VisibleSnapshot(req.source.id));
      source_path = SnapshotPath(s.id);
      source_size = s.size_bytes;
    } else {
      ASSIGN_OR_RETURN(VolumeRecord v, VisibleVolume(req.source.id));
      if (v.state != RecordState::kReady)
        return absl::FailedPreconditionError(absl::StrCat("source volume ", v.id, " is still being filled"));
      source_path = VolumePath(v.id);
      source_size = v.size_bytes;
    }
    if (req.size_bytes < source_size)
      return absl::OutOfRangeError(absl::StrCat("volume size ", req.size_bytes, " is smaller than its source (",
                                                source_size, ")"));
    if (!req.pending && !reflink_ && !o_.xcopy)
      return absl::UnimplementedError(absl::StrCat("iscsi pool '", o_.name,
                                                   "' cannot clone on the target (no reflink): host-copy instead"));
  }

  // 1. Reserve the name with a "creating" record (the commit point of the intent).
  VolumeRecord rec;
  rec.id = NewId(req.name);
  rec.name = req.name;
  rec.size_bytes = req.size_bytes;
  rec.mode = req.mode;
  rec.access_modes = req.access_modes;
  rec.params = req.params;
  rec.source = req.source;
  rec.state = RecordState::kCreating;
  rec.created_unix_ns = NowNs();
  rec.chap = o_.chap;
  {
    std::lock_guard lock(mu_);
    int live = 0;
    for (const auto& [id, v] : state_.volumes) {
      if (v.name == req.name)
        return absl::AlreadyExistsError(absl::StrCat("a volume named '", req.name, "' exists (", id, ")"));
      ++live;
    }
    if (o_.max_volumes > 0 && live >= o_.max_volumes)
      return absl::ResourceExhaustedError(absl::StrCat("iscsi pool '", o_.name, "' is full: it holds its maximum of ",
                                                       o_.max_volumes, " volumes (max_volumes)"));
    JournalState next = state_;
    next.volumes[rec.id] = rec;
    RETURN_IF_ERROR(CommitLocked(std::move(next)));
  }
  auto rollback = [&](const Status& why) -> Status {
    spdlog::warn("iscsi pool {}: creating volume '{}' failed: {}; removing {}", o_.name, req.name, why.ToString(), rec.id);
    {
      std::lock_guard ex(export_mu_);
      (void)UnexportLocked(VolumeIqn(rec.id));
    }
    (void)host_->Remove(VolumePath(rec.id));
    std::lock_guard lock(mu_);
    JournalState next = state_;
    next.volumes.erase(rec.id);
    (void)CommitLocked(std::move(next));
    return why;
  };

  // 2. The backing file: a reflink of the source, or a new sparse (or preallocated) file.
  const std::string path = VolumePath(rec.id);
  Status made;
  bool xcopy_needed = false;
  if (from_source && !req.pending && reflink_) {
    made = host_->Reflink(source_path, path);
    if (made.ok() && req.size_bytes > source_size) made = host_->Resize(path, req.size_bytes);
  } else {
    made = host_->CreateFile(path, req.size_bytes, WantsPreallocation(req.params));
    xcopy_needed = from_source && !req.pending;
  }
  if (!made.ok()) return rollback(made);

  // 3. The target. It admits no node yet (ControllerPublishVolume does), only this controller
  //    while it has the volume open.
  {
    std::lock_guard ex(export_mu_);
    auto targets = tgt_->List();
    Status s = targets.ok() ? ExportLocked(*targets, VolumeIqn(rec.id), VolumeLun(rec), VolumeInitiators(rec), rec.chap)
                            : targets.status();
    if (!s.ok()) return rollback(s);
  }
  if (xcopy_needed) {
    Status s = XcopyInto(rec.id, req.source);
    if (!s.ok()) return rollback(s);
  }

  // 4. Visible.
  rec.state = req.pending ? RecordState::kPending : RecordState::kReady;
  Status committed;
  {
    std::lock_guard lock(mu_);
    JournalState next = state_;
    next.volumes[rec.id] = rec;
    committed = CommitLocked(std::move(next));
  }
  if (!committed.ok()) return rollback(committed);
  spdlog::info("iscsi pool {}: created volume {} '{}' ({} bytes{}{}) as {}", o_.name, rec.id, rec.name, rec.size_bytes,
               from_source ? (req.pending ? ", for a host copy" : reflink_ ? ", reflinked" : ", by EXTENDED COPY") : "",
               rec.chap.enabled() ? ", CHAP" : "", VolumeIqn(rec.id));
  return ToVolume(rec);
}

Status IscsiPool::complete_volume(const std::string& id) {
  RETURN_IF_ERROR(RequireManager("completing a volume"));
  RETURN_IF_ERROR(ValidateId(id, "volume"));
  std::lock_guard lock(mu_);
  auto it = state_.volumes.find(id);
  if (it == state_.volumes.end() || (it->second.state != RecordState::kPending && it->second.state != RecordState::kReady))
    return absl::NotFoundError(absl::StrCat("iscsi pool '", o_.name, "': no volume ", id));
  if (it->second.state == RecordState::kReady) return Status();
  JournalState next = state_;
  next.volumes[id].state = RecordState::kReady;
  return CommitLocked(std::move(next));
}

Status IscsiPool::delete_volume(const std::string& id) {
  RETURN_IF_ERROR(RequireManager("DeleteVolume"));
  if (!ValidateId(id, "volume").ok()) return Status();  // never one of ours
  VolumeRecord rec;
  {
    std::lock_guard lock(mu_);
    auto it = state_.volumes.find(id);
    if (it == state_.volumes.end()) return Status();
    rec = it->second;
    if (!rec.published.empty())
      return absl::FailedPreconditionError(absl::StrCat("volume ", id, " is published to ",
                                                        absl::StrJoin(rec.published, ", "),
                                                        " (ControllerUnpublishVolume first)"));
  }
  {
    std::lock_guard ex(export_mu_);
    ASSIGN_OR_RETURN(auto targets, tgt_->List());
    for (const auto& t : targets) {
      if (t.iqn != VolumeIqn(id)) continue;
      if (!t.initiators.empty())
        return absl::FailedPreconditionError(absl::StrCat("volume ", id, " is in use: initiator(s) ",
                                                          absl::StrJoin(t.initiators, ", "), " are logged in"));
    }
    std::lock_guard lock(mu_);
    JournalState next = state_;
    next.volumes[id].state = RecordState::kDeleting;
    RETURN_IF_ERROR(CommitLocked(std::move(next)));
  }
  {
    std::lock_guard ex(export_mu_);
    RETURN_IF_ERROR(UnexportLocked(VolumeIqn(id)));
  }
  RETURN_IF_ERROR(host_->Remove(VolumePath(id)));
  std::lock_guard lock(mu_);
  JournalState next = state_;
  next.volumes.erase(id);
  RETURN_IF_ERROR(CommitLocked(std::move(next)));
  spdlog::info("iscsi pool {}: deleted volume {} '{}'", o_.name, id, rec.name);
  return Status();
}

StatusOr<Volume> IscsiPool::get_volume(const std::string& id) {
  if (!o_.manages_targets()) return ProbeVolume(id);
  ASSIGN_OR_RETURN(VolumeRecord r, VisibleVolume(id));
  return ToVolume(r);
}

StatusOr<std::optional<Volume>> IscsiPool::find_volume_by_name(const std::string& name) {
  RETURN_IF_ERROR(RequireManager("looking volumes up by name"));
  std::lock_guard lock(mu_);
  for (const auto& [id, v] : state_.volumes)
    if (v.name == name && (v.state == RecordState::kReady || v.state == RecordState::kPending))
      return std::optional<Volume>(ToVolume(v));
  return std::optional<Volume>();
}

StatusOr<std::vector<Volume>> IscsiPool::list_volumes() {
  RETURN_IF_ERROR(RequireManager("ListVolumes"));
  std::lock_guard lock(mu_);
  std::vector<Volume> out;
  for (const auto& [id, v] : state_.volumes)
    if (v.state == RecordState::kReady || v.state == RecordState::kPending) out.push_back(ToVolume(v));
  return out;
}

StatusOr<uint64_t> IscsiPool::expand_volume(const std::string& id, uint64_t new_size) {
  RETURN_IF_ERROR(RequireManager("ControllerExpandVolume"));
  ASSIGN_OR_RETURN(VolumeRecord rec, VisibleVolume(id));
  if (new_size == 0 || new_size % capabilities().size_granularity != 0)
    return absl::InvalidArgumentError(absl::StrCat("new size ", new_size, " is not a positive multiple of 1 MiB"));
  if (new_size < rec.size_bytes)
    return absl::OutOfRangeError(absl::StrCat("volume ", id, " is ", rec.size_bytes, " bytes; shrinking to ", new_size,
                                              " is not supported"));
  if (new_size == rec.size_bytes) return rec.size_bytes;
  RETURN_IF_ERROR(host_->Resize(VolumePath(id), new_size));
  // tgt does not follow a grown backing file: the LUN is removed and added again. Sessions stay;
  // commands in the gap fail with LOGICAL UNIT NOT SUPPORTED, which vdisk's queues retry, and
  // initiators see the new capacity at their next READ CAPACITY (vdisk re-opens on NodeExpand).
  {
    std::lock_guard ex(export_mu_);
    ASSIGN_OR_RETURN(auto targets, tgt_->List());
    for (const auto& t : targets) {
      if (t.iqn != VolumeIqn(id)) continue;
      RETURN_IF_ERROR(tgt_->RemoveLun(t.tid, 1));
      RETURN_IF_ERROR(tgt_->AddLun(t.tid, VolumeLun(rec)));
    }
  }
  std::lock_guard lock(mu_);
  JournalState next = state_;
  next.volumes[id].size_bytes = new_size;
  RETURN_IF_ERROR(CommitLocked(std::move(next)));
  spdlog::info("iscsi pool {}: volume {} grown from {} to {} bytes", o_.name, id, rec.size_bytes, new_size);
  return new_size;
}

StatusOr<std::unique_ptr<Device>> IscsiPool::open_volume(const std::string& id, bool read_only) {
  if (!o_.manages_targets()) {
    RETURN_IF_ERROR(ValidateId(id, "volume"));
    ASSIGN_OR_RETURN(auto dev, IscsiDevice::Open(Address(VolumeIqn(id)), LoginOptions(o_.chap), read_only));
    return std::unique_ptr<Device>(std::move(dev));
  }
  ASSIGN_OR_RETURN(VolumeRecord rec, VisibleVolume(id));
  ASSIGN_OR_RETURN(std::shared_ptr<Lease> lease, VolumeLease(id));
  ASSIGN_OR_RETURN(auto dev, IscsiDevice::Open(Address(VolumeIqn(id)), LoginOptions(rec.chap), read_only, lease));
  return std::unique_ptr<Device>(std::move(dev));
}

Status IscsiPool::XcopyInto(const std::string& id, const VolumeSource& source) {
  std::unique_ptr<Device> from;
  if (source.kind == VolumeSource::Kind::kSnapshot) {
    ASSIGN_OR_RETURN(from, open_snapshot(source.id));
  } else {
    ASSIGN_OR_RETURN(from, open_volume(source.id, true));
  }
  ASSIGN_OR_RETURN(std::shared_ptr<Lease> lease, VolumeLease(id));
  ASSIGN_OR_RETURN(auto to, IscsiDevice::Open(Address(VolumeIqn(id)), LoginOptions(o_.chap), false, lease));
  return ExtendedCopy(static_cast<IscsiDevice&>(*from), *to);
}

StatusOr<Volume> IscsiPool::ProbeVolume(const std::string& id) {
  RETURN_IF_ERROR(ValidateId(id, "volume"));
  ASSIGN_OR_RETURN(auto dev, IscsiDevice::Open(Address(VolumeIqn(id)), LoginOptions(o_.chap), true));
  Volume v;
  v.id = id;
  v.size_bytes = dev->size();
  // The target says what the LUN is (INQUIRY product identification, set when it is exported).
  v.mode = dev->info().product == kFilesystemProduct ? VolumeMode::kFilesystem : VolumeMode::kBlock;
  v.access_modes = capabilities().block_access_modes;
  v.context = {{"iscsi.portal", o_.portal}, {"iscsi.iqn", VolumeIqn(id)}, {"iscsi.lun", "1"}};
  return v;
}

}  // namespace vdisk::blockdev::iscsi
