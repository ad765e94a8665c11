// Backup of one VM's disks (and its Kubernetes manifests) into a repository.
//
// For each disk, only allocated chunks (full) or changed chunks (incremental: a change map
// between the parent's source snapshot and this one, from the pool or the caller) are read;
// without a change map every allocated chunk is read and hashed and only chunks the repository
// lacks are uploaded. Readers (one io_uring/librbd queue per disk) feed hash+compress+encrypt
// workers that feed the pack writer's parallel uploads; memory is bounded by the read buffers
// plus the store's in-flight parts. Zero chunks are never stored.
//
// Holds a shared repository lock. Crash/interrupt safe: the manifest is written last; packs
// uploaded by an interrupted run are adopted by the next one (resume), never re-uploaded.
// Errors: INVALID_ARGUMENT bad options, NOT_FOUND source/parent missing, ABORTED repository
// locked exclusively, CANCELLED via `cancel`, UNAVAILABLE store unreachable after retries.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "backup/pipeline/progress.h"
#include "backup/repo/lock.h"
#include "backup/repo/manifest.h"
#include "backup/repo/repository.h"
#include "blockdev/extent.h"
#include "blockdev/registry.h"

namespace vdisk::backup {

struct DiskSource {
  std::string name;             // disk name within the backup
  std::string uri;              // Device URI or file path (unless pool_snapshot is set)
  // Pool-aware source: the pool (see pool_source.h), the pool-local snapshot to back up, and the
  // snapshot the change map starts from ("" = the parent's source snapshot).
  blockdev::PoolConfig pool;
  std::string pool_snapshot;
  std::string base_snapshot;
  std::string volume;           // informational (volume id / PVC name)
  std::string source_snapshot;  // recorded label for non-pool sources (VolumeSnapshot name)
  // A change map supplied by the caller (extents changed since the parent's source).
  std::optional<blockdev::ExtentList> changed;
  // Or: the parent's source image (URI or path), a relative of `uri` (a reflinked copy on
  // XFS/btrfs); the change map is then the devices' own (snapshot::ChangedBlocksBetween: the
  // FIEMAP difference of the two files, what the local pool does).
  std::string changed_since_image;
};

struct BackupOptions {
  std::vector<DiskSource> disks;
  std::string group;   // retention group; default: the VirtualMachine's namespace/name or "default"
  std::string parent;  // "" full, "auto" latest backup of the group with these disks, or an id
  std::map<std::string, std::string> tags;
  std::vector<KubeObject> kubernetes;
  unsigned read_depth = 16;  // reads in flight per disk
  unsigned workers = 0;      // hash/compress/encrypt threads; 0 = hardware threads
  LockOptions lock;
  std::chrono::seconds stale_upload_age{2 * 3600};
  ProgressFn progress;
  std::function<void(const PackRecord&)> on_pack_committed;  // after each pack is durable
  const std::atomic<bool>* cancel = nullptr;
};

struct BackupResult {
  Manifest manifest;
  uint64_t packs_written = 0;
  uint64_t packs_resumed = 0;  // packs of an interrupted earlier run, adopted
  uint64_t bytes_uploaded = 0;
  double seconds = 0;
};

StatusOr<BackupResult> CreateBackup(const Repository& repo, const BackupOptions& options);

}  // namespace vdisk::backup
