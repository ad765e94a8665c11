// One virtqueue served by its own thread: an epoll loop over the queue's kick eventfd, the
// IoQueue's completion fd and a stop eventfd. The thread opens its own IoQueue (one per thread,
// as blockdev/device.h requires), processes requests (BlkProcessor) and notifies the driver
// through the call eventfd. Stop() lets every in-flight request complete into the used ring
// before the thread exits, so nothing the guest submitted is lost or left without an answer.
// Start/Stop are called by the owning session thread; the worker's own state is private.
#pragma once

#include <atomic>
#include <cstdint>
#include <future>
#include <memory>
#include <mutex>
#include <thread>

#include "blockdev/vhost/blk_target.h"
#include "blockdev/vhost/guest_memory.h"
#include "blockdev/vhost/notifier.h"
#include "blockdev/vhost/unique_fd.h"
#include "blockdev/vhost/virtqueue.h"
#include "common/status.h"

namespace vdisk::blockdev::vhost {

struct QueueWorkerParams {
  unsigned index = 0;
  BlkTarget* target = nullptr;
  const GuestMemory* memory = nullptr;   // must outlive the worker (until Stop returns)
  VringConfig vring;
  UniqueFd kick;                         // invalid: polled every millisecond
  Notifier* call = nullptr;              // outlives the worker
  ChainLimits limits;
};

class QueueWorker {
 public:
  // Validates the rings and starts the thread; returns once its IoQueue is open (or the error
  // from opening it / from the ring addresses).
  static StatusOr<std::unique_ptr<QueueWorker>> Start(QueueWorkerParams params);
  ~QueueWorker();  // Stop()s if still running

  // Completes in-flight requests, stops the thread, returns the next avail index to process
  // (what GET_VRING_BASE reports). Idempotent.
  uint16_t Stop();
  // Finishes in-flight I/O and reopens the worker's IoQueue, so a grown Device's new size is
  // seen by the queue (IoQueues may capture the size when opened). Blocks until done.
  Status ReopenIoQueue();
  // True once the ring was found corrupt (the worker stopped taking requests from it).
  bool broken() const { return broken_.load(); }
  // The avail index the queue started from (SET_VRING_BASE's, or the inflight log's).
  uint16_t start_avail_idx() const { return start_avail_idx_; }

 private:
  struct Loop;
  explicit QueueWorker(QueueWorkerParams params);
  void Run(std::promise<Status>* started);

  QueueWorkerParams params_;
  UniqueFd stop_fd_;
  UniqueFd reopen_fd_;
  std::mutex reopen_mu_;
  std::promise<Status>* reopen_done_ = nullptr;  // guarded by reopen_mu_
  bool exited_ = false;                          // guarded by reopen_mu_
  std::thread thread_;
  std::atomic<bool> broken_{false};
  uint16_t last_avail_idx_ = 0;
  uint16_t start_avail_idx_ = 0;  // written before Start() returns
  bool stopped_ = false;
};

}  // namespace vdisk::blockdev::vhost
