#include "csi/mounter.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "common/fs.h"
#include "common/mountinfo.h"

namespace vdisk::csi::mount {

namespace {

std::string RealPath(const std::string& path) {
  char buf[PATH_MAX];
  if (::realpath(path.c_str(), buf) != nullptr) return buf;
  return path;
}

}  // namespace

StatusOr<bool> IsMountPoint(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT || errno == ENOTDIR) return false;
    // A stale mount (e.g. of a deleted device) still counts as a mount point.
  }
  const std::string real = RealPath(path);
  ASSIGN_OR_RETURN(std::vector<MountInfoEntry> mounts, ReadMountInfo());
  for (const auto& m : mounts)
    if (m.mountpoint == path || m.mountpoint == real) return true;
  return false;
}

Status BindMount(const std::string& source, const std::string& target, bool readonly,
                 unsigned long extra_flags) {
  if (::mount(source.c_str(), target.c_str(), nullptr, MS_BIND, nullptr) != 0)
    return LastErrnoStatus(absl::StrCat("bind mount ", source, " on ", target));
  unsigned long flags = extra_flags & (MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME |
                                       MS_NODIRATIME | MS_RELATIME | MS_STRICTATIME);
  if (readonly) flags |= MS_RDONLY;
  if (flags != 0) {
    if (::mount(nullptr, target.c_str(), nullptr, MS_REMOUNT | MS_BIND | flags, nullptr) != 0) {
      Status s = LastErrnoStatus(absl::StrCat("remount ", target, readonly ? " read-only" : ""));
      ::umount2(target.c_str(), 0);
      return s;
    }
  }
  return Status();
}

Status Unmount(const std::string& target) {
  for (int i = 0; i < 64; ++i) {
    ASSIGN_OR_RETURN(bool mounted, IsMountPoint(target));
    if (!mounted) return Status();
    if (::umount2(target.c_str(), UMOUNT_NOFOLLOW) != 0) {
      if (errno == EINVAL) return Status();  // raced with another unmount
      if (errno == EBUSY)
        return absl::FailedPreconditionError(absl::StrCat("unmount ", target, ": target is busy"));
      return LastErrnoStatus(absl::StrCat("unmount ", target));
    }
  }
  return absl::InternalError(absl::StrCat("unmount ", target, ": too many stacked mounts"));
}

Status EnsureDir(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) return Status();
    return absl::FailedPreconditionError(absl::StrCat(path, " exists and is not a directory"));
  }
  return fs::MakeDirs(path, 0750);
}

Status EnsureFile(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode)) return Status();
    return absl::FailedPreconditionError(absl::StrCat(path, " exists and is a directory"));
  }
  auto slash = path.find_last_of('/');
  if (slash != std::string::npos && slash > 0) RETURN_IF_ERROR(fs::MakeDirs(path.substr(0, slash), 0750));
  int fd = ::open(path.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0640);
  if (fd < 0) return LastErrnoStatus(absl::StrCat("create ", path));
  ::close(fd);
  return Status();
}

Status RemoveTarget(const std::string& path) {
  ASSIGN_OR_RETURN(bool mounted, IsMountPoint(path));
  if (mounted) return absl::FailedPreconditionError(absl::StrCat(path, " is still a mount point"));
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return Status();
    return LastErrnoStatus(absl::StrCat("stat ", path));
  }
  int rc = S_ISDIR(st.st_mode) ? ::rmdir(path.c_str()) : ::unlink(path.c_str());
  if (rc != 0 && errno != ENOENT) return LastErrnoStatus(absl::StrCat("remove ", path));
  return Status();
}

StatusOr<uint64_t> BlockDeviceSize(const std::string& device) {
  int fd = ::open(device.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return LastErrnoStatus(absl::StrCat("open ", device));
  uint64_t size = 0;
  int rc = ::ioctl(fd, BLKGETSIZE64, &size);
  int err = errno;
  ::close(fd);
  if (rc != 0) return ErrnoStatus(err, absl::StrCat("BLKGETSIZE64 ", device));
  return size;
}

bool IsBlockDevice(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISBLK(st.st_mode);
}

}  // namespace vdisk::csi::mount
