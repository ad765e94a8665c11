#include "csi/mounter.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <memory>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/confined_path.h"
#include "common/fs.h"
#include "common/mountinfo.h"

namespace vdisk::csi::mount {

namespace {

using fs::ConfinedRoot;
using fs::IsUnder;
using fs::ProcPath;
using fs::UniqueFd;

// The allowed roots, as normalised absolute paths, longest first. Each operation opens the root
// it needs afresh (one open(2)), so a root created or remounted after start-up is used as it is.
std::mutex g_mu;
std::vector<std::string> g_roots = {"/"};

// The allowed root `path` lies under (the innermost one), opened.
StatusOr<ConfinedRoot> RootOf(const std::string& path) {
  std::vector<std::string> roots;
  {
    std::lock_guard lock(g_mu);
    roots = g_roots;
  }
  for (const auto& r : roots) {
    if (!IsUnder(r, path)) continue;
    auto root = ConfinedRoot::Open(r);
    if (!root.ok()) return Annotate(root.status(), absl::StrCat("allowed target root ", r));
    return root;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("path '", path, "' is outside the allowed roots (", absl::StrJoin(roots, ", "), ")"));
}

StatusOr<UniqueFd> ResolveConfined(const std::string& path) {
  ASSIGN_OR_RETURN(ConfinedRoot root, RootOf(path));
  return root.Resolve(path);
}

// The path the kernel reports for a descriptor (its real location, after any root symlink).
std::string RealPathOf(int fd) {
  char buf[PATH_MAX + 1];
  ssize_t n = ::readlink(ProcPath(fd).c_str(), buf, PATH_MAX);
  return n > 0 ? std::string(buf, n) : std::string();
}

// umount2 of the mount at `path`, named through its resolved parent directory: an O_PATH
// descriptor of the mount itself would keep it busy.
Status UnmountOnce(const std::string& path, bool* nothing_mounted) {
  ASSIGN_OR_RETURN(ConfinedRoot root, RootOf(path));
  ASSIGN_OR_RETURN(auto parent, root.ResolveParent(path));
  const std::string via = absl::StrCat(ProcPath(parent.first.get()), "/", parent.second);
  if (::umount2(via.c_str(), UMOUNT_NOFOLLOW) != 0) {
    if (errno == EINVAL) {  // not a mount point (raced with another unmount)
      *nothing_mounted = true;
      return Status();
    }
    if (errno == EBUSY)
      return absl::FailedPreconditionError(absl::StrCat("unmount ", path, ": target is busy"));
    return LastErrnoStatus(absl::StrCat("unmount ", path));
  }
  return Status();
}

}  // namespace

Status SetAllowedRoots(const std::vector<std::string>& roots) {
  std::vector<std::string> normal;
  for (const auto& r : roots.empty() ? std::vector<std::string>{"/"} : roots) {
    if (r.empty() || r.front() != '/')
      return absl::InvalidArgumentError(absl::StrCat("allowed target root '", r, "' is not absolute"));
    std::string n = r;
    while (n.size() > 1 && n.back() == '/') n.pop_back();
    normal.push_back(std::move(n));
  }
  std::sort(normal.begin(), normal.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  std::lock_guard lock(g_mu);
  g_roots = std::move(normal);
  return Status();
}

StatusOr<bool> IsMountPoint(const std::string& path) {
  auto fd = ResolveConfined(path);
  std::string real;
  if (fd.ok()) {
    real = RealPathOf(fd->get());
  } else if (absl::IsNotFound(fd.status()) || absl::IsFailedPrecondition(fd.status())) {
    return false;  // missing, or a file where a directory should be on the way
  } else if (absl::IsInvalidArgument(fd.status())) {
    return fd.status();  // outside the roots, or through a symlink
  }
  // Otherwise (a stale mount: ESTALE, EIO, ENOTCONN) it may still be one: compare by name.
  ASSIGN_OR_RETURN(std::vector<MountInfoEntry> mounts, ReadMountInfo());
  for (const auto& m : mounts)
    if (m.mountpoint == path || (!real.empty() && m.mountpoint == real)) return true;
  return false;
}

Status BindMount(const std::string& source, const std::string& target, bool readonly,
                 unsigned long extra_flags) {
  ASSIGN_OR_RETURN(UniqueFd to, ResolveConfined(target));
  UniqueFd from;
  if (RootOf(source).ok()) {
    ASSIGN_OR_RETURN(from, ResolveConfined(source));
  } else {
    from = UniqueFd(::open(source.c_str(), O_PATH | O_CLOEXEC));
    if (!from.valid()) return LastErrnoStatus(absl::StrCat("open ", source));
  }
  if (::mount(ProcPath(from.get()).c_str(), ProcPath(to.get()).c_str(), nullptr, MS_BIND, nullptr) != 0)
    return LastErrnoStatus(absl::StrCat("bind mount ", source, " on ", target));
  unsigned long flags = extra_flags & (MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME |
                                       MS_NODIRATIME | MS_RELATIME | MS_STRICTATIME);
  if (readonly) flags |= MS_RDONLY;
  if (flags == 0) return Status();
  // The new mount, resolved again (the descriptor above names what it covers).
  Status s;
  auto mounted = ResolveConfined(target);
  if (!mounted.ok()) {
    s = mounted.status();
  } else if (::mount(nullptr, ProcPath(mounted->get()).c_str(), nullptr, MS_REMOUNT | MS_BIND | flags,
                     nullptr) != 0) {
    s = LastErrnoStatus(absl::StrCat("remount ", target, readonly ? " read-only" : ""));
  }
  if (!s.ok()) {
    mounted = UniqueFd();
    bool none = false;
    (void)UnmountOnce(target, &none);
  }
  return s;
}

Status Unmount(const std::string& target) {
  for (int i = 0; i < 64; ++i) {
    ASSIGN_OR_RETURN(bool mounted, IsMountPoint(target));
    if (!mounted) return Status();
    bool nothing = false;
    RETURN_IF_ERROR(UnmountOnce(target, &nothing));
    if (nothing) return Status();
  }
  return absl::InternalError(absl::StrCat("unmount ", target, ": too many stacked mounts"));
}

Status EnsureDir(const std::string& path) {
  ASSIGN_OR_RETURN(ConfinedRoot root, RootOf(path));
  return root.MakeDirs(path, 0750).status();
}

Status MakeTargetDir(const std::string& path) {
  ASSIGN_OR_RETURN(ConfinedRoot root, RootOf(path));
  return root.MakeDir(path, 0750).status();
}

Status EnsureFile(const std::string& path) {
  ASSIGN_OR_RETURN(ConfinedRoot root, RootOf(path));
  return root.CreateFile(path, 0640).status();
}

Status RemoveTarget(const std::string& path) {
  ASSIGN_OR_RETURN(bool mounted, IsMountPoint(path));
  if (mounted) return absl::FailedPreconditionError(absl::StrCat(path, " is still a mount point"));
  ASSIGN_OR_RETURN(ConfinedRoot root, RootOf(path));
  return root.Remove(path);
}

Status RemoveEmptyTarget(const std::string& path) {
  auto fd = ResolveConfined(path);
  if (!fd.ok()) {
    // Missing, not ours to judge (a symlink, a file on the way), or unreadable: left alone.
    const Status& s = fd.status();
    if (absl::IsNotFound(s) || absl::IsInvalidArgument(s) || absl::IsFailedPrecondition(s)) return Status();
    return s;
  }
  struct stat st;
  if (::fstat(fd->get(), &st) != 0) return LastErrnoStatus(absl::StrCat("stat ", path));
  ASSIGN_OR_RETURN(bool mounted, IsMountPoint(path));
  if (mounted) return Status();
  if (!(S_ISREG(st.st_mode) && st.st_size == 0) && !S_ISDIR(st.st_mode)) return Status();
  ASSIGN_OR_RETURN(ConfinedRoot root, RootOf(path));
  Status s = root.Remove(path);
  return absl::IsFailedPrecondition(s) ? Status() : s;  // a directory with content stays
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
