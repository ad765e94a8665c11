// FIEMAP-based allocation and change maps for files on extent file systems (XFS, btrfs, ext4).
//
// ReadFiemap() lists a file's extents with their physical addresses (FIEMAP_FLAG_SYNC: dirty
// page-cache data is written first so the addresses are final). DifferingExtents() is the change
// map between two files that share blocks through reflinks (a snapshot and its volume, two
// snapshots of one volume): it returns every range where the two MAY differ, i.e. everything
// except ranges that read as zeroes in both (holes or unwritten extents) or that map the same
// physical blocks at the same file offset in both. Never less than the truth: unknown or
// encoded extents count as different, and files without shared blocks differ wherever either
// has data. The answer is exact only while neither file is being written (snapshots are
// immutable; quiesce a live volume first). Stateless and thread-safe.
//
// Errors: NOT_FOUND (no such file), UNIMPLEMENTED (file system without FIEMAP), others from errno.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "blockdev/extent.h"
#include "common/status.h"

namespace vdisk::blockdev::uring {

struct FileExtent {
  uint64_t logical = 0;
  uint64_t physical = 0;
  uint64_t length = 0;
  uint32_t flags = 0;  // FIEMAP_EXTENT_* from <linux/fiemap.h>

  bool shared() const;
  // Preallocated (ZERO_RANGE / fallocate) extents: allocated, but they read as zeroes.
  bool unwritten() const;
  // False for delalloc / encoded / inline / unknown extents, whose `physical` is meaningless.
  bool physical_known() const;
  uint64_t end() const { return logical + length; }
};

// Extents of the open file `fd` overlapping [offset, offset + length), in file order.
StatusOr<std::vector<FileExtent>> ReadFiemap(int fd, uint64_t offset, uint64_t length);
StatusOr<std::vector<FileExtent>> ReadFiemap(const std::string& path);

// Ranges of the file that hold data (written extents; unwritten ones are excluded because they
// read as zeroes), from FIEMAP.
StatusOr<ExtentList> AllocatedExtents(const std::string& path);

// Ranges in [0, max(size(base), size(target))) where `base` and `target` may differ (see above).
StatusOr<ExtentList> DifferingExtents(const std::string& base, const std::string& target);
StatusOr<ExtentList> DifferingExtents(int base_fd, int target_fd);

// The same comparison on extent lists already read (pure; exposed for tests and benchmarks).
ExtentList DiffExtentMaps(const std::vector<FileExtent>& base, const std::vector<FileExtent>& target,
                          uint64_t end);

}  // namespace vdisk::blockdev::uring
