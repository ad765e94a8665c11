// NfsPool: the node side. Filesystem mode is a kernel NFS mount of the volume's directory
// (mount -t nfs, the options of nfs_options.h), which needs the node's kernel NFS client and
// mount.nfs (nfs-common); the project's CI has neither, so this path is exercised only up to
// the mount command (unit-tested) and otherwise fails cleanly with FAILED_PRECONDITION.
// Block mode has no kernel path: the vhost-user export serves the image over libnfs.
#include <sys/mount.h>

#include <algorithm>
#include <fstream>
#include <mutex>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "blockdev/nfs/nfs_pool_impl.h"
#include "blockdev/record_files.h"
#include "common/fs.h"
#include "common/mountinfo.h"
#include "common/subprocess.h"
#include "spdlog/spdlog.h"

namespace vdisk::blockdev::nfs {

namespace {

bool KernelNfsAvailable() {
  std::ifstream in("/proc/filesystems");
  std::string line;
  while (std::getline(in, line))
    if (line.ends_with("\tnfs") || line.ends_with("\tnfs4")) return true;
  return false;
}

StatusOr<bool> IsMountPoint(const std::string& path) {
  ASSIGN_OR_RETURN(auto mounts, ReadMountInfo());
  return std::any_of(mounts.begin(), mounts.end(),
                     [&](const MountInfoEntry& m) { return m.mountpoint == path; });
}

std::mutex& MountMutex() {
  static std::mutex mu;
  return mu;
}

}  // namespace

StatusOr<Attachment> NfsPool::attach(const std::string& id, bool read_only,
                                     const Params& /*secrets: AUTH_SYS has none*/) {
  RETURN_IF_ERROR(ValidateId(id));
  ASSIGN_OR_RETURN(Volume v, store_.ReadVolume(id));
  if (v.pending)
    return absl::FailedPreconditionError(
        absl::StrCat("volume ", id, " is still being filled (pending); it cannot be attached"));
  if (v.mode == VolumeMode::kBlock)
    return absl::FailedPreconditionError(absl::StrCat(
        "volume ", id, ": Block-mode NFS volumes are served through the vhost-user export over "
        "libnfs (StorageClass parameter attach: vhost-user); vdisk does not put a kernel loop "
        "device over an NFS mount"));
  if (!KernelNfsAvailable())
    return absl::FailedPreconditionError(absl::StrCat(
        "volume ", id, ": this node's kernel has no NFS client (no nfs in /proc/filesystems; "
        "`modprobe nfs`), which Filesystem-mode NFS volumes need"));
  const std::string target = JoinPath(options_.node_mount_dir, options_.name + "/" + id);
  std::lock_guard lock(MountMutex());
  ASSIGN_OR_RETURN(bool mounted, IsMountPoint(target));
  if (mounted) return Attachment{target, false};
  RETURN_IF_ERROR(fs::MakeDirs(target, 0750));
  const auto argv = NodeMountCommand(options_, store_.volume_dir(id), target, read_only);
  ASSIGN_OR_RETURN(ProcessResult r, RunProcess(argv, "", options_.timeout_s * 2000));
  if (!r.ok())
    return absl::UnavailableError(absl::StrCat("`", absl::StrJoin(argv, " "), "` failed (exit ",
                                               r.exit_code, "): ", r.err));
  spdlog::info("nfs pool {}: mounted volume {} at {}", options_.name, id, target);
  return Attachment{target, false};
}

Status NfsPool::detach(const std::string& id, const Attachment& attachment) {
  RETURN_IF_ERROR(ValidateId(id));
  if (attachment.is_block_device || attachment.path.empty()) return Status();
  if (!attachment.path.starts_with(options_.node_mount_dir + "/"))
    return absl::InvalidArgumentError(absl::StrCat("attachment ", attachment.path,
                                                   " is not one of this pool's mounts"));
  std::lock_guard lock(MountMutex());
  ASSIGN_OR_RETURN(bool mounted, IsMountPoint(attachment.path));
  if (mounted && ::umount2(attachment.path.c_str(), 0) != 0)
    return LastErrnoStatus(absl::StrCat("umount ", attachment.path));
  if (::rmdir(attachment.path.c_str()) != 0 && errno != ENOENT)
    return LastErrnoStatus(absl::StrCat("rmdir ", attachment.path));
  return Status();
}

Status NfsPool::node_expand(const std::string& id, const Attachment& /*attachment*/) {
  // disk.img already has its new size on the server; the VM sees it on its next resize.
  RETURN_IF_ERROR(ValidateId(id));
  return store_.ReadVolume(id).status();
}

}  // namespace vdisk::blockdev::nfs
