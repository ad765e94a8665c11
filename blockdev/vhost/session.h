// One vhost-user front-end connection: the message protocol, feature negotiation, guest memory,
// and the virtqueues' workers. Serve() runs on the export's listener thread until the front end
// disconnects (or the stop fd fires) and always stops every worker (completing their in-flight
// requests) and unmaps guest memory before it returns. NotifyConfigChange() and
// ReopenIoQueues() may be called from other threads while Serve() runs.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "blockdev/vhost/blk_target.h"
#include "blockdev/vhost/guest_memory.h"
#include "blockdev/vhost/inflight.h"
#include "blockdev/vhost/message.h"
#include "blockdev/vhost/notifier.h"
#include "blockdev/vhost/queue_worker.h"
#include "blockdev/vhost/unique_fd.h"

namespace vdisk::blockdev::vhost {

struct SessionConfig {
  unsigned num_queues = 1;
  uint32_t max_request_bytes = 64u << 20;
  uint32_t seg_max = 254;  // data segments per request (Linux sizes requests by it)
};

class Session {
 public:
  Session(UniqueFd sock, BlkTarget* target, SessionConfig config);
  ~Session();

  // Serves until disconnect / protocol error (returned) or `stop_fd` readable (OK).
  Status Serve(int stop_fd);

  // Sends VHOST_USER_BACKEND_CONFIG_CHANGE_MSG if the front end gave us a back-end channel;
  // FAILED_PRECONDITION if it did not (the guest then sees the new size on its next start).
  Status NotifyConfigChange();
  // Makes every running queue reopen its IoQueue (see QueueWorker::ReopenIoQueue).
  Status ReopenIoQueues();

  // Virtqueues abandoned because the driver corrupted them (since this session started).
  unsigned broken_queues() const;

  // The virtio-blk config space for `target` as this session presents it.
  static BlkConfig MakeConfig(const BlkTarget& target, unsigned num_queues, uint32_t seg_max);
  // Device feature bits offered for `target`.
  static uint64_t DeviceFeatures(const BlkTarget& target);

 private:
  struct Vring {
    VringConfig config;
    bool addr_set = false;
    bool kick_set = false;     // SET_VRING_KICK received since the ring last stopped
    UniqueFd kick;             // invalid with kick_set: polling mode
    UniqueFd err;
    Notifier call;
    bool disabled = false;     // SET_VRING_ENABLE 0
    std::unique_ptr<QueueWorker> worker;
  };

  // Handles one message; `replied` is set when the handler sent its own reply.
  Status Handle(Message& msg, bool* replied);
  Status HandleMemTable(Message& msg);
  Status HandleGetConfig(const Message& msg);
  Status HandleGetInflight(const Message& msg);
  Status HandleSetInflight(Message& msg);
  // Stops the running queues, calls `swap` (which replaces what they point into), restarts them.
  Status RestartRunning(const std::function<void()>& swap);
  Status MaybeStart(unsigned index);
  void StopRing(unsigned index);
  void StopAll();
  StatusOr<unsigned> RingIndex(uint64_t value) const;

  UniqueFd sock_;
  BlkTarget* target_;
  SessionConfig config_;
  uint64_t acked_features_ = 0;
  std::atomic<uint64_t> acked_protocol_features_{0};
  bool protocol_features_acked_ = false;  // VHOST_USER_F_PROTOCOL_FEATURES in SET_FEATURES
  std::unique_ptr<GuestMemory> memory_;
  std::unique_ptr<InflightArea> inflight_;  // SET_INFLIGHT_FD; outlives the workers using it
  std::vector<std::unique_ptr<Vring>> vrings_;
  unsigned broken_queues_ = 0;     // guarded by workers_mu_

  mutable std::mutex workers_mu_;  // guards vrings_[i]->worker against the cross-thread calls
  std::mutex backend_mu_;
  UniqueFd backend_fd_;            // guarded by backend_mu_
};

}  // namespace vdisk::blockdev::vhost
