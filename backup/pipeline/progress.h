// Progress reporting for long pipelines: a snapshot struct, a callback type, and a ticker
// thread that samples a snapshot function every `period` and hands it to the callback (and
// once more, final, when stopped). The callback runs on the ticker thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

namespace vdisk::backup {

struct Progress {
  std::string phase;              // "backup", "restore", "verify", "prune"
  std::string item;               // current disk name / backup id
  uint64_t bytes_done = 0;        // of bytes_total (logical disk bytes processed)
  uint64_t bytes_total = 0;
  uint64_t bytes_transferred = 0; // stored bytes uploaded / downloaded
  double elapsed_seconds = 0;
  bool final = false;
};

using ProgressFn = std::function<void(const Progress&)>;

class ProgressTicker {
 public:
  ProgressTicker(ProgressFn fn, std::function<Progress()> sample,
                 std::chrono::milliseconds period = std::chrono::milliseconds(250))
      : fn_(std::move(fn)), sample_(std::move(sample)), period_(period) {
    if (fn_) thread_ = std::thread([this] { Run(); });
  }
  ~ProgressTicker() { Stop(); }

  void Stop() {
    {
      std::lock_guard lock(mu_);
      if (stopped_) return;
      stopped_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
    if (fn_) {
      Progress p = sample_();
      p.final = true;
      fn_(p);
    }
  }

 private:
  void Run() {
    std::unique_lock lock(mu_);
    while (!stopped_) {
      cv_.wait_for(lock, period_, [&] { return stopped_; });
      if (stopped_) break;
      lock.unlock();
      fn_(sample_());
      lock.lock();
    }
  }

  ProgressFn fn_;
  std::function<Progress()> sample_;
  std::chrono::milliseconds period_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopped_ = false;
  std::thread thread_;
};

}  // namespace vdisk::backup
