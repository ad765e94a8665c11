// The driver-notification eventfd of one virtqueue (SET_VRING_CALL). The session replaces it
// while the queue's worker may be signalling it, so both go through a mutex. Thread-safe.
#pragma once

#include <mutex>

#include "blockdev/vhost/unique_fd.h"

namespace vdisk::blockdev::vhost {

class Notifier {
 public:
  void Set(UniqueFd fd) {
    std::lock_guard<std::mutex> lock(mu_);
    fd_ = std::move(fd);
  }
  // Writes 1 to the eventfd (no-op without one). Returns false if the write failed.
  bool Signal();

 private:
  std::mutex mu_;
  UniqueFd fd_;
};

}  // namespace vdisk::blockdev::vhost
