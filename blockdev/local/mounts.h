// Is a directory mounted somewhere (the Filesystem-mode attachment of a local volume is a bind
// mount of its directory, made by the CSI node service)? Reads /proc/self/mountinfo: the
// directory counts as mounted when some mount has the same device and, as its root inside that
// file system, the directory itself or a path below it. Thread-safe.
#pragma once

#include <string>

#include "common/status.h"

namespace vdisk::blockdev::local {

StatusOr<bool> IsMountedElsewhere(const std::string& dir);

}  // namespace vdisk::blockdev::local
