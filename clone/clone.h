// Clone strategies: a new volume whose content comes from a snapshot or another volume (the CSI
// CreateVolume with a content source, through CreateVolume in create.h; also tools and tests).
//
// CreateVolumeFromSource() is CreateVolume() (create.h: idempotency by name, source checks,
// resuming an interrupted copy) for a request that must have a source. A new clone is made by,
// in this order (or as CloneOptions::strategy forces):
//   offload   pool.create_volume(req) when capabilities say the pool clones that kind of source
//             itself (reflink, RBD clone): O(1) or backend-side;
//   snapshot  source is a volume, the pool cannot clone volumes but can snapshot and clone
//             snapshots: a temporary snapshot "<name>@vdisk-clone" is taken, cloned, deleted;
//   host copy create_volume(pending=true) -> CopyDevice (sparse, zero-detecting, resumable with
//             a checkpoint) -> complete_volume().
// A pending volume left by an interrupted host copy is resumed by a repeat (from its checkpoint
// when options.checkpoint_dir is set, from the start otherwise). A host copy that fails deletes
// the pending volume (nothing half-made stays behind); a cancelled one (CANCELLED) or one cut
// off by an unreachable backend (UNAVAILABLE) keeps it, and its checkpoint, for the retry. The new volume may be larger than the source (the tail reads as
// zeroes), never smaller (OUT_OF_RANGE). req.size_bytes == 0 means "the source's size".
//
// Errors: INVALID_ARGUMENT (no source, bad request), NOT_FOUND (source missing or still being
// filled), UNAVAILABLE (snapshot not ready), FAILED_PRECONDITION (forced strategy the pool cannot
// do, host copies disabled), ALREADY_EXISTS (the name is a different volume), OUT_OF_RANGE, plus
// the pool's and the copy engine's errors. Thread-safe as the Pool is; one call per target name
// at a time (the CSI layer serialises by name).
#pragma once

#include <atomic>
#include <functional>
#include <string>

#include "blockdev/copy.h"
#include "blockdev/pool.h"
#include "common/status.h"

namespace vdisk::clone {

enum class Strategy { kAuto, kOffload, kSnapshot, kHostCopy };
std::string_view ToString(Strategy s);

struct CloneOptions {
  Strategy strategy = Strategy::kAuto;
  // The pool holding req.source; nullptr = the target pool. A source in another pool is always
  // host-copied, and the new volume records no source (Volume.source is kNone) since its pool
  // cannot name the other pool's objects.
  blockdev::Pool* source_pool = nullptr;
  // Allow the host copy at all (kAuto falls back to it only when true).
  bool allow_host_copy = true;
  // Host copy tuning.
  unsigned queue_depth = 32;
  uint32_t chunk_bytes = 1 << 20;
  // Directory for copy checkpoints ("<pool>-<volume id>.ckpt"); empty = no resume (a retry
  // restarts the copy from the beginning, which is still correct).
  std::string checkpoint_dir;
  // A checkpoint every this many bytes read (or 2 s), as blockdev::CopyOptions.
  uint64_t checkpoint_every_bytes = 256ull << 20;
  std::function<void(const blockdev::CopyProgress&)> progress;
  const std::atomic<bool>* cancel = nullptr;
};

// What happened, for logs, the CLI and tests.
struct CloneReport {
  Strategy strategy = Strategy::kAuto;  // the strategy actually used
  bool resumed = false;                 // continued an interrupted host copy
  bool already_done = false;            // the volume existed and was complete
  blockdev::CopyResult copy;            // host copy only
};

StatusOr<blockdev::Volume> CreateVolumeFromSource(blockdev::Pool& pool,
                                                  const blockdev::VolumeRequest& req,
                                                  const CloneOptions& options = {},
                                                  CloneReport* report = nullptr);

}  // namespace vdisk::clone
