// A bounded multi-producer multi-consumer queue with close(). Push blocks while full; Pop
// blocks while empty and returns nullopt once the queue is closed and drained. Thread-safe.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <optional>
#include <algorithm>

namespace vdisk::backup {

template <typename T>
class WorkQueue {
 public:
  explicit WorkQueue(size_t capacity) : capacity_(capacity ? capacity : 1) {}

  // False if the queue was closed (the item is dropped).
  bool Push(T item) {
    std::unique_lock lock(mu_);
    not_full_.wait(lock, [&] { return closed_ || items_.size() < capacity_; });
    if (closed_) return false;
    items_.push_back(std::move(item));
    not_empty_.notify_one();
    return true;
  }

  std::optional<T> Pop() {
    std::unique_lock lock(mu_);
    not_empty_.wait(lock, [&] { return closed_ || !items_.empty(); });
    if (items_.empty()) return std::nullopt;
    T item = std::move(items_.front());
    items_.pop_front();
    not_full_.notify_one();
    return item;
  }

  // An item if one is queued right now, else nullopt (never blocks).
  std::optional<T> TryPop() {
    std::lock_guard lock(mu_);
    if (items_.empty()) return std::nullopt;
    T item = std::move(items_.front());
    items_.pop_front();
    not_full_.notify_one();
    return item;
  }

  // No more pushes; consumers drain what is queued, then Pop returns nullopt.
  void Close() {
    std::lock_guard lock(mu_);
    closed_ = true;
    not_empty_.notify_all();
    not_full_.notify_all();
  }

 private:
  const size_t capacity_;
  std::mutex mu_;
  std::condition_variable not_empty_, not_full_;
  std::deque<T> items_;
  bool closed_ = false;
};

// Counts units of a resource (bytes of buffer memory, in-flight requests). Acquire blocks until
// `n` units are free. Thread-safe.
class Budget {
 public:
  explicit Budget(size_t total) : free_(total), total_(total) {}
  void Acquire(size_t n) {
    std::unique_lock lock(mu_);
    if (n > total_) n = total_;  // a single request larger than the budget runs alone
    cv_.wait(lock, [&] { return free_ >= n; });
    free_ -= n;
  }
  void Release(size_t n) {
    std::lock_guard lock(mu_);
    free_ = std::min(total_, free_ + n);
    cv_.notify_all();
  }
  size_t total() const { return total_; }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  size_t free_;
  const size_t total_;
};

}  // namespace vdisk::backup
