// Restore of one disk of a backup onto a device, a file or a new pool volume.
//
// Chunks are fetched in parallel (ranged reads coalesced per pack), each decrypted,
// decompressed and checked against its keyed hash, then written with many writes in flight.
// Zero and unallocated ranges become holes: a fresh target is left untouched there, an existing
// one gets discard (hole punch / UNMAP), falling back to write-zeroes. No parent is needed.
//
// Targets: any Device URI ("rbd:pool/img", "/dev/sdb") or an existing file is overwritten in
// place (a regular file is resized to the disk); a path that does not exist is created sparse as
// "<path>.vdisk-partial" and renamed to <path> only after a complete, verified restore; with
// `pool` + `volume_name` a pending pool volume is created and completed at the end. Re-running
// an interrupted restore with the same arguments finishes it.
//
// Holds a shared repository lock. Errors: NOT_FOUND backup/disk, OUT_OF_RANGE target too
// small, DATA_LOSS some chunks were missing or corrupt (the message names their offsets;
// a new file is then not renamed into place), UNAVAILABLE store unreachable.
#pragma once

#include <atomic>
#include <string>
#include <vector>

#include "backup/pipeline/progress.h"
#include "backup/repo/lock.h"
#include "backup/repo/repository.h"
#include "blockdev/registry.h"

namespace vdisk::backup {

struct RestoreOptions {
  std::string backup;  // id, unique id prefix, or "latest"
  std::string group;   // restricts "latest"
  std::string disk;    // disk name; "" = the backup's only disk
  std::string target;  // Device URI or file path
  blockdev::PoolConfig pool;  // restore into a new volume of this pool (kind empty: no pool)
  std::string volume_name;  // the new volume's name
  unsigned parallel = 0;    // ranged reads in flight; 0 = the store's parallelism
  unsigned write_depth = 16;
  LockOptions lock;
  ProgressFn progress;
  const std::atomic<bool>* cancel = nullptr;
};

struct RestoreResult {
  std::string backup_id;
  std::string disk;
  std::string target;       // what was written (device description / file / volume id)
  uint64_t size_bytes = 0;
  uint64_t bytes_written = 0;
  uint64_t bytes_holes = 0;
  uint64_t bytes_fetched = 0;
  uint64_t chunks = 0;
  bool created = false;     // a new file/volume was made
  double seconds = 0;
};

StatusOr<RestoreResult> Restore(const Repository& repo, const RestoreOptions& options);

}  // namespace vdisk::backup
