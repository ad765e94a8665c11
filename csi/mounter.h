// The node's mount operations: bind mounts (read-only honoured with a remount), unmounts,
// mount-point detection and target-path creation. Thin wrappers over mount(2)/umount2(2) and
// /proc/self/mountinfo; errors are values (EBUSY -> FAILED_PRECONDITION, ENOENT -> NOT_FOUND,
// EPERM -> PERMISSION_DENIED). Thread-safe (no shared state); callers serialise per path.
#pragma once

#include <cstdint>
#include <string>

#include "common/status.h"

namespace vdisk::csi::mount {

// True if `path` is a mount point (a bind-mounted file counts). NOT_FOUND-free: a missing path
// is simply not a mount point.
StatusOr<bool> IsMountPoint(const std::string& path);

// Bind-mounts `source` (a directory, a file or a device node) onto `target`, which must exist
// and be of the same kind. `extra_flags` are MS_* bits from the capability's mount flags; with
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

// Removes a file or an empty directory; OK if absent. FAILED_PRECONDITION if still a mount point.
Status RemoveTarget(const std::string& path);

// Size in bytes of a block device node.
StatusOr<uint64_t> BlockDeviceSize(const std::string& device);

// True if `path` is a block device node.
bool IsBlockDevice(const std::string& path);

}  // namespace vdisk::csi::mount
