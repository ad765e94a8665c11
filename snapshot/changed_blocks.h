// Changed-block maps: which ranges of a snapshot differ from an older snapshot of the same
// volume, or hold data at all. The one path through which incremental backup (backup/), CSI
// SnapshotMetadata (csi/snapshot_metadata.cc) and `vdisk snapshot changes` read change maps;
// none of them names a backend.
//
// ChangedBlocks() asks the pool first (pool.changed_extents(): FIEMAP on reflinked files,
// rbd_diff_iterate2, ...), which costs no data reads. ChangedBlocksBetween() does the same for
// two open devices that are relatives (a reflinked copy of an image file: Device::changed_since). Where the pool cannot tell (UNIMPLEMENTED)
// it opens both snapshots and compares them: only ranges either side reports as allocated are
// read, chunk by chunk with several reads in flight, and compared unit by unit (memcmp of the
// two buffers: both sides are read locally, so a direct comparison is exact and cheaper than
// hashing). AllocatedBlocks() is the map of one snapshot (its allocated extents).
//
// Every map is sorted and merged, aligned outward to `granularity`, and clipped to the target
// snapshot's size; it never reports less than what changed (pools may over-report, e.g. RBD at
// object size). Ranges past the end of a smaller base count as changed where the target holds
// data. Errors: NOT_FOUND (snapshot), INVALID_ARGUMENT (snapshots of different volumes, bad
// options), UNIMPLEMENTED (pool cannot tell and read_compare is off), CANCELLED, I/O errors.
// Thread-safe: runs on the calling thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

#include "blockdev/device.h"
#include "blockdev/extent.h"
#include "blockdev/pool.h"
#include "common/status.h"

namespace vdisk::snapshot {

struct ChangedBlocksOptions {
  uint32_t granularity = 4096;     // unit of comparison and alignment (power of two)
  uint32_t chunk_bytes = 1 << 20;  // read size (multiple of granularity)
  unsigned queue_depth = 4;        // chunks in flight
  bool allow_read_compare = true;  // fall back to reading both snapshots
  const std::atomic<bool>* cancel = nullptr;
  std::function<bool()> is_cancelled;  // polled like `cancel` (e.g. a gRPC call's state)
};

enum class ChangeMapSource {
  kPool,         // the pool's own change tracking (no data read)
  kReadCompare,  // both snapshots read and compared
  kAllocation,   // allocation map of one snapshot
};
std::string_view ToString(ChangeMapSource s);

struct ChangeMap {
  blockdev::ExtentList extents;
  uint64_t size_bytes = 0;  // size of the target snapshot: the map covers [0, size_bytes)
  ChangeMapSource source = ChangeMapSource::kPool;
  uint64_t bytes_read = 0;  // data read to build the map (per side, summed)
};

// Ranges of snapshot `id` that differ from snapshot `base_id`. An empty base_id gives the
// allocated map of `id` (what a full backup must read).
StatusOr<ChangeMap> ChangedBlocks(blockdev::Pool& pool, const std::string& base_id,
                                  const std::string& id, const ChangedBlocksOptions& options = {});

// Ranges of snapshot `id` that may hold data.
StatusOr<ChangeMap> AllocatedBlocks(blockdev::Pool& pool, const std::string& id,
                                    const ChangedBlocksOptions& options = {});

// Ranges of `target` that differ from `base`, a relative of it (see Device::changed_since): the
// devices' own map when they have one (source kPool), else read-and-compare when allowed.
StatusOr<ChangeMap> ChangedBlocksBetween(blockdev::Device& base, blockdev::Device& target,
                                         const ChangedBlocksOptions& options = {});

// The read-and-compare engine on two open devices: ranges in [0, target.size()) where `target`
// differs from `base` (`base` shorter: its missing tail reads as zeroes).
StatusOr<ChangeMap> CompareDevices(blockdev::Device& base, blockdev::Device& target,
                                   const ChangedBlocksOptions& options = {});

}  // namespace vdisk::snapshot
