// IoGate: the per-volume policy every I/O queue of a gated Device (gated_device.h) passes through:
//  - QoS: token buckets for the volume's limits (qos_limits.h), shared by all its queues and
//    exports on this node, changed live with SetLimits();
//  - Hold: while a hold lives, completions are not reaped, so no write is acknowledged to the
//    guest. Holding acknowledgements of every member of a group snapshot for the few
//    milliseconds its member snapshots take makes the group crash-consistent (snapshot/
//    group_snapshot.h); submissions keep flowing.
// Queues register a Waker, poked when limits change or a hold ends so that parked operations
// are looked at again. GateRegistry keeps one gate per volume key (weakly: a gate lives while a
// gated Device uses it). Thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "blockdev/qos/qos_limits.h"
#include "blockdev/qos/token_bucket.h"
#include "common/status.h"

namespace vdisk::blockdev::qos {

enum class OpKind { kRead, kWrite, kUnmetered };  // flush is never metered

class Waker {
 public:
  virtual ~Waker() = default;
  virtual void Wake() = 0;  // from any thread
};

struct GateStats {
  uint64_t admitted = 0;  // metered operations started
  uint64_t delayed = 0;   // operations that had to wait for tokens
  uint64_t holds = 0;     // holds taken so far
};

// Always owned by a shared_ptr (Hold() keeps the gate alive while held).
class IoGate : public std::enable_shared_from_this<IoGate> {
 public:
  explicit IoGate(std::string name) : name_(std::move(name)) {}
  const std::string& name() const { return name_; }

  void SetLimits(const QosLimits& limits);
  QosLimits limits() const;
  // False while unlimited: queues then pass operations straight through.
  bool limited() const { return limited_.load(std::memory_order_relaxed); }

  // Charges and returns 0 if an operation may start now; else returns the seconds to wait
  // (nothing charged).
  double TryAdmit(OpKind kind, uint64_t bytes);

  // Blocks reaping until the returned object is destroyed. Waits (up to `wait`) for polls in
  // progress to finish; DEADLINE_EXCEEDED if they do not.
  StatusOr<std::shared_ptr<void>> Hold(std::chrono::milliseconds wait = std::chrono::seconds(5));
  bool held() const { return holds_.load() > 0; }

  // Queue side: EnterPoll() returns false (and enters nothing) while held; a true return must be
  // matched by LeavePoll() once the completions it reaped have run.
  bool EnterPoll();
  void LeavePoll() { in_poll_.fetch_sub(1); }

  void Register(Waker* w);
  void Unregister(Waker* w);

  // Something that lives as long as the gate (e.g. the watch that brings other processes' hold
  // requests to it); set once, destroyed first when the gate goes.
  void Attach(std::shared_ptr<void> attachment);
  bool attached() const;

  GateStats stats() const;

 private:
  void WakeAll();
  void Release();

  const std::string name_;
  std::atomic<bool> limited_{false};
  std::atomic<int> holds_{0};
  std::atomic<int> in_poll_{0};

  mutable std::mutex mu_;  // limits, buckets, stats
  QosLimits limits_;
  RateBuckets iops_, read_iops_, write_iops_, bps_, read_bps_, write_bps_;
  GateStats stats_;
  std::chrono::steady_clock::time_point epoch_ = std::chrono::steady_clock::now();

  std::mutex wakers_mu_;
  std::set<Waker*> wakers_;

  mutable std::mutex attach_mu_;
  std::shared_ptr<void> attachment_;  // last member: released first

 public:
  ~IoGate() {
    std::shared_ptr<void> a;
    {
      std::lock_guard lock(attach_mu_);
      a = std::move(attachment_);
    }
  }
};

// One gate per key (e.g. the CSI volume id), alive while something holds it.
class GateRegistry {
 public:
  std::shared_ptr<IoGate> Get(const std::string& key);   // creates it if needed
  std::shared_ptr<IoGate> Find(const std::string& key);  // nullptr if none is alive
  std::vector<std::pair<std::string, std::shared_ptr<IoGate>>> List();

 private:
  std::mutex mu_;
  std::map<std::string, std::weak_ptr<IoGate>> gates_;
};

}  // namespace vdisk::blockdev::qos
