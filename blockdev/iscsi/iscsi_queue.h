// Internal to the iSCSI backend: the IoQueue over one libiscsi session, with many SCSI commands
// in flight.
//
// Each queue logs in with its own session (a libiscsi context is single-threaded, and a queue
// belongs to one thread). Operations are parked when queued and turned into SCSI tasks by
// submit(): READ(16) / WRITE(16) with the caller's iovecs (no copy), SYNCHRONIZE CACHE(16),
// and for discard and write_zeroes WRITE SAME(16) with the UNMAP bit and one zero block where the
// LUN supports it (the range reads as zeroes and is deallocated), else UNMAP when unmapped blocks
// read as zeroes, else plain zero writes. Requests beyond the target's block limits are split
// into pieces, issued one after another.
//
// libiscsi only records completions (its callbacks run inside iscsi_service(), on this thread);
// the callers' callbacks run in poll(). completion_fd() is an epoll instance that becomes
// readable when the socket has data, when queued PDUs can be written, when a retry or reconnect
// is due, or when an error completion is waiting — so an epoll-driven owner (the vhost-user
// export) needs nothing else.
//
// Errors: UNIT ATTENTION, BUSY and a LUN the target manager is re-creating are retried (up to
// ~5 s); a lost session is logged in again and the commands in flight are re-issued, for up to
// SessionOptions::reconnect_timeout_s, after which they fail with UNAVAILABLE (the next call
// tries again). Other SCSI errors map as ScsiStatus() says.
#pragma once

#include <sys/uio.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "blockdev/device.h"
#include "blockdev/parking_queue.h"
#include "blockdev/queue_support.h"
#include "blockdev/iscsi/session.h"

namespace vdisk::blockdev::iscsi {

// What every queue of one device shares (immutable once the device is open).
struct QueueTarget {
  LunAddress address;
  SessionOptions options;
  LunInfo info;
  bool read_only = false;
  std::shared_ptr<void> keepalive;  // e.g. a temporary export that must outlive every queue
};

class IscsiQueue final : public ParkingIoQueue<IscsiQueue> {
 public:
  static StatusOr<std::unique_ptr<IscsiQueue>> Create(std::shared_ptr<const QueueTarget> target, unsigned depth);
  ~IscsiQueue() override;

  // readv / writev / flush / discard / write_zeroes: ParkingIoQueue.

  Status submit() override;
  StatusOr<unsigned> poll(unsigned min_complete, int timeout_ms) override;
  unsigned in_flight() const override { return busy_ + static_cast<unsigned>(deferred_.size()); }
  unsigned depth() const override { return depth_; }
  int completion_fd() const override { return epoll_fd_; }

 private:
  friend class ParkingIoQueue<IscsiQueue>;
  using Clock = std::chrono::steady_clock;
  enum class Op : uint8_t { kRead, kWrite, kFlush, kDiscard, kZeroes };
  // How a discard / write_zeroes is carried out.
  enum class ZeroMethod : uint8_t { kWriteSame, kUnmap, kWrite };
  struct Slot {
    IscsiQueue* queue = nullptr;
    uint32_t index = 0;
    uint32_t next_free = 0;
    Op op = Op::kRead;
    ZeroMethod method = ZeroMethod::kWrite;
    const struct iovec* iov = nullptr;
    int iovcnt = 0;
    uint64_t offset = 0;
    uint64_t length = 0;
    uint64_t done_bytes = 0;   // pieces finished
    uint64_t piece = 0;        // bytes of the piece in flight
    scsi_task* task = nullptr; // in flight on the current session
    int retries = 0;
    bool waiting = false;      // listed in waiting_
    Clock::time_point retry_at{};
    // Result recorded by the libiscsi callback, handled after iscsi_service() returns.
    int status = 0;
    bool transient = false;
    bool unit_attention = false;
    bool unsupported = false;  // ILLEGAL REQUEST: invalid opcode / field (WRITE SAME, UNMAP)
    Status error;
    std::vector<struct iovec> piece_iov;
    std::vector<unmap_list> unmap;
    IoCallback done;
  };
  IscsiQueue(std::shared_ptr<const QueueTarget> target, unsigned depth);
  Status Init();
  Slot* Start(Op op, uint64_t offset, uint64_t length, IoCallback& done);
  void Issue(Slot& s);            // issues the next piece of s (or finishes it)
  bool IssuePiece(Slot& s);       // false: could not even queue the task (s.error set)
  static void OnTask(iscsi_context* ctx, int status, void* command_data, void* private_data);
  void Handle(Slot& s);           // after a recorded callback
  void Finish(Slot& s, Status status);
  void Release(Slot& s);
  void Service(uint32_t events);
  void Pump(int timeout_ms);
  void Progress();                // handles recorded results, due retries, a lost session
  void FlushOut();                // writes queued PDUs now if the socket takes them
  void Wait(Slot& s, Clock::time_point at);
  void FailWaiting(const Status& why);
  void UpdateInterest();
  void ArmTimer();
  void SessionLost(const std::string& why);
  void TryReconnect();
  void Wake();
  unsigned RunDone();
  uint64_t PieceLimit(const Slot& s) const;
  std::string Where(const Slot& s) const;

  std::shared_ptr<const QueueTarget> target_;
  const unsigned depth_;
  const uint32_t bs_;
  std::unique_ptr<Session> session_;
  int epoll_fd_ = -1, event_fd_ = -1, timer_fd_ = -1;
  int watched_fd_ = -1;  // the socket currently registered in epoll_fd_
  uint32_t watched_events_ = 0;
  bool write_same_ok_ = true;

  std::vector<Slot> slots_;
  uint32_t free_head_ = 0;
  unsigned busy_ = 0;
  std::vector<uint32_t> parked_;     // queued, not yet issued
  std::vector<uint32_t> recorded_;   // callbacks recorded during iscsi_service()
  std::vector<uint32_t> waiting_;    // to re-issue: a retry delay, or the session is down
  DeferredCompletions deferred_;  // finished, callback not run yet

  bool session_lost_ = false;        // set by callbacks; handled after iscsi_service()
  bool tearing_down_ = false;        // destroying a lost session: its callbacks are ignored
  std::string lost_reason_;
  Clock::time_point down_since_{};   // valid while !session_
  Clock::time_point next_login_{};
  Clock::time_point timer_at_{};     // when the armed timer fires (past: not armed)
  std::string last_login_error_;
};

}  // namespace vdisk::blockdev::iscsi
