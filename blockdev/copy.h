// The copy engine: copies one Device into another, sparse-aware, with many I/Os in flight.
//
// Only ranges the source reports as allocated are read; blocks that read as all zeroes are not
// written (the destination range is discarded instead, so it stays or becomes a hole). Memory is
// bounded by queue_depth * chunk_bytes. Runs on the calling thread (plus the devices' engines).
// Progress is reported through a callback; `cancel` stops it between chunks (CANCELLED);
// with a checkpoint file a re-run after a crash or cancel resumes where the last one stopped.
// The destination must be at least as large as the source (OUT_OF_RANGE otherwise).
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
  double rate_bytes_per_s = 0;
};

struct CopyOptions {
  unsigned queue_depth = 32;
  uint32_t chunk_bytes = 1 << 20;
  // Discard destination ranges that are holes/zero in the source (needed when the destination
  // is not known to be empty). When false they are left untouched.
  bool discard_holes = true;
  bool flush_at_end = true;
  // Compute a SHA-256 over the source's full logical content (holes as zeroes).
  bool checksum = false;
  // If non-empty, progress is persisted here and a later copy with the same file resumes.
  std::string checkpoint_path;
  std::function<void(const CopyProgress&)> progress;  // called at most ~10 times/s
  const std::atomic<bool>* cancel = nullptr;
};

struct CopyResult {
  uint64_t bytes_read = 0;
  uint64_t bytes_written = 0;
  uint64_t bytes_zero = 0;  // read but found all-zero, so not written
  std::string sha256_hex;   // when options.checksum
  bool resumed = false;
};

StatusOr<CopyResult> CopyDevice(Device& src, Device& dst, const CopyOptions& options = {});

}  // namespace vdisk::blockdev
