// NfsPool: snapshots (server-side reflink through local_path, else a sparse copy over libnfs)
// and change maps.
#include <chrono>

#include "absl/strings/str_cat.h"
#include "blockdev/copy.h"
#include "blockdev/nfs/nfs_pool_impl.h"
#include "blockdev/record_files.h"
#include "blockdev/uring/fiemap_diff.h"
#include "blockdev/uring/uring_device.h"
#include "spdlog/spdlog.h"

namespace vdisk::blockdev::nfs {

namespace {
int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}
}  // namespace

StatusOr<Snapshot> NfsPool::create_snapshot(const std::string& volume_id,
                                            const std::string& name) {
  RETURN_IF_ERROR(ValidateId(volume_id));
  RETURN_IF_ERROR(ValidateName(name));
  ASSIGN_OR_RETURN(Volume v, store_.ReadVolume(volume_id));
  if (v.pending)
    return absl::FailedPreconditionError(
        absl::StrCat("volume ", volume_id, " is still pending; snapshot it when it is ready"));
  Snapshot snap;
  snap.id = NewId(name);
  snap.name = name;
  snap.source_volume_id = volume_id;
  snap.size_bytes = v.size_bytes;
  snap.ready = true;
  RETURN_IF_ERROR(ClaimName('s', name, snap.id, [this](const std::string& id) -> StatusOr<bool> {
    Status s = store_.ReadSnapshot(id).status();
    if (absl::IsNotFound(s)) return false;
    RETURN_IF_ERROR(s);
    return true;
  }));
  CopyResult copied;
  auto built = [&]() -> Status {
    const std::string staging = store_.staging('s', snap.id);
    const std::string src = store_.volume_image(volume_id);
    if (reflink_) {
      // The point in time is the FICLONE, O(1) whatever the size.
      snap.created_unix_ns = NowNs();
      RETURN_IF_ERROR(BuildImage(staging, snap.size_bytes, src, false));
    } else {
      // A copy through libnfs at queue depth: only data is written, zeroes stay holes. The
      // volume may change while it runs (freeze the guest for a consistent snapshot).
      Heartbeat hb(store_, 's', name);
      ASSIGN_OR_RETURN(auto from, OpenImage(src, /*read_only=*/true));
      snap.created_unix_ns = NowNs();
      RETURN_IF_ERROR(BuildImage(staging, snap.size_bytes, "", false));
      ASSIGN_OR_RETURN(auto to, OpenImage(JoinPath(staging, kDiskImage), false));
      CopyOptions o;
      o.discard_holes = false;  // a brand-new sparse file is all holes already
      o.flush_at_end = true;
      ASSIGN_OR_RETURN(copied, CopyDevice(*from, *to, o));
    }
    RETURN_IF_ERROR(session_->Chmod(JoinPath(staging, kDiskImage), 0440));
    RETURN_IF_ERROR(session_->Rename(staging, store_.snapshot_dir(snap.id)));
    return store_.WriteSnapshot(snap);  // the commit point
  }();
  if (!built.ok()) {
    RemoveBuildDebris('s', snap.id);
    (void)store_.Release('s', name, snap.id);
    return built;
  }
  if (reflink_)
    spdlog::info("nfs pool {}: snapshot {} '{}' of volume {} ({} bytes, reflink)", options_.name,
                 snap.id, name, volume_id, snap.size_bytes);
  else
    spdlog::info("nfs pool {}: snapshot {} '{}' of volume {} ({} bytes, copy: {} read, {} "
                 "written)", options_.name, snap.id, name, volume_id, snap.size_bytes,
                 copied.bytes_read, copied.bytes_written);
  return snap;
}

Status NfsPool::delete_snapshot(const std::string& id) { return DeleteObject('s', id); }

StatusOr<Snapshot> NfsPool::get_snapshot(const std::string& id) {
  RETURN_IF_ERROR(ValidateId(id));
  return store_.ReadSnapshot(id);
}

StatusOr<std::optional<Snapshot>> NfsPool::find_snapshot_by_name(const std::string& name) {
  RETURN_IF_ERROR(ValidateName(name));
  ASSIGN_OR_RETURN(auto claim, store_.ReadClaim('s', name));
  if (!claim) return std::optional<Snapshot>();
  auto s = store_.ReadSnapshot(claim->id);
  if (absl::IsNotFound(s.status())) return std::optional<Snapshot>();
  if (!s.ok()) return s.status();
  if (s->name != name) return std::optional<Snapshot>();
  return std::optional<Snapshot>(std::move(*s));
}

StatusOr<std::vector<Snapshot>> NfsPool::list_snapshots() { return store_.ListSnapshots(); }

StatusOr<std::unique_ptr<Device>> NfsPool::open_snapshot(const std::string& id) {
  RETURN_IF_ERROR(ValidateId(id));
  ASSIGN_OR_RETURN(Snapshot s, store_.ReadSnapshot(id));
  return OpenImage(store_.snapshot_image(s.id), /*read_only=*/true);
}

StatusOr<ExtentList> NfsPool::changed_extents(const std::string& base_id, const std::string& id) {
  RETURN_IF_ERROR(ValidateId(id));
  ASSIGN_OR_RETURN(Snapshot target, store_.ReadSnapshot(id));
  if (base_id.empty()) {
    // Allocated extents: the file system's SEEK_DATA through local_path, else a read over NFS.
    std::unique_ptr<Device> dev;
    if (local_) {
      uring::FileDeviceOptions o;
      o.read_only = true;
      ASSIGN_OR_RETURN(dev, uring::OpenFileDevice(local_->Local(store_.snapshot_image(id)), o));
    } else {
      ASSIGN_OR_RETURN(dev, open_snapshot(id));
    }
    ASSIGN_OR_RETURN(ExtentList allocated, dev->allocated(0, target.size_bytes));
    return Clip(allocated, 0, target.size_bytes);
  }
  RETURN_IF_ERROR(ValidateId(base_id));
  ASSIGN_OR_RETURN(Snapshot base, store_.ReadSnapshot(base_id));
  if (base.source_volume_id != target.source_volume_id)
    return absl::InvalidArgumentError(absl::StrCat("snapshots ", base_id, " and ", id,
                                                   " are of different volumes"));
  if (!reflink_)
    return absl::UnimplementedError(absl::StrCat(
        "nfs pool '", options_.name, "' has no server-side reflinks (local_path), so its "
        "snapshots share no blocks to compare; read and compare them instead"));
  ASSIGN_OR_RETURN(ExtentList diff,
                   uring::DifferingExtents(local_->Local(store_.snapshot_image(base_id)),
                                           local_->Local(store_.snapshot_image(id))));
  return Clip(diff, 0, std::max(base.size_bytes, target.size_bytes));
}

}  // namespace vdisk::blockdev::nfs
