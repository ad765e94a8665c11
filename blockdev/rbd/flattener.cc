#include "blockdev/rbd/flattener.h"

#include <algorithm>

namespace vdisk::blockdev::rbd {

Flattener::Flattener() : thread_([this] { Run(); }) {}

Flattener::~Flattener() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
    queue_.clear();
    cancel_running_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void Flattener::Enqueue(const std::string& key, Job job) {
  {
    std::lock_guard lock(mu_);
    if (stop_) return;
    for (const auto& [k, j] : queue_)
      if (k == key) return;
    queue_.emplace_back(key, std::move(job));
  }
  cv_.notify_all();
}

void Flattener::Cancel(const std::string& key) {
  std::unique_lock lock(mu_);
  queue_.erase(std::remove_if(queue_.begin(), queue_.end(),
                              [&](const auto& e) { return e.first == key; }),
               queue_.end());
  if (running_ == key) {
    cancel_running_ = true;
    cv_.wait(lock, [&] { return running_ != key; });
  }
}

bool Flattener::Busy(const std::string& key) {
  std::lock_guard lock(mu_);
  if (running_ == key) return true;
  for (const auto& [k, j] : queue_)
    if (k == key) return true;
  return false;
}

void Flattener::WaitIdle() {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return stop_ || (queue_.empty() && running_.empty()); });
}

void Flattener::Run() {
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
    if (stop_) return;
    auto [key, job] = std::move(queue_.front());
    queue_.pop_front();
    running_ = key;
    cancel_running_ = false;
    lock.unlock();
    job(cancel_running_);
    lock.lock();
    running_.clear();
    cv_.notify_all();
  }
}

}  // namespace vdisk::blockdev::rbd
