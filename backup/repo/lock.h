// Repository locks: many shared holders (backup, restore, verify) or one exclusive holder
// (prune, delete). A lock is an object locks/<id> naming its holder; it is refreshed every
// `refresh` by a background thread and considered stale (ignored, later removed by prune) when
// not refreshed for `stale_after`, so a crashed process never blocks the repository forever.
//
// Acquire writes its own lock, then re-lists: if a conflicting live lock appeared meanwhile,
// it withdraws and fails, so two racing writers both back off rather than both proceed.
// ABORTED when the repository is locked by someone else (the message names the holder).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "backup/store/object_store.h"
#include "common/periodic.h"
#include "common/status.h"

namespace vdisk::backup {

struct LockOptions {
  std::chrono::seconds stale_after{30 * 60};
  std::chrono::seconds refresh{5 * 60};
  std::chrono::seconds wait{0};  // keep retrying this long while locked by others
};

class RepoLock {
 public:
  enum class Mode { kShared, kExclusive };

  static StatusOr<std::unique_ptr<RepoLock>> Acquire(ObjectStore& store, Mode mode,
                                                     const std::string& purpose,
                                                     LockOptions options = {});
  ~RepoLock();  // stops refreshing and removes the lock object
  RepoLock(const RepoLock&) = delete;
  RepoLock& operator=(const RepoLock&) = delete;

  // Removes stale locks of others (needs an exclusive lock held). Returns how many.
  StatusOr<int> RemoveStaleLocks();

  // Operator override (`vdisk backup unlock`): removes stale locks, or every lock when `all`
  // (only safe when no vdisk process uses the repository). Returns the descriptions removed.
  static StatusOr<std::vector<std::string>> RemoveLocks(ObjectStore& store, bool all,
                                                        LockOptions options = {});

  const std::string& key() const { return key_; }

 private:
  RepoLock(ObjectStore& store, Mode mode, std::string key, std::string purpose,
           LockOptions options);
  Status Write();

  ObjectStore& store_;
  const Mode mode_;
  const std::string key_;
  const std::string purpose_;
  const LockOptions options_;
  const int64_t created_;
  std::optional<PeriodicThread> refresher_;  // rewrites the lock every options_.refresh
};

}  // namespace vdisk::backup
