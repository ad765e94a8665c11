// Background work of the RBD pool, on one worker thread: flattening clones past the soft depth
// limit, and garbage collection. Jobs are keyed (one queued or running job per key; a repeat
// Enqueue of a queued key is dropped). A job receives a cancel flag it should poll (the flatten
// progress callback does). Thread-safe.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

namespace vdisk::blockdev::rbd {

class Flattener {
 public:
  using Job = std::function<void(const std::atomic<bool>& cancel)>;

  Flattener();
  // Cancels the running job, drops queued ones, joins the thread.
  ~Flattener();

  void Enqueue(const std::string& key, Job job);
  // Drops a queued job for `key`, cancels it if running and waits until it has returned.
  void Cancel(const std::string& key);
  // True while a job for `key` is queued or running.
  bool Busy(const std::string& key);
  // Waits until nothing is queued or running (jobs that enqueue jobs are waited for too).
  void WaitIdle();

 private:
  void Run();

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::pair<std::string, Job>> queue_;
  std::string running_;
  std::atomic<bool> cancel_running_{false};
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace vdisk::blockdev::rbd
