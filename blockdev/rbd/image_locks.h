// In-process mutual exclusion per RBD image for the pool's clean-up work (snapshot removal,
// image collection): the start-up sweep and a retried CSI call (or a background retry) may reach
// the same deleted object at once, and librbd must not be driven to remove the same snapshot or
// image from two handles of one process at the same time (each takes the image's exclusive lock
// from the other, and from a killed predecessor whose lock is being broken). Lock() blocks until
// the key is free. Keys are volume ids. Thread-safe.
#pragma once

#include <condition_variable>
#include <mutex>
#include <set>
#include <string>

namespace vdisk::blockdev::rbd {

class ImageLocks {
 public:
  class Guard {
   public:
    Guard(ImageLocks* owner, std::string key) : owner_(owner), key_(std::move(key)) {}
    Guard(Guard&& o) noexcept : owner_(o.owner_), key_(std::move(o.key_)) { o.owner_ = nullptr; }
    Guard(const Guard&) = delete;
    Guard& operator=(const Guard&) = delete;
    Guard& operator=(Guard&&) = delete;
    ~Guard() {
      if (owner_) owner_->Unlock(key_);
    }

   private:
    ImageLocks* owner_;
    std::string key_;
  };

  // Held until the guard is destroyed. Never take a second key while holding one.
  [[nodiscard]] Guard Lock(const std::string& key) {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return !held_.contains(key); });
    held_.insert(key);
    return Guard(this, key);
  }

 private:
  void Unlock(const std::string& key) {
    {
      std::lock_guard lock(mu_);
      held_.erase(key);
    }
    cv_.notify_all();
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::set<std::string> held_;
};

}  // namespace vdisk::blockdev::rbd
