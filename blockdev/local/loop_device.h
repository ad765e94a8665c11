// Loop devices over image files: the Block-mode attachment of the local pool.
//
// AttachLoop() finds a loop device already backed by `image` with the same read-only flag, or
// sets up a new one (LOOP_CTL_GET_FREE + LOOP_CONFIGURE, direct I/O when the file system allows
// it, LO_FLAGS_READ_ONLY for read-only, autoclear off so it outlives this process). Finding by
// backing file (/sys/block/loopN/loop/backing_file, confirmed by device and inode) makes attach
// idempotent across restarts. DetachLoop() only ever releases a loop device that is backed by
// `image`. Needs CAP_SYS_ADMIN. Thread-safe for different images; callers serialise per image.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"

namespace vdisk::blockdev::local {

struct LoopDevice {
  std::string path;  // /dev/loopN
  bool read_only = false;
  bool direct_io = false;
};

// Loop devices currently backed by `image` (matched by device + inode).
StatusOr<std::vector<LoopDevice>> FindLoops(const std::string& image);

// An existing or new loop device over `image` with the given read-only flag.
StatusOr<LoopDevice> AttachLoop(const std::string& image, bool read_only);

// Releases `loop_path` if it is backed by `image`; OK if it is unbound or backed by something
// else (it is not ours to release). With an empty `loop_path`, releases every loop over `image`.
// A device still open elsewhere is released when its last user closes it (kernel autoclear).
Status DetachLoop(const std::string& image, const std::string& loop_path);

// Makes loop devices over `image` (or only `loop_path`) pick up the image's current size.
Status RefreshLoopCapacity(const std::string& image, const std::string& loop_path);

}  // namespace vdisk::blockdev::local
