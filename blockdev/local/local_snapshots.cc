// LocalPool: snapshots (reflink, else a sparse copy by the copy engine) and change maps.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>

#include "absl/strings/str_cat.h"
#include "blockdev/copy.h"
#include "blockdev/local/local_pool_impl.h"
#include "blockdev/uring/fiemap_diff.h"
#include "blockdev/uring/uring_device.h"
#include "spdlog/spdlog.h"

namespace vdisk::blockdev::local {

namespace {
int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}
}  // namespace

Status LocalPool::CopyImage(Device& from, const std::string& dst, uint64_t size) const {
  uring::FileDeviceOptions rw;
  rw.create = true;
  rw.create_size = size;
  ASSIGN_OR_RETURN(auto to, uring::OpenFileDevice(dst, rw));
  CopyOptions copy;
  copy.discard_holes = false;  // a brand-new sparse file is all holes already
  copy.flush_at_end = true;
  ASSIGN_OR_RETURN(CopyResult r, CopyDevice(from, *to, copy));
  spdlog::info("local pool {}: copied {} -> {} ({} bytes read, {} written)", options_.name,
               from.describe(), dst, r.bytes_read, r.bytes_written);
  return Status();
}

StatusOr<Snapshot> LocalPool::create_snapshot(const std::string& volume_id,
                                              const std::string& name) {
  RETURN_IF_ERROR(ValidateId(volume_id));
  RETURN_IF_ERROR(ValidateName(name));
  Snapshot snap;
  snap.name = name;
  snap.source_volume_id = volume_id;
  snap.ready = true;
  std::string src_image;
  int src_fd = -1;
  std::unique_ptr<Device> src_dev;  // the copy's source, opened under the lock (no reflink)
  std::unique_ptr<StagedBuild> build;
  {
    ASSIGN_OR_RETURN(FileLock pool_lock, LockPool());
    ASSIGN_OR_RETURN(auto existing, FindSnapshotByNameLocked(name));
    if (existing)
      return absl::AlreadyExistsError(absl::StrCat("snapshot name '", name, "' is taken (id ",
                                                   existing->id, ", of volume ",
                                                   existing->source_volume_id, ")"));
    RETURN_IF_ERROR(CheckNoLiveBuild('s', name));
    ASSIGN_OR_RETURN(Volume v, meta_.ReadVolume(volume_id));
    if (v.pending)
      return absl::FailedPreconditionError(
          absl::StrCat("volume ", volume_id, " is still pending; snapshot it when it is ready"));
    snap.size_bytes = v.size_bytes;
    src_image = layout_.volume_image(volume_id);
    snap.id = FreshId('s', name);
    ASSIGN_OR_RETURN(build, StagedBuild::Start(layout_, 's', snap.id, name));
    if (reflink_) {
      // The point in time is the FICLONE; do it under the pool lock so it cannot interleave
      // with an expansion of the same volume. It is O(1).
      src_fd = ::open(src_image.c_str(), O_RDONLY | O_CLOEXEC);
      if (src_fd < 0) return LastErrnoStatus(absl::StrCat("open ", src_image));
      Status s = ReflinkImage(src_fd, build->image(), snap.size_bytes);
      ::close(src_fd);
      RETURN_IF_ERROR(s);
    } else {
      // Opened now so that a concurrent delete of the volume cannot pull it from under us.
      uring::FileDeviceOptions ro;
      ro.read_only = true;
      ASSIGN_OR_RETURN(src_dev, uring::OpenFileDevice(src_image, ro));
    }
    snap.created_unix_ns = NowNs();
  }
  if (src_dev) RETURN_IF_ERROR(CopyImage(*src_dev, build->image(), snap.size_bytes));
  if (::chmod(build->image().c_str(), 0440) != 0)
    return LastErrnoStatus(absl::StrCat("chmod ", build->image()));
  {
    ASSIGN_OR_RETURN(FileLock pool_lock, LockPool());
    RETURN_IF_ERROR(CommitSnapshot(*build, snap));
  }
  spdlog::info("local pool {}: snapshot {} '{}' of volume {} ({} bytes, {})", options_.name,
               snap.id, name, volume_id, snap.size_bytes, reflink_ ? "reflink" : "copy");
  return snap;
}

Status LocalPool::delete_snapshot(const std::string& id) {
  RETURN_IF_ERROR(ValidateId(id));
  {
    ASSIGN_OR_RETURN(FileLock pool_lock, LockPool());
    auto s = meta_.ReadSnapshot(id);
    if (!s.ok()) {
      if (absl::IsNotFound(s.status())) return Status();
      return s.status();
    }
    RETURN_IF_ERROR(meta_.RemoveSnapshot(id));  // the commit point of the deletion
    RETURN_IF_ERROR(snapshot_names_.Remove(s->name, id));
  }
  RemoveData(layout_.snapshot_dir(id), id);
  spdlog::info("local pool {}: deleted snapshot {}", options_.name, id);
  return Status();
}

StatusOr<Snapshot> LocalPool::get_snapshot(const std::string& id) {
  RETURN_IF_ERROR(ValidateId(id));
  return meta_.ReadSnapshot(id);
}

StatusOr<std::optional<Snapshot>> LocalPool::find_snapshot_by_name(const std::string& name) {
  RETURN_IF_ERROR(ValidateName(name));
  return FindSnapshotByNameLocked(name);
}

StatusOr<std::vector<Snapshot>> LocalPool::list_snapshots() { return meta_.ListSnapshots(); }

StatusOr<std::unique_ptr<Device>> LocalPool::open_snapshot(const std::string& id) {
  RETURN_IF_ERROR(ValidateId(id));
  ASSIGN_OR_RETURN(Snapshot s, meta_.ReadSnapshot(id));
  uring::FileDeviceOptions o;
  o.read_only = true;
  return uring::OpenFileDevice(layout_.snapshot_image(s.id), o);
}

StatusOr<ExtentList> LocalPool::changed_extents(const std::string& base_id,
                                                const std::string& id) {
  RETURN_IF_ERROR(ValidateId(id));
  ASSIGN_OR_RETURN(Snapshot target, meta_.ReadSnapshot(id));
  if (base_id.empty()) {
    // Allocated extents of one snapshot: SEEK_DATA/SEEK_HOLE works on every file system.
    ASSIGN_OR_RETURN(auto dev, open_snapshot(id));
    ASSIGN_OR_RETURN(ExtentList allocated, dev->allocated(0, target.size_bytes));
    return Clip(allocated, 0, target.size_bytes);
  }
  RETURN_IF_ERROR(ValidateId(base_id));
  ASSIGN_OR_RETURN(Snapshot base, meta_.ReadSnapshot(base_id));
  if (base.source_volume_id != target.source_volume_id)
    return absl::InvalidArgumentError(absl::StrCat("snapshots ", base_id, " and ", id,
                                                   " are of different volumes"));
  if (!reflink_)
    return absl::UnimplementedError(absl::StrCat(
        "local pool '", options_.name, "' has no reflinks, so snapshots share no blocks to "
        "compare; read and compare them instead"));
  ASSIGN_OR_RETURN(ExtentList diff, uring::DifferingExtents(layout_.snapshot_image(base_id),
                                                            layout_.snapshot_image(id)));
  return Clip(diff, 0, std::max(base.size_bytes, target.size_bytes));
}

}  // namespace vdisk::blockdev::local
