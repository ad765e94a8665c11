// RbdPool: volumes (create / clone / complete / delete / get / list / expand / open).
#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "blockdev/qos/qos_limits.h"
#include "blockdev/rbd/image_header.h"
#include "blockdev/rbd/rbd_device.h"
#include "blockdev/rbd/rbd_pool_impl.h"
#include "common/log.h"
#include "common/step_log.h"
#include "spdlog/spdlog.h"

namespace vdisk::blockdev::rbd {

namespace {

Status ValidateName(const std::string& name) {
  if (name.empty()) return absl::InvalidArgumentError("name must not be empty");
  if (name.size() > 1024) return absl::InvalidArgumentError("name longer than 1024 bytes");
  if (name.find('\0') != std::string::npos)
    return absl::InvalidArgumentError("name must not contain NUL");
  return Status();
}

// Image options for a new image or clone. Owns the librbd options handle.
struct ImageOptions {
  rbd_image_options_t opts;
  explicit ImageOptions(const VolumeOptions& vo, bool clone) {
    rbd_image_options_create(&opts);
    rbd_image_options_set_uint64(opts, RBD_IMAGE_OPTION_FORMAT, 2);
    rbd_image_options_set_uint64(opts, RBD_IMAGE_OPTION_FEATURES, vo.features);
    if (!vo.data_pool.empty())
      rbd_image_options_set_string(opts, RBD_IMAGE_OPTION_DATA_POOL, vo.data_pool.c_str());
    if (clone) rbd_image_options_set_uint64(opts, RBD_IMAGE_OPTION_CLONE_FORMAT, 2);
  }
  ~ImageOptions() { rbd_image_options_destroy(opts); }
};

Params StorableParams(const Params& params) {
  Params out;
  for (const auto& [k, v] : params)
    if (!IsSecretKey(k)) out[k] = v;
  return out;
}

}  // namespace

StatusOr<VolumeRecord> RbdPool::ResolveSource(const VolumeRequest& req, uint64_t* source_size,
                                              SnapshotRecord* snap) {
  if (req.source.kind == VolumeSource::Kind::kSnapshot) {
    ASSIGN_OR_RETURN(*snap, ReadSnapshot(req.source.id));
    *source_size = snap->size_bytes;
    return VolumeRecord{};
  }
  ASSIGN_OR_RETURN(VolumeRecord src, ReadVolume(req.source.id));
  if (src.state == RecordState::kPending)
    return absl::FailedPreconditionError(
        absl::StrCat("source volume ", src.id, " is still pending"));
  *source_size = src.size_bytes;
  return src;
}

StatusOr<Volume> RbdPool::create_volume(const VolumeRequest& req) {
  RETURN_IF_ERROR(ValidateName(req.name));
  if (req.size_bytes == 0) return absl::InvalidArgumentError("volume size must be > 0");
  StepLog steps(absl::StrCat("rbd pool ", options_.name, ": create_volume '", req.name, "'"));
  const uint64_t gran = capabilities().size_granularity;
  RETURN_IF_ERROR(CheckImageSize(req.size_bytes));
  const uint64_t size = (req.size_bytes + gran - 1) / gran * gran;
  ASSIGN_OR_RETURN(VolumeOptions vo, ParseVolumeParams(options_.defaults, req.params));
  RETURN_IF_ERROR(Io(vo.rbd_pool).status());
  if (!vo.data_pool.empty()) RETURN_IF_ERROR(IoCtx::Open(cluster_, vo.data_pool).status());

  const bool has_source = req.source.kind != VolumeSource::Kind::kNone;
  if (has_source) {
    uint64_t src_size = 0;
    SnapshotRecord snap;
    ASSIGN_OR_RETURN(VolumeRecord src, ResolveSource(req, &src_size, &snap));
    if (size < src_size)
      return absl::OutOfRangeError(absl::StrCat("volume size ", size,
                                                " is smaller than its source (", src_size, ")"));
  }

  steps.Step("source");
  std::string written;  // the record as this request last stored it (for the commit)
  VolumeRecord rec;
  rec.name = req.name;
  rec.rbd_pool = vo.rbd_pool;
  rec.image = NewImageName();
  rec.id = MakeVolumeId(rec.rbd_pool, rec.image);
  rec.data_pool = vo.data_pool;
  rec.features = vo.features;
  rec.size_bytes = size;
  rec.mode = req.mode;
  rec.access_modes = req.access_modes;
  rec.params = StorableParams(req.params);
  rec.source = req.source;
  rec.state = RecordState::kCreating;
  rec.created_unix_ns = rec.updated_unix_ns = NowUnixNs();
  rec.owner = owner_;

  // Our records name us as their creator: hold the owner lease first, so nobody takes them for
  // a dead process's.
  RETURN_IF_ERROR(lease_->Ensure());
  // Reserve the name. An abandoned half-made volume under it is claimed and discarded first
  // (outside the journal lock: removing its image can take a while).
  for (int attempt = 0;; ++attempt) {
    std::optional<VolumeRecord> abandoned;
    {
      ASSIGN_OR_RETURN(Journal::Lock held, journal_->Acquire());
      ASSIGN_OR_RETURN(auto taken, journal_->Get(VolumeNameKey(req.name)));
      std::optional<VolumeRecord> old;
      if (taken) {
        ASSIGN_OR_RETURN(old, ReadVolumeAny(*taken));
      }
      if (old && (old->state == RecordState::kReady || old->state == RecordState::kPending))
        return absl::AlreadyExistsError(
            absl::StrCat("volume name '", req.name, "' is taken (id ", old->id, ")"));
      if (old && old->state == RecordState::kCreating) {
        if (attempt > 0 || !ClaimIfAbandoned(*old))
          return absl::AbortedError(
              absl::StrCat("volume '", req.name, "' is being created (id ", old->id, ")"));
        abandoned = *old;
      } else {
        if (taken) RETURN_IF_ERROR(journal_->Update({}, {VolumeNameKey(req.name)}));  // dangling
        MarkBuilding(rec.id, true);
        Status reserved = WriteVolume(rec, {}, {{VolumeNameKey(req.name), rec.id}}, &written);
        if (!reserved.ok()) {
          MarkBuilding(rec.id, false);
          return reserved;
        }
        break;
      }
    }
    RETURN_IF_ERROR(DiscardCreatingVolume(*abandoned));
  }

  steps.Step("reserve");
  bool created_image = false;  // informational: cleanup goes by the image's tag
  Status built = BuildVolume(rec, req, vo, &created_image, &steps, &written);
  if (!built.ok()) {
    spdlog::warn("rbd pool {}: creating volume '{}' ({}) failed: {}", options_.name, req.name,
                 rec.id, built.ToString());
    // Removes only what this request made (DiscardCreatingVolume checks the image's tag).
    Status c = DiscardCreatingVolume(rec);
    if (!c.ok())
      spdlog::warn("rbd pool {}: cleanup of {} failed, left for the sweep: {}", options_.name,
                   rec.id, c.ToString());
    return built;
  }

  rec.state = req.pending ? RecordState::kPending : RecordState::kReady;
  rec.updated_unix_ns = NowUnixNs();
  Status committed = CommitVolume(rec, written);
  steps.Step("commit");
  MarkBuilding(rec.id, false);
  RETURN_IF_ERROR(committed);
  spdlog::info("rbd pool {}: created volume {} '{}' ({} bytes, {}{}{}{})", options_.name, rec.id,
               rec.name, rec.size_bytes, ToString(rec.mode), rec.state == RecordState::kPending ? ", pending" : "",
               has_source ? absl::StrCat(", from ", req.source.id) : std::string(),
               rec.flatten_pending ? ", flatten scheduled" : "");
  if (rec.flatten_pending) ScheduleFlatten(rec.id);
  return ToVolume(rec);
}

Status RbdPool::BuildVolume(VolumeRecord& rec, const VolumeRequest& req, const VolumeOptions& vo,
                            bool* created_image, StepLog* steps, std::string* written) {
  ASSIGN_OR_RETURN(const IoCtx* io, Io(rec.rbd_pool));
  int depth = 0;
  uint64_t image_size = rec.size_bytes;  // what the new image or clone starts with
  const bool clone = req.source.kind != VolumeSource::Kind::kNone && !req.pending;
  if (!clone) {
    ImageOptions opts(vo, false);
    int r = rbd_create4(io->get(), rec.image.c_str(), rec.size_bytes, opts.opts);
    if (r == -EEXIST)
      return absl::AbortedError(absl::StrCat("image name ", rec.image, " collided; retry"));
    if (r < 0) return RadosError(r, absl::StrCat("creating image ", rec.rbd_pool, "/", rec.image));
    *created_image = true;
  } else if (req.source.kind == VolumeSource::Kind::kSnapshot) {
    ASSIGN_OR_RETURN(SnapshotRecord snap, ReadSnapshot(req.source.id));
    ASSIGN_OR_RETURN(const IoCtx* pio, Io(snap.rbd_pool));
    steps->Step("read_snapshot");
    // The recorded depth is never below the truth: within both limits by it means within them
    // (nothing to do). Otherwise, or unknown, walk the chain for the exact count.
    if (snap.chain_depth >= 0 &&
        snap.chain_depth + 1 <= std::min(vo.clone_soft_depth, vo.clone_hard_depth)) {
      depth = snap.chain_depth + 1;
    } else {
      ASSIGN_OR_RETURN(int parent_depth, ChainDepth(snap.rbd_pool, snap.image_id, snap.snap));
      depth = parent_depth + 1;
      steps->Step("chain_depth");
    }
    image_size = snap.size_bytes;
    ImageOptions opts(vo, true);
    int r = rbd_clone3(pio->get(), snap.image.c_str(), snap.snap.c_str(), io->get(),
                       rec.image.c_str(), opts.opts);
    steps->Step("clone");
    if (r == -EEXIST)
      return absl::AbortedError(absl::StrCat("image name ", rec.image, " collided; retry"));
    if (r < 0)
      return RadosError(r, absl::StrCat("cloning ", snap.rbd_pool, "/", snap.image, "@",
                                        snap.snap, " to ", rec.rbd_pool, "/", rec.image));
    *created_image = true;
  } else {
    // Clone from a volume: a hidden snapshot of the source, the clone, then the snapshot goes
    // to the trash namespace (clone v2 keeps it while the child needs it).
    ASSIGN_OR_RETURN(VolumeRecord src, ReadVolume(req.source.id));
    ASSIGN_OR_RETURN(const IoCtx* sio, Io(src.rbd_pool));
    rec.clone_snap = NewCloneSnapName();
    rec.clone_src_pool = src.rbd_pool;
    rec.clone_src_image_id = src.image_id;
    {
      ASSIGN_OR_RETURN(Journal::Lock held, journal_->Acquire());
      RETURN_IF_ERROR(StillOwned(rec));
      RETURN_IF_ERROR(WriteVolume(rec, {}, {}, written));
    }
    ASSIGN_OR_RETURN(Image simg, Image::OpenById(*sio, src.image_id, "", false));
    if (int r = rbd_get_size(simg.get(), &image_size); r < 0) return RadosError(r, "rbd_get_size");
    int r = rbd_snap_create2(simg.get(), rec.clone_snap.c_str(), RBD_SNAP_CREATE_SKIP_QUIESCE,
                             &NoProgress, nullptr);
    if (r < 0)
      return RadosError(r, absl::StrCat("snapshot ", src.rbd_pool, "/", src.image, "@",
                                        rec.clone_snap));
    // The snapshot was just taken of the head: same ancestors as the open head.
    ASSIGN_OR_RETURN(int parent_depth, ChainDepth(simg.get()));
    depth = parent_depth + 1;
    ImageOptions opts(vo, true);
    r = rbd_clone3(sio->get(), src.image.c_str(), rec.clone_snap.c_str(), io->get(),
                   rec.image.c_str(), opts.opts);
    if (r == -EEXIST)
      return absl::AbortedError(absl::StrCat("image name ", rec.image, " collided; retry"));
    if (r < 0)
      return RadosError(r, absl::StrCat("cloning ", src.rbd_pool, "/", src.image, " to ",
                                        rec.rbd_pool, "/", rec.image));
    *created_image = true;
    r = rbd_snap_remove(simg.get(), rec.clone_snap.c_str());
    if (r < 0 && r != -ENOENT)
      return RadosError(r, absl::StrCat("moving hidden snapshot ", rec.clone_snap, " to trash"));
  }

  // Learn the image's id and tag it: one round trip each on the new image's objects (an open
  // + rbd_metadata_set + close took a dozen, an exclusive-lock acquisition and a notify).
  ASSIGN_OR_RETURN(rec.image_id, ImageIdByName(*io, rec.image));
  RETURN_IF_ERROR(TagNewImage(*io, rec.image_id, {{"vdisk.id", rec.id}, {"vdisk.name", rec.name}}));
  steps->Step("tag");
  if (image_size < rec.size_bytes) {  // a clone grown to the requested size
    ASSIGN_OR_RETURN(Image img, Image::OpenById(*io, rec.image_id, "", false));
    int r = rbd_resize2(img.get(), rec.size_bytes, false, &NoProgress, nullptr);
    if (r < 0) return RadosError(r, "growing the clone to the requested size");
    steps->Step("grow");
  }
  rec.chain_depth = clone ? depth : 0;

  if (clone) {
    if (depth > vo.clone_hard_depth) {
      spdlog::info("rbd pool {}: volume {} would be {} clones deep (hard limit {}): flattening "
                   "before it is returned",
                   options_.name, rec.id, depth, vo.clone_hard_depth);
      {  // the image id on record before the long step (its heartbeats rewrite the record)
        ASSIGN_OR_RETURN(Journal::Lock held, journal_->Acquire());
        rec.updated_unix_ns = NowUnixNs();
        RETURN_IF_ERROR(StillOwned(rec));
        RETURN_IF_ERROR(WriteVolume(rec, {}, {}, written));
      }
      RETURN_IF_ERROR(Flatten(rec.rbd_pool, rec.image_id, rec.id, nullptr, true));
      rec.chain_depth = 0;
    } else if (depth > vo.clone_soft_depth) {
      spdlog::info("rbd pool {}: volume {} is {} clones deep (soft limit {}): flatten scheduled",
                   options_.name, rec.id, depth, vo.clone_soft_depth);
      rec.flatten_pending = true;
    }
  }
  return Status();
}

Status RbdPool::complete_volume(const std::string& id) {
  ASSIGN_OR_RETURN(Journal::Lock held, journal_->Acquire());
  ASSIGN_OR_RETURN(VolumeRecord rec, ReadVolume(id));
  if (rec.state != RecordState::kPending) return Status();
  rec.state = RecordState::kReady;
  return WriteVolume(rec);
}

Status RbdPool::delete_volume(const std::string& id) {
  if (!ParseVolumeId(id).ok()) return Status();  // not an id we make: nothing to delete
  flattener_->Cancel("flatten/" + id);
  VolumeRecord rec;
  bool claimed = false;  // an abandoned half-made volume: discard it instead
  {
    ASSIGN_OR_RETURN(Journal::Lock held, journal_->Acquire());
    ASSIGN_OR_RETURN(auto found, ReadVolumeAny(id));
    if (!found) return Status();
    rec = std::move(*found);
    if (rec.state == RecordState::kDeleted || rec.state == RecordState::kDeleting) {
      // Already deleted; the image may still be waiting for its snapshots / clones.
    } else if (rec.state == RecordState::kCreating) {
      if (!ClaimIfAbandoned(rec))
        return absl::AbortedError(absl::StrCat("volume ", id, " is being created"));
      claimed = true;
    } else {
      // Refuse while a client has the image open (a mapped or exported disk).
      ASSIGN_OR_RETURN(const IoCtx* io, Io(rec.rbd_pool));
      auto img = Image::OpenById(*io, rec.image_id, "", true);
      if (img.ok()) {
        size_t max = 8;
        std::vector<rbd_image_watcher_t> watchers(max);
        int r = rbd_watchers_list(img->get(), watchers.data(), &max);
        if (r == -ERANGE) {
          watchers.resize(max);
          r = rbd_watchers_list(img->get(), watchers.data(), &max);
        }
        if (r >= 0) {
          rbd_watchers_list_cleanup(watchers.data(), max);
          if (max > 0)
            return absl::FailedPreconditionError(absl::StrCat(
                "volume ", id, " is in use: ", max, " client(s) have its image ", rec.rbd_pool,
                "/", rec.image, " open; detach / stop them first"));
        }
      } else if (!absl::IsNotFound(img.status())) {
        return img.status();
      }
      rec.state = RecordState::kDeleted;
      rec.updated_unix_ns = NowUnixNs();
      std::vector<std::string> remove;
      auto name_owner = journal_->Get(VolumeNameKey(rec.name));
      if (name_owner.ok() && *name_owner && **name_owner == rec.id)
        remove.push_back(VolumeNameKey(rec.name));
      RETURN_IF_ERROR(WriteVolume(rec, remove));  // the commit point of the deletion
      spdlog::info("rbd pool {}: deleted volume {} '{}'", options_.name, id, rec.name);
    }
  }
  if (claimed) return DiscardCreatingVolume(rec);
  CollectVolume(id);
  return Status();
}

StatusOr<Volume> RbdPool::get_volume(const std::string& id) {
  ASSIGN_OR_RETURN(VolumeRecord rec, ReadVolume(id));
  return ToVolume(rec);
}

StatusOr<std::optional<Volume>> RbdPool::find_volume_by_name(const std::string& name) {
  RETURN_IF_ERROR(ValidateName(name));
  ASSIGN_OR_RETURN(auto id, journal_->Get(VolumeNameKey(name)));
  if (!id) return std::optional<Volume>();
  ASSIGN_OR_RETURN(auto rec, ReadVolumeAny(*id));
  if (!rec || rec->name != name ||
      (rec->state != RecordState::kReady && rec->state != RecordState::kPending))
    return std::optional<Volume>();
  return std::optional<Volume>(ToVolume(*rec));
}

StatusOr<std::vector<Volume>> RbdPool::list_volumes() {
  ASSIGN_OR_RETURN(auto all, journal_->List("v/"));
  std::vector<Volume> out;
  for (const auto& [key, raw] : all) {
    auto rec = VolumeRecordFromJson(raw);
    if (!rec.ok()) {
      spdlog::warn("rbd pool {}: journal key {}: {}", options_.name, key, rec.status().ToString());
      continue;
    }
    if (rec->state == RecordState::kReady || rec->state == RecordState::kPending)
      out.push_back(ToVolume(*rec));
  }
  return out;  // journal keys are sorted, so by id
}

Status RbdPool::set_mutable_params(const std::string& id, const Params& params) {
  ASSIGN_OR_RETURN(qos::QosLimits limits, qos::ParseQosParams(params));
  ASSIGN_OR_RETURN(VolumeRecord rec, ReadVolume(id));
  if (rec.state != RecordState::kReady)
    return absl::FailedPreconditionError(absl::StrCat("volume ", id, " is still being created"));
  // The image first (slow; outside the journal lock): librbd reads image-level overrides of its
  // options from metadata keys "conf_<option>" and every client applies them on refresh.
  {
    ASSIGN_OR_RETURN(const IoCtx* io, Io(rec.rbd_pool));
    ASSIGN_OR_RETURN(Image img, Image::OpenById(*io, rec.image_id, "", false));
    for (const auto& [option, value] : qos::LibrbdQosSettings(limits)) {
      const std::string key = "conf_" + option;
      const bool default_value = value == "0" || (option.ends_with("_burst_seconds") && value == "1");
      int r = default_value ? rbd_metadata_remove(img.get(), key.c_str())
                            : rbd_metadata_set(img.get(), key.c_str(), value.c_str());
      if (r < 0 && !(default_value && r == -ENOENT))
        return RadosError(r, absl::StrCat("setting ", key, " on ", rec.rbd_pool, "/", rec.image));
    }
  }
  ASSIGN_OR_RETURN(Journal::Lock held, journal_->Acquire());
  ASSIGN_OR_RETURN(VolumeRecord now, ReadVolume(id));
  if (now.mutable_params == params) return Status();
  now.mutable_params = params;
  now.updated_unix_ns = NowUnixNs();
  RETURN_IF_ERROR(WriteVolume(now));
  spdlog::info("rbd pool {}: volume {} QoS {} (librbd image options too)", options_.name, id, qos::Describe(limits));
  return Status();
}

StatusOr<uint64_t> RbdPool::expand_volume(const std::string& id, uint64_t new_size_bytes) {
  if (new_size_bytes == 0) return absl::InvalidArgumentError("new size must be > 0");
  RETURN_IF_ERROR(CheckImageSize(new_size_bytes));
  const uint64_t gran = capabilities().size_granularity;
  const uint64_t size = (new_size_bytes + gran - 1) / gran * gran;
  ASSIGN_OR_RETURN(VolumeRecord rec, ReadVolume(id));
  if (size < rec.size_bytes)
    return absl::OutOfRangeError(absl::StrCat("volume ", id, " is ", rec.size_bytes,
                                              " bytes; cannot shrink it to ", size));
  ASSIGN_OR_RETURN(const IoCtx* io, Io(rec.rbd_pool));
  ASSIGN_OR_RETURN(Image img, Image::OpenById(*io, rec.image_id, "", false));
  uint64_t cur = 0;
  rbd_get_size(img.get(), &cur);
  if (cur < size) {
    int r = rbd_resize2(img.get(), size, false, &NoProgress, nullptr);
    if (r < 0) return RadosError(r, absl::StrCat("resizing ", rec.rbd_pool, "/", rec.image));
  }
  if (size == rec.size_bytes) return size;
  ASSIGN_OR_RETURN(Journal::Lock held, journal_->Acquire());
  ASSIGN_OR_RETURN(VolumeRecord again, ReadVolume(id));
  if (again.size_bytes < size) {
    again.size_bytes = size;
    RETURN_IF_ERROR(WriteVolume(again));
  }
  spdlog::info("rbd pool {}: expanded volume {} to {} bytes", options_.name, id, size);
  return size;
}

StatusOr<std::unique_ptr<Device>> RbdPool::open_volume(const std::string& id, bool read_only) {
  ASSIGN_OR_RETURN(VolumeRecord rec, ReadVolume(id));
  return OpenRbdDevice(cluster_, ImageSpec{rec.rbd_pool, rec.image, rec.image_id, ""}, read_only,
                       options_.diff);
}

}  // namespace vdisk::blockdev::rbd
