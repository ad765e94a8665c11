// PeriodicThread: runs `tick` every `period` on its own thread until destroyed (or Stop()).
// Stop() wakes the thread at once, waits for a tick in progress and joins; a default-constructed
// or zero-period PeriodicThread runs nothing. Used for lease/lock refreshers and re-reads.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

namespace vdisk {

class PeriodicThread {
 public:
  PeriodicThread() = default;
  PeriodicThread(std::chrono::milliseconds period, std::function<void()> tick) {
    if (period.count() <= 0) return;
    thread_ = std::thread([this, period, tick = std::move(tick)] {
      std::unique_lock lock(mu_);
      while (!cv_.wait_for(lock, period, [this] { return stop_; })) {
        lock.unlock();
        tick();
        lock.lock();
      }
    });
  }
  PeriodicThread(const PeriodicThread&) = delete;
  PeriodicThread& operator=(const PeriodicThread&) = delete;
  ~PeriodicThread() { Stop(); }

  void Stop() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace vdisk
