// Removal of backups and garbage collection of the data only they referenced.
//
// Selects backups to remove (by retention policy, per group, or by explicit ids), deletes their
// manifests, then collects garbage: packs none of the remaining manifests references are
// deleted, the index is rewritten to list exactly the remaining packs, stale locks and stale
// multipart uploads are cleared. Crash-safe order: manifests, then the new index, then the old
// indexes, then packs — an interruption leaves only unreferenced objects, which the next run
// removes. Refuses to collect garbage if any remaining manifest cannot be read (it could hide
// references). Holds an exclusive lock (no backup runs meanwhile). CANCELLED via `cancel`
// between steps (any stop is as safe as a crash, and the lock is released).
#pragma once

#include <atomic>
#include <string>
#include <vector>

#include "backup/pipeline/progress.h"
#include "backup/pipeline/retention.h"
#include "backup/repo/lock.h"
#include "backup/repo/repository.h"

namespace vdisk::backup {

struct PruneOptions {
  RetentionPolicy policy;
  std::string group;                // apply the policy to this group only ("" = every group)
  std::vector<std::string> remove;  // explicit backup ids/prefixes (instead of a policy)
  bool dry_run = false;
  bool gc = true;
  LockOptions lock;
  const std::atomic<bool>* cancel = nullptr;
};

struct PruneResult {
  std::vector<std::string> kept;
  std::vector<std::string> removed;
  uint64_t packs_deleted = 0;
  uint64_t bytes_freed = 0;
  uint64_t packs_kept = 0;
  uint64_t bytes_kept = 0;
  uint64_t bytes_unreferenced_in_kept_packs = 0;
  uint64_t indexes_deleted = 0;
  int stale_locks_removed = 0;
  int uploads_aborted = 0;
};

StatusOr<PruneResult> Prune(const Repository& repo, const PruneOptions& options);

}  // namespace vdisk::backup
