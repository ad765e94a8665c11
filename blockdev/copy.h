// The copy engine: copies one Device into another, sparse-aware, with many I/Os in flight.
//
// Only ranges the source reports as allocated are read (small gaps inside one chunk are read
// through); blocks that read as all zeroes are not written: where the destination may hold data
// there (its allocated()), the range is discarded instead, so it stays or becomes a hole.
// Memory is bounded by queue_depth * chunk_bytes. Runs on the calling thread (plus the devices'
// engines); CopyDevice() may run concurrently for different device pairs.
// Progress is reported through a callback; `cancel` stops it between chunks (CANCELLED);
// with a checkpoint file a re-run after a crash, kill or cancel resumes where the last durable
// checkpoint stopped (the destination is flushed before each checkpoint is written), and the
// checkpoint is removed when the copy completes.
// The destination must be at least as large as the source (OUT_OF_RANGE otherwise); bytes of a
// larger destination beyond the source size are left untouched. PERMISSION_DENIED for a read-only
// destination; FAILED_PRECONDITION for a checkpoint written by a different copy.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

#include "blockdev/device.h"

namespace vdisk::blockdev {

struct CopyProgress {
  uint64_t bytes_done = 0;    // of bytes_total, including skipped holes
  uint64_t bytes_total = 0;   // source size
  uint64_t bytes_read = 0;    // actually read from the source
  uint64_t bytes_written = 0; // actually written to the destination
  double rate_bytes_per_s = 0;  // bytes_done per second in this run (a resumed run starts at 0)
  double elapsed_s = 0;
};

struct CopyOptions {
  unsigned queue_depth = 32;      // chunks in flight (memory = queue_depth * chunk_bytes)
  uint32_t chunk_bytes = 1 << 20;
  // Discard destination ranges that are holes/zero in the source (needed when the destination
  // is not known to be empty). When false they are left untouched.
  bool discard_holes = true;
  bool flush_at_end = true;
  // Compute a SHA-256 over the source's full logical content (holes as zeroes): the same value
  // as `sha256sum` of the source. Costs CPU for every byte, holes included.
  bool checksum = false;
  // If non-empty, progress is persisted here and a later copy with the same file resumes.
  std::string checkpoint_path;
  std::function<void(const CopyProgress&)> progress;  // called at most ~10 times/s, and at the end
  const std::atomic<bool>* cancel = nullptr;
  // Zero detection granularity (a power of two, >= both block sizes): runs of all-zero blocks of
  // this size are not written.
  uint32_t zero_granularity = 4096;
  // A checkpoint (a destination flush, then an atomic write of the checkpoint file on a helper
  // thread) is made after this many bytes read from the source since the last one (the data a
  // resumed copy would redo; holes are cheap to skip again) or this many seconds of progress,
  // whichever comes first.
  uint64_t checkpoint_every_bytes = 256ull << 20;
  double checkpoint_every_seconds = 2.0;
};

struct CopyResult {
  uint64_t bytes_read = 0;
  uint64_t bytes_written = 0;
  uint64_t bytes_zero = 0;  // read but found all-zero, so not written
  std::string sha256_hex;   // when options.checksum
  bool resumed = false;
  uint64_t resumed_from = 0;     // offset the copy resumed at (when resumed)
  uint64_t bytes_discarded = 0;  // destination bytes discarded (holes / zero runs)
};

StatusOr<CopyResult> CopyDevice(Device& src, Device& dst, const CopyOptions& options = {});

}  // namespace vdisk::blockdev
