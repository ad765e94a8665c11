// The node's mount operations on staging and target paths: bind mounts (read-only honoured
// with a remount), unmounts, mount-point detection, target creation and removal. Errors are
// values (EBUSY -> FAILED_PRECONDITION, ENOENT -> NOT_FOUND, EPERM -> PERMISSION_DENIED).
//
// Confinement: every staging / target path argument is resolved beneath the allowed root it
// lies under (common/confined_path.h): never through a symbolic link, never outside the root,
// and mounts, creations and removals act on the descriptors so resolved (mount(2) and
// umount2(2) are given /proc/self/fd/N paths), so a symlink planted in a kubelet path cannot
// redirect a mount or a created file. A path under no allowed root is INVALID_ARGUMENT; one
// that crosses a symlink below its root is INVALID_ARGUMENT too. The roots are process-wide
// (the node plugin serves one kubelet): SetAllowedRoots() once before serving; until then, and
// with an empty list, the root is "/" (symlinks are then refused anywhere in the path).
//
// Thread-safe; callers serialise operations on one path.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace vdisk::csi::mount {

// Sets the allowed roots (absolute directories; a root may itself be reached through a
// symlink). Each is opened when a path under it is used: an operation on a path whose root
// cannot be opened fails with that error. INVALID_ARGUMENT for a relative root. Replaces the
// previous roots.
Status SetAllowedRoots(const std::vector<std::string>& roots);

// True if `path` is a mount point (a bind-mounted file counts). A missing path is simply not
// a mount point.
StatusOr<bool> IsMountPoint(const std::string& path);

// Bind-mounts `source` (a directory, a file or a device node) onto `target`, which must exist
// and be of the same kind. `source` is confined too when it lies under an allowed root (a
// staging path); otherwise it is the pool's own attachment (a device node, a pool directory)
// and opened as given. `extra_flags` are MS_* bits from the capability's mount flags; with
// `readonly` (or MS_RDONLY in the flags) the bind is remounted read-only. On failure nothing
// stays mounted.
Status BindMount(const std::string& source, const std::string& target, bool readonly,
                 unsigned long extra_flags = 0);

// Unmounts everything stacked on `target`. OK if nothing is mounted there.
Status Unmount(const std::string& target);

// mkdir -p of `path` (mode 0750), or of its parent plus an empty regular file at `path`.
// FAILED_PRECONDITION when something of the other kind already exists there.
Status EnsureDir(const std::string& path);
Status EnsureFile(const std::string& path);
// mkdir of `path` alone (mode 0750), never of its parents: NOT_FOUND if the parent is missing
// (e.g. a pod directory kubelet removed). OK if it is already a directory.
Status MakeTargetDir(const std::string& path);

// Removes a file or an empty directory; OK if absent. FAILED_PRECONDITION if still a mount point.
Status RemoveTarget(const std::string& path);

// Removes `path` only if it is plainly an empty leftover: an empty regular file or an empty
// directory that is not a mount point. Anything else (data, a mount, a symlink) is left alone.
// OK if absent.
Status RemoveEmptyTarget(const std::string& path);

// Size in bytes of a block device node.
StatusOr<uint64_t> BlockDeviceSize(const std::string& device);

// True if `path` is a block device node.
bool IsBlockDevice(const std::string& path);

}  // namespace vdisk::csi::mount
