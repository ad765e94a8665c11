// CreateVolume: the one place where a volume of any pool is made by name — empty, or from a
// content source through the clone strategies (clone.h). The CSI CreateVolume, the conformance
// suite and tools all go through it, so every pool inherits the same rules:
//
// Idempotent by name. A volume already under req.name is returned when it is the one this request
// asks for — same volume mode, every requested access mode, every StorageClass parameter of the
// request with the same value, the same content source, a size inside `accept_sizes` — and
// refused with ALREADY_EXISTS naming the first difference otherwise. A pending volume under the
// name (a host copy interrupted by a crash or a cancel) is resumed by the same request; a pending
// one for an empty request is debris of an interrupted create and is removed and made again.
//
// A source must be usable: NOT_FOUND when it does not exist or is a volume still being filled,
// UNAVAILABLE while a snapshot is not ready yet (a retry later succeeds). The new volume is never
// smaller than its source (OUT_OF_RANGE); req.size_bytes == 0 with a source means the source's size.
//
// Thread-safe as the Pool is; one call per name at a time (the CSI layer serialises by name).
#pragma once

#include <cstdint>
#include <optional>

#include "blockdev/pool.h"
#include "clone/clone.h"
#include "common/status.h"

namespace vdisk::clone {

// Sizes an existing volume may have and still answer the request (max 0: no upper bound).
struct SizeRange {
  uint64_t min_bytes = 0;
  uint64_t max_bytes = 0;
};

struct CreateOptions {
  // nullopt: at least the requested size (for CSI: capacity_range required..limit).
  std::optional<SizeRange> accept_sizes;
  // How a content source is copied (strategy, source pool, host copy tuning, checkpoints).
  CloneOptions clone;
};

StatusOr<blockdev::Volume> CreateVolume(blockdev::Pool& pool, const blockdev::VolumeRequest& req,
                                        const CreateOptions& options = {},
                                        CloneReport* report = nullptr);

// The size of a content source in `pool` (snapshot: its size at snapshot time), with the errors
// above (NOT_FOUND, UNAVAILABLE).
StatusOr<uint64_t> SourceSize(blockdev::Pool& pool, const blockdev::VolumeSource& source);

}  // namespace vdisk::clone
