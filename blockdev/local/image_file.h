// Raw image files of the local pool: sparse creation, reflink (FICLONE), growth, allocation.
// Plain syscalls, errors as values (errno mapped by common/status.h). Thread-safe.
#pragma once

#include <cstdint>
#include <string>

#include "common/status.h"

namespace vdisk::blockdev::local {

// True if the file system holding `dir` can FICLONE (XFS with reflink=1, btrfs, ...). Probes
// with two small temporary files in `dir`, which it removes.
StatusOr<bool> ProbeReflink(const std::string& dir);

// Creates `path` (which must not exist) as a sparse file of `size` bytes; with `preallocate` the
// blocks are reserved with fallocate (RESOURCE_EXHAUSTED when the file system cannot hold them).
// fsyncs the file. OUT_OF_RANGE when the file system cannot hold a file that large.
Status CreateSparseImage(const std::string& path, uint64_t size, bool preallocate);

// Creates `dst_path` (which must not exist) sharing all blocks of the open file `src_fd`
// (FICLONE: O(1) metadata work, no data copied), then grows it to `size` if that is larger.
// UNIMPLEMENTED when the file system cannot reflink. fsyncs the new file.
Status ReflinkImage(int src_fd, const std::string& dst_path, uint64_t size);

// Grows `path` to `size` bytes (never shrinks; OK if already that big) and fsyncs it.
Status GrowImage(const std::string& path, uint64_t size);

struct ImageStat {
  uint64_t size = 0;       // apparent size
  uint64_t allocated = 0;  // bytes of blocks allocated (st_blocks * 512)
  uint64_t dev = 0, ino = 0;
};
StatusOr<ImageStat> StatImage(const std::string& path);

// The largest file the file system holding `dir` accepts (the kernel's s_maxbytes: 16 TiB on
// ext4 with 4 KiB blocks, 8 EiB on XFS), rounded down to `granularity`. Probes with ftruncate on
// an unnamed temporary file in `dir` (nothing is allocated, nothing left behind).
StatusOr<uint64_t> ProbeMaxFileSize(const std::string& dir, uint64_t granularity);

struct FsSpace {
  uint64_t total_bytes = 0;
  uint64_t available_bytes = 0;  // to unprivileged writers (f_bavail)
};
StatusOr<FsSpace> StatFs(const std::string& path);

}  // namespace vdisk::blockdev::local
