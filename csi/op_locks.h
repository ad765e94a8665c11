// Per-object operation locks: at most one CSI operation at a time changes a volume, a snapshot or
// a name. A conflicting operation does not wait: it fails with ABORTED, which the CSI spec
// defines as "an operation is already pending for this object" and COs retry with backoff.
// Keys are taken exclusively (create/delete/expand of the object) or shared (the object is only
// read, e.g. the source of a clone: many clones of one golden image may run at once, but the
// image cannot be deleted meanwhile). Thread-safe.
#pragma once

#include <initializer_list>
#include <mutex>
#include <map>
#include <string>
#include <vector>

#include "common/status.h"

namespace vdisk::csi {

class OpLocks {
 public:
  // Holds its keys until destroyed. Movable, not copyable.
  class Guard {
   public:
    Guard() = default;
    Guard(Guard&& other) noexcept;
    Guard& operator=(Guard&& other) noexcept;
    Guard(const Guard&) = delete;
    Guard& operator=(const Guard&) = delete;
    ~Guard();

   private:
    friend class OpLocks;
    Guard(OpLocks* owner, std::vector<std::string> exclusive, std::vector<std::string> shared)
        : owner_(owner), exclusive_(std::move(exclusive)), shared_(std::move(shared)) {}
    void Release();
    OpLocks* owner_ = nullptr;
    std::vector<std::string> exclusive_;
    std::vector<std::string> shared_;
  };

  // Takes every key or none. ABORTED naming the busy key if an exclusive key is held at all or a
  // shared key is held exclusively; empty keys are ignored.
  StatusOr<Guard> Acquire(std::vector<std::string> exclusive, std::vector<std::string> shared = {});

  // Number of keys currently held (for tests and diagnostics).
  size_t held() const;

 private:
  void Release(const std::vector<std::string>& exclusive, const std::vector<std::string>& shared);
  mutable std::mutex mu_;
  std::map<std::string, int> held_;  // -1 exclusive, n > 0 shared by n holders
};

}  // namespace vdisk::csi
