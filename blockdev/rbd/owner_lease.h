// Liveness of the pool instances that create things: an instance about to write a "creating"
// record first takes a shared RADOS lock ("vdisk.owners") on the journal object under its owner
// id, with a lease (10 s) that a background thread renews every quarter lease. Another process
// that meets the record asks whether that owner is still listed among the lock's holders: RADOS
// (cls_lock) drops a holder whose lease ran out, so a creator that was SIGKILLed, OOM-killed or
// lost with its node is provably gone one lease after its last renewal, and its half-made objects
// can be cleaned up at once instead of after abandon_after.
//
// A clean shutdown releases the lock (its records are free at once). A process that stalls past
// its own lease may find its records taken over; the pool re-checks a record's owner under the
// journal lock before committing it (rbd_pool_impl.h: StillOwned).
// Thread-safe. The IoCtx must outlive the lease.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

#include "blockdev/rbd/cluster.h"
#include "common/status.h"

namespace vdisk::blockdev::rbd {

class OwnerLease {
 public:
  static constexpr std::chrono::seconds kDefaultLease{10};

  OwnerLease(const IoCtx* io, std::string object, std::string owner,
             std::chrono::seconds lease = kDefaultLease);
  ~OwnerLease();  // stops renewing and releases the lease
  OwnerLease(const OwnerLease&) = delete;
  OwnerLease& operator=(const OwnerLease&) = delete;

  // Takes the lease (once; later calls return at once while it is held) and starts renewing it.
  Status Ensure();

  // Whether `owner` holds a live lease now. When the holders cannot be read, true: nothing is
  // proven, so nothing is taken over.
  bool Alive(const std::string& owner) const;

 private:
  Status Take();  // lock or renew, under mu_
  void Renew();

  const IoCtx* io_;
  const std::string object_, owner_;
  const std::chrono::seconds lease_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool held_ = false, stop_ = false;
  std::chrono::steady_clock::time_point renewed_;
  std::thread renewer_;
};

}  // namespace vdisk::blockdev::rbd
