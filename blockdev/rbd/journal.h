// The RBD pool's journal: name <-> object records kept in the omap of one RADOS object
// ("vdisk.journal" or "vdisk.journal.<instance>") in the pool's default rados pool.
//
// Keys: "v/<volume id>" and "s/<snapshot id>" hold JSON records (records.h); "vn/<name>" and
// "sn/<name>" map a CSI name to its id. Update() applies every set and removal of one call in a
// single atomic RADOS write op, so a crash never leaves a name and its record out of step.
// Acquire() takes a RADOS exclusive lock on the journal object (with a lease, so a crashed holder
// cannot wedge it) for read-check-write sequences that must exclude other processes.
//
// Update() is fenced by that lease: the same write op first asserts (cls_lock assert_locked)
// that this client still holds the lock under this journal's cookie and that the lease has not
// run out, so a process that stalled past its lease (and may have been taken over by another
// one) can never write a decision based on what it read before. Update() is only valid on the
// thread holding a Lock from Acquire().
// Thread-safe (librados is); the IoCtx must outlive the Journal.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "blockdev/rbd/cluster.h"
#include "common/status.h"

namespace vdisk::blockdev::rbd {

class Journal {
 public:
  static constexpr std::chrono::seconds kDefaultLease{10};

  // `lease`: how long the RADOS lock outlives a holder that stops (tests shorten it).
  Journal(const IoCtx* io, std::string object, std::chrono::seconds lease = kDefaultLease);

  const std::string& object() const { return object_; }

  // nullopt if the key (or the journal object) does not exist.
  StatusOr<std::optional<std::string>> Get(const std::string& key) const;
  // Every key starting with `prefix`, sorted.
  StatusOr<std::map<std::string, std::string>> List(const std::string& prefix) const;
  // Applies the sets and removals atomically, with the lock held by the calling thread.
  // ABORTED if this process no longer holds the journal lock (lease expired or broken; nothing
  // was written; the caller's read-check-write must start again); INTERNAL if called without
  // Acquire() on this thread.
  Status Update(const std::map<std::string, std::string>& set,
                const std::vector<std::string>& remove = {});
  // Applies the sets and removals atomically, without the lock, only if `key` still holds
  // exactly `expected` (RADOS omap compare in the same write op: one round trip instead of
  // lock + update + unlock). For committing a record this process wrote and owns: anyone who
  // changed it since (a claim, a heartbeat) makes it false, and nothing is written.
  StatusOr<bool> UpdateIfUnchanged(const std::string& key, const std::string& expected,
                                   const std::map<std::string, std::string>& set,
                                   const std::vector<std::string>& remove = {});

  // Held while alive; releases the RADOS lock on destruction. Hold it only for journal reads
  // and writes, never across slow RBD operations (the lease is 10 s). UNAVAILABLE if another
  // client holds it for longer than ~20 s.
  // In-process callers are serialised by a mutex first (they share one lock cookie).
  class Lock {
   public:
    Lock(Lock&& o) noexcept : journal_(o.journal_), held_(std::move(o.held_)) {
      o.journal_ = nullptr;
    }
    Lock& operator=(Lock&&) = delete;
    ~Lock();

   private:
    friend class Journal;
    Lock(Journal* j, std::unique_lock<std::mutex> held) : journal_(j), held_(std::move(held)) {}
    Journal* journal_;
    std::unique_lock<std::mutex> held_;
  };
  StatusOr<Lock> Acquire();

 private:
  const IoCtx* io_;
  std::string object_;
  std::string cookie_;
  std::chrono::seconds lease_;
  std::mutex mu_;
  std::atomic<std::thread::id> holder_{};
};

}  // namespace vdisk::blockdev::rbd
