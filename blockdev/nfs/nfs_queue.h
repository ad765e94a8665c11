// Internal to the NFS engine: the IoQueue over raw NFSv3 RPCs on its own libnfs connection.
//
// Each queue mounts the export on its own TCP connection (libnfs contexts are single-threaded,
// and one connection per thread keeps threads from sharing a socket) and talks NFSv3 to the
// image's file handle directly: READ, WRITE (UNSTABLE), COMMIT. Everything runs on the owner
// thread: submit() queues the RPCs in libnfs and writes what the socket takes; poll() waits on
// the socket and lets libnfs parse replies; callbacks run after libnfs returns. Many RPCs are in
// flight at once (pipelined on the connection), bounded by kMaxRpcs and kMaxBytesInFlight, so a
// 1 GiB discard does not queue 1 GiB of requests.
//
// Operations larger than the server's rsize / wsize are split. Writes are UNSTABLE; their data
// stays in an UnstableLog (unstable_log.h) until a COMMIT with the same write verifier covers
// it, and is sent again when the verifier changed (a server restart): flush() completes when
// every write completed before it is durable. The log is committed by itself past
// `unstable_limit` bytes; new writes wait while it holds four times that.
// discard() and write_zeroes() WRITE zeroes: NFSv3 has no way to deallocate or zero a range
// (ALLOCATE / DEALLOCATE are NFSv4.2), so a discard does not give space back.
//
// A dropped connection (a server restart: its FIN, a reset, a send failure) makes the queue
// mount again on a new connection and re-send everything that was in flight (NFSv3 READ, WRITE
// and COMMIT are idempotent; libnfs 4.0's own reconnection is switched off, see Connect()).
// While the server is away operations wait, like a hard NFS mount, with attempts backing off
// to kMaxReconnectDelayMs; only closing the queue gives up (after kCloseGiveUpS).
// completion_fd() is an epoll fd over the current socket, an eventfd for completions that need
// no server round trip, and a timer ticking while work is out.
#pragma once

#include <sys/uio.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "blockdev/device.h"
#include "blockdev/parking_queue.h"
#include "blockdev/nfs/nfs_target.h"
#include "blockdev/nfs/unstable_log.h"

struct nfs_context;
struct rpc_context;

namespace vdisk::blockdev::nfs {

struct QueueTarget {
  NfsTarget target;
  std::string handle;  // NFSv3 file handle of the image
  std::string name;    // for messages, e.g. "nfs://127.0.0.1/vdisk/volumes/x/disk.img"
  uint64_t size = 0;
  uint32_t block_size = 512;
  bool read_only = false;
  uint64_t unstable_limit = 64ull << 20;
  int timeout_ms = 0;  // mount timeout; 0: libnfs' default
};

class NfsQueue final : public ParkingIoQueue<NfsQueue> {
 public:
  static constexpr unsigned kMaxRpcs = 64;
  static constexpr int kTickMs = 100;                // longest wait without servicing libnfs
  static constexpr int kMaxReconnectDelayMs = 2000;  // reconnection attempts back off to this
  static constexpr int kCloseGiveUpS = 30;           // ~NfsQueue: a silent server, then fail
  static constexpr uint64_t kMaxBytesInFlight = 64ull << 20;

  static StatusOr<std::unique_ptr<NfsQueue>> Create(const QueueTarget& target, unsigned depth);
  ~NfsQueue() override;

  // readv / writev / flush / discard / write_zeroes: ParkingIoQueue.

  Status submit() override;
  StatusOr<unsigned> poll(unsigned min_complete, int timeout_ms) override;
  unsigned in_flight() const override {
    return busy_ + static_cast<unsigned>(deferred_.size());
  }
  unsigned depth() const override { return depth_; }
  int completion_fd() const override { return epoll_fd_; }

  // For tests: bytes of unstable writes not yet proven durable, and writes sent again.
  uint64_t unstable_bytes() const { return log_.bytes(); }
  uint64_t resent_writes() const { return resent_; }

 private:
  friend class ParkingIoQueue<NfsQueue>;
  enum class Op : uint8_t { kRead, kWrite, kFlush, kDiscard, kZeroes };
  struct Slot {
    uint32_t index = 0;
    uint32_t next_free = 0;
    Op op = Op::kRead;
    const struct iovec* iov = nullptr;
    int iovcnt = 0;
    uint64_t offset = 0;
    uint64_t length = 0;
    uint64_t issued = 0;     // bytes handed to RPCs so far
    unsigned pending = 0;    // RPCs in flight
    uint64_t flush_upto = 0; // flush: log entries it waits for
    Status status;           // first error
    IoCallback done;
  };
  struct Rpc;

  NfsQueue(const QueueTarget& target, unsigned depth);
  Status Init();
  Slot* Start(Op op, uint64_t offset, uint64_t length, IoCallback& done);
  void Issue();                    // hands out RPCs for started slots, within the limits
  bool IssuePart(Slot& s);         // one READ / WRITE of slot s; false if limits say wait
  Status Connect();                // mounts a new connection (ctx_)
  void Reconnect(const std::string& why);  // drops ctx_; everything in flight waits for the next
  void TryReconnect();             // Connect() and re-send, or back off
  void Abandon(const Status& status);  // fails everything still out
  void Track(Rpc* r);              // counts a new RPC in flight
  void Dispatch(Rpc* r);           // sends it on the current connection, or parks it
  bool Stale(Rpc* r, int status, void* data);  // callback of a replaced connection / failure
  void SendRead(Rpc* r);
  void SendWrite(Rpc* r);
  void SendCommit();
  void Pump();                     // commits, resends, flush waiters
  void PartDone(Slot& s, Status status);
  void Retire(Rpc* r);             // no longer in flight (counters, live set)
  void Fail(Rpc* r, Status status);
  static void OnRead(struct rpc_context* rpc, int status, void* data, void* priv);
  static void OnWrite(struct rpc_context* rpc, int status, void* data, void* priv);
  static void OnCommit(struct rpc_context* rpc, int status, void* data, void* priv);
  Status Service(int timeout_ms);  // waits for the socket, lets libnfs work
  void WatchSocket();              // keeps the epoll registration in step with libnfs
  unsigned RunFinished();
  unsigned RunDeferred();
  void Defer(IoCallback done, Status status);
  std::string Where(Op op, uint64_t offset, uint64_t length) const;

  QueueTarget t_;
  unsigned depth_;
  nfs_context* ctx_ = nullptr;
  struct rpc_context* rpc_ = nullptr;
  uint32_t rsize_ = 0, wsize_ = 0;
  int epoll_fd_ = -1, wake_fd_ = -1, timer_fd_ = -1;
  int watched_fd_ = -1;
  uint64_t watched_ino_ = 0;
  uint32_t watched_events_ = 0;
  bool timer_armed_ = false;
  uint64_t gen_ = 0;                 // connection generation
  uint64_t seq_ = 0;
  std::vector<Rpc*> waiting_;        // in flight, to be sent on the next connection
  std::chrono::steady_clock::time_point next_connect_{};
  // When a lost connection was last re-established: a restarted server may answer STALE for a
  // moment while it loads its exports, which is retried (Stale()) for kStaleAfterRestartS.
  std::optional<std::chrono::steady_clock::time_point> reconnected_at_;
  bool waiting_out_stale_ = false;  // the current reconnection is one of those retries
  bool stale_answered_ = false;     // a reply said STALE within the window: reconnect in poll()
  int reconnect_delay_ms_ = 0;

  std::vector<Slot> slots_;
  uint32_t free_head_ = 0;
  unsigned busy_ = 0;
  std::vector<uint32_t> parked_;     // queued, not yet submitted
  std::deque<uint32_t> issuing_;     // submitted, RPCs still to hand out
  std::deque<uint32_t> flushes_;     // flushes waiting for the log
  std::vector<uint32_t> finished_;   // callbacks to run
  std::vector<std::pair<IoCallback, Status>> deferred_;
  unsigned rpcs_ = 0;                // RPCs in flight (all kinds)
  uint64_t rpc_bytes_ = 0;           // data bytes of READ / WRITE RPCs in flight
  bool commit_in_flight_ = false;
  uint64_t commit_round_ = 0;
  Status lost_;                      // a resend failed: reported by the next flush
  UnstableLog log_;
  uint64_t resent_ = 0;
  std::unordered_set<Rpc*> live_;    // RPCs in flight, freed by their callbacks
  bool closing_ = false;             // destructor: no new internal RPCs
};

}  // namespace vdisk::blockdev::nfs
