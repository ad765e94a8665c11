// Which chunks of a disk a backup reads, which it takes unchanged from the parent backup, and
// which are holes — from the source's allocation map, an optional change map (extents changed
// since the parent's source snapshot) and the parent's manifest. Pure function, thread-safe.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "backup/repo/chunk_index.h"
#include "backup/repo/manifest.h"
#include "blockdev/extent.h"

namespace vdisk::backup {

struct SourcePlan {
  std::vector<uint32_t> read;        // chunk indexes to read and hash, ascending
  std::vector<ChunkRef> inherited;   // chunks taken from the parent without reading
  uint64_t inherited_missing = 0;    // parent chunks absent from the index (read instead)
  bool used_change_map = false;
};

// `allocated`: extents that may hold data (the whole disk if unknown).
// `changed`: extents changed since parent's source snapshot (nullopt: no change map; every
// allocated chunk is read and hashed, and dedup skips the upload of known chunks).
// `parent`: the same disk in the parent backup (nullptr: none). The change map is only used
// when the parent has the same chunk size; chunks beyond the parent's size count as changed.
SourcePlan PlanChunks(uint64_t size_bytes, uint32_t chunk_size,
                      const blockdev::ExtentList& allocated,
                      const std::optional<blockdev::ExtentList>& changed,
                      const DiskBackup* parent, const ChunkIndex& index);

// Marks chunk indexes overlapped by `extents` (clipped to the disk).
std::vector<bool> ChunksTouched(const blockdev::ExtentList& extents, uint64_t size_bytes,
                                uint32_t chunk_size);

}  // namespace vdisk::backup
