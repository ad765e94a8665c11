// NfsPool: volumes (create, complete, delete, queries, expand, open).
#include <chrono>

#include "absl/strings/str_cat.h"
#include "blockdev/nfs/nfs_pool_impl.h"
#include "blockdev/record_files.h"
#include "spdlog/spdlog.h"

namespace vdisk::blockdev::nfs {

namespace {
int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}
}  // namespace

StatusOr<Volume> NfsPool::create_volume(const VolumeRequest& req) {
  RETURN_IF_ERROR(ValidateName(req.name));
  if (req.size_bytes == 0) return absl::InvalidArgumentError("volume size must be > 0");
  if (req.size_bytes > (1ull << 62)) return absl::OutOfRangeError("volume size too large");
  const uint64_t size = RoundUpToGranularity(req.size_bytes);
  ASSIGN_OR_RETURN(NfsVolumeParams params, ParseNfsVolumeParams(req.params));
  const bool has_source = req.source.kind != VolumeSource::Kind::kNone;
  std::string reflink_from;
  if (has_source) {
    RETURN_IF_ERROR(ValidateId(req.source.id));
    if (!req.pending && !reflink_)
      return absl::UnimplementedError(absl::StrCat(
          "nfs pool '", options_.name, "' cannot clone on the server (no local_path with "
          "reflink); create a pending volume and copy into it"));
    uint64_t src_size = 0;
    if (req.source.kind == VolumeSource::Kind::kSnapshot) {
      ASSIGN_OR_RETURN(Snapshot s, store_.ReadSnapshot(req.source.id));
      if (!s.ready)
        return absl::FailedPreconditionError(absl::StrCat("snapshot ", s.id, " is not ready"));
      src_size = s.size_bytes;
      reflink_from = store_.snapshot_image(s.id);
    } else {
      ASSIGN_OR_RETURN(Volume s, store_.ReadVolume(req.source.id));
      if (s.pending)
        return absl::FailedPreconditionError(
            absl::StrCat("source volume ", s.id, " is still pending"));
      src_size = s.size_bytes;
      reflink_from = store_.volume_image(s.id);
    }
    if (size < src_size)
      return absl::OutOfRangeError(absl::StrCat("volume size ", size,
                                                " is smaller than its source (", src_size, ")"));
    if (req.pending) reflink_from.clear();  // the caller copies the data
  }
  const bool preallocate = params.preallocate && !has_source;
  if (preallocate) {
    ASSIGN_OR_RETURN(FsSpace space, session_->StatFs(options_.dir));
    if (space.available_bytes < size)
      return absl::ResourceExhaustedError(absl::StrCat(
          "preallocation=full: the export has ", space.available_bytes, " bytes free, the volume "
          "needs ", size));
  }

  Volume v;
  v.id = NewId(req.name);
  v.name = req.name;
  v.size_bytes = size;
  v.mode = req.mode;
  v.access_modes = req.access_modes;
  v.params = req.params;
  v.source = req.source;
  v.pending = req.pending;
  v.created_unix_ns = NowNs();
  // Where the image is, for operators and independent clients (nfs-cat, qemu-img nfs://).
  v.context["nfsServer"] = options_.target.server;
  v.context["nfsExport"] = options_.target.export_path;
  v.context["nfsPath"] = store_.volume_image(v.id);

  RETURN_IF_ERROR(ClaimName('v', req.name, v.id, [this](const std::string& id) -> StatusOr<bool> {
    Status s = store_.ReadVolume(id).status();
    if (absl::IsNotFound(s)) return false;
    RETURN_IF_ERROR(s);
    return true;
  }));
  auto built = [&]() -> Status {
    // Zeroes written over NFS take a while: keep the claim's heartbeat fresh meanwhile.
    std::optional<Heartbeat> hb;
    if (preallocate && !local_) hb.emplace(store_, 'v', req.name);
    const std::string staging = store_.staging('v', v.id);
    RETURN_IF_ERROR(BuildImage(staging, size, reflink_from, preallocate));
    RETURN_IF_ERROR(session_->Rename(staging, store_.volume_dir(v.id)));
    return store_.WriteVolume(v);  // the commit point
  }();
  if (!built.ok()) {
    RemoveBuildDebris('v', v.id);
    (void)store_.Release('v', req.name, v.id);
    return built;
  }
  spdlog::info("nfs pool {}: created volume {} '{}' ({} bytes, {}{}{}{})", options_.name, v.id,
               v.name, v.size_bytes, ToString(v.mode), v.pending ? ", pending" : "",
               has_source ? absl::StrCat(", from ", req.source.id) : std::string(),
               reflink_from.empty() ? "" : " by reflink");
  return Decorate(std::move(v), Space());
}

Status NfsPool::complete_volume(const std::string& id) {
  RETURN_IF_ERROR(ValidateId(id));
  std::lock_guard lock(records_mu_);
  ASSIGN_OR_RETURN(Volume v, store_.ReadVolume(id));
  if (!v.pending) return Status();
  v.pending = false;
  return store_.WriteVolume(v);
}

Status NfsPool::delete_volume(const std::string& id) { return DeleteObject('v', id); }

StatusOr<Volume> NfsPool::get_volume(const std::string& id) {
  RETURN_IF_ERROR(ValidateId(id));
  ASSIGN_OR_RETURN(Volume v, store_.ReadVolume(id));
  return Decorate(std::move(v), Space());
}

StatusOr<std::optional<Volume>> NfsPool::find_volume_by_name(const std::string& name) {
  RETURN_IF_ERROR(ValidateName(name));
  ASSIGN_OR_RETURN(auto claim, store_.ReadClaim('v', name));
  if (!claim) return std::optional<Volume>();
  auto v = store_.ReadVolume(claim->id);
  if (absl::IsNotFound(v.status())) return std::optional<Volume>();  // being made, or debris
  if (!v.ok()) return v.status();
  if (v->name != name) return std::optional<Volume>();
  return std::optional<Volume>(Decorate(std::move(*v), Space()));
}

StatusOr<std::vector<Volume>> NfsPool::list_volumes() {
  ASSIGN_OR_RETURN(auto all, store_.ListVolumes());
  auto space = Space();
  for (auto& v : all) v = Decorate(std::move(v), space);
  return all;
}

StatusOr<uint64_t> NfsPool::expand_volume(const std::string& id, uint64_t new_size_bytes) {
  RETURN_IF_ERROR(ValidateId(id));
  if (new_size_bytes == 0) return absl::InvalidArgumentError("new size must be > 0");
  if (new_size_bytes > (1ull << 62)) return absl::OutOfRangeError("volume size too large");
  const uint64_t size = RoundUpToGranularity(new_size_bytes);
  std::lock_guard lock(records_mu_);
  ASSIGN_OR_RETURN(Volume v, store_.ReadVolume(id));
  if (size < v.size_bytes)
    return absl::OutOfRangeError(absl::StrCat("volume ", id, " is ", v.size_bytes,
                                              " bytes; cannot shrink it to ", size));
  ASSIGN_OR_RETURN(FileAttr image, session_->Stat(store_.volume_image(id)));
  if (image.size < size) RETURN_IF_ERROR(session_->Truncate(store_.volume_image(id), size));
  if (size == v.size_bytes) return size;
  v.size_bytes = size;
  RETURN_IF_ERROR(store_.WriteVolume(v));
  spdlog::info("nfs pool {}: expanded volume {} to {} bytes", options_.name, id, size);
  return size;
}

StatusOr<std::unique_ptr<Device>> NfsPool::open_volume(const std::string& id, bool read_only) {
  RETURN_IF_ERROR(ValidateId(id));
  ASSIGN_OR_RETURN(Volume v, store_.ReadVolume(id));
  return OpenImage(store_.volume_image(v.id), read_only);
}

}  // namespace vdisk::blockdev::nfs
