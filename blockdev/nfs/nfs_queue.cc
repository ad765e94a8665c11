#include "blockdev/nfs/nfs_queue.h"

// libnfs.h first: the raw headers use its EXTERN.
#include <nfsc/libnfs.h>

#include <nfsc/libnfs-raw.h>
#include <nfsc/libnfs-raw-nfs.h>

#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstring>
#include <thread>
#include <unordered_set>

#include "absl/strings/str_cat.h"
#include "blockdev/nfs/nfs_session.h"
#include "spdlog/spdlog.h"

namespace vdisk::blockdev::nfs {

namespace {

constexpr uint32_t kNoSlot = UINT32_MAX;
constexpr uint32_t kMaxTransfer = 1u << 20;  // cap on rsize / wsize (and the zero buffer)
constexpr int kMaxShortRetries = 3;
constexpr int kStaleAfterRestartS = 10;  // see Stale()

const char* OpName(int op) {
  static const char* names[] = {"read", "write", "flush", "discard", "write_zeroes"};
  return names[op];
}

const char* Zeroes() {
  static const char* zeroes = new char[kMaxTransfer]();
  return zeroes;
}

WriteVerifier ToVerifier(const char* v) {
  WriteVerifier out = 0;
  std::memcpy(&out, v, sizeof out);
  return out;
}

// Copies `len` bytes between a flat buffer and the iovec array, starting `skip` bytes into it.
void Gather(const struct iovec* iov, int iovcnt, uint64_t skip, char* out, uint64_t len) {
  for (int i = 0; i < iovcnt && len > 0; ++i) {
    if (skip >= iov[i].iov_len) {
      skip -= iov[i].iov_len;
      continue;
    }
    const uint64_t n = std::min<uint64_t>(iov[i].iov_len - skip, len);
    std::memcpy(out, static_cast<const char*>(iov[i].iov_base) + skip, n);
    out += n;
    len -= n;
    skip = 0;
  }
}

void Scatter(const struct iovec* iov, int iovcnt, uint64_t skip, const char* in, uint64_t len,
             bool zero) {
  for (int i = 0; i < iovcnt && len > 0; ++i) {
    if (skip >= iov[i].iov_len) {
      skip -= iov[i].iov_len;
      continue;
    }
    const uint64_t n = std::min<uint64_t>(iov[i].iov_len - skip, len);
    char* dst = static_cast<char*>(iov[i].iov_base) + skip;
    if (zero) {
      std::memset(dst, 0, n);
    } else {
      std::memcpy(dst, in, n);
      in += n;
    }
    len -= n;
    skip = 0;
  }
}

}  // namespace

// One RPC in flight. Owned by the queue's live set until its callback (or the context's
// destruction) ends it.
struct NfsQueue::Rpc {
  enum class Kind : uint8_t { kRead, kWrite, kResend, kCommit };
  NfsQueue* q = nullptr;
  Kind kind = Kind::kRead;
  uint32_t slot = kNoSlot;
  uint64_t offset = 0;      // in the image
  uint32_t length = 0;
  uint64_t skip = 0;        // reads/writes of a slot: position within the slot's buffers
  std::unique_ptr<char[]> data;  // write payload (null: zeroes, or a resend from the log)
  const char* payload = nullptr;
  bool zero = false;
  uint64_t entry = 0;       // resend: log entry id
  uint64_t round = 0;       // commit: log round
  int tries = 0;
  uint64_t seq = 0;         // order of first sending (kept across reconnections)
  uint64_t gen = 0;         // the connection it was sent on (callbacks of older ones are stale)
};

StatusOr<std::unique_ptr<NfsQueue>> NfsQueue::Create(const QueueTarget& target, unsigned depth) {
  if (depth == 0 || depth > 65536)
    return absl::InvalidArgumentError(
        absl::StrCat(target.name, ": queue depth ", depth, " out of range [1, 65536]"));
  std::unique_ptr<NfsQueue> q(new NfsQueue(target, depth));
  RETURN_IF_ERROR(q->Init());
  return q;
}

NfsQueue::NfsQueue(const QueueTarget& target, unsigned depth)
    : t_(target), depth_(depth), slots_(depth) {
  for (uint32_t i = 0; i < depth_; ++i) {
    slots_[i].index = i;
    slots_[i].next_free = i + 1 < depth_ ? i + 1 : kNoSlot;
  }
  parked_.reserve(depth_);
  finished_.reserve(depth_);
}

Status NfsQueue::Init() {
  epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0) return LastErrnoStatus(t_.name + ": epoll_create1");
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) return LastErrnoStatus(t_.name + ": eventfd");
  struct epoll_event ev {};
  ev.events = EPOLLIN;
  ev.data.fd = wake_fd_;
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev) != 0)
    return LastErrnoStatus(t_.name + ": epoll_ctl");
  timer_fd_ = ::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (timer_fd_ < 0) return LastErrnoStatus(t_.name + ": timerfd_create");
  ev.data.fd = timer_fd_;
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, timer_fd_, &ev) != 0)
    return LastErrnoStatus(t_.name + ": epoll_ctl");
  RETURN_IF_ERROR(Connect());
  return Status();
}

Status NfsQueue::Connect() {
  ASSIGN_OR_RETURN(nfs_context * ctx, MountContext(t_.target, t_.timeout_ms));
  // libnfs 4.0 reconnects by itself but keeps its half-read reply state across the new
  // connection (fixed upstream later: sahlberg/libnfs#424, #497), which can loop forever after
  // a server restart; this queue reconnects on its own instead (Reconnect()).
  nfs_set_autoreconnect(ctx, 0);
  uint32_t rsize = static_cast<uint32_t>(std::min<uint64_t>(nfs_get_readmax(ctx), kMaxTransfer));
  uint32_t wsize = static_cast<uint32_t>(std::min<uint64_t>(nfs_get_writemax(ctx), kMaxTransfer));
  // Whole blocks per RPC, so a split never cuts a block.
  rsize -= rsize % t_.block_size;
  wsize -= wsize % t_.block_size;
  if (rsize == 0 || wsize == 0) {
    Status s = absl::FailedPreconditionError(absl::StrCat(
        t_.name, ": the server's transfer sizes (", nfs_get_readmax(ctx), "/",
        nfs_get_writemax(ctx), ") are below the block size ", t_.block_size));
    nfs_destroy_context(ctx);
    return s;
  }
  // A reconnection keeps the sizes the split RPCs were made with (a server restarted with
  // smaller ones would be refused its requests, as a kernel client's would be).
  if (rsize_ == 0) rsize_ = rsize;
  if (wsize_ == 0) wsize_ = wsize;
  ctx_ = ctx;
  rpc_ = nfs_get_rpc_context(ctx_);
  ++gen_;
  WatchSocket();
  return Status();
}

void NfsQueue::Reconnect(const std::string& why) {
  if (ctx_) {
    spdlog::warn("{}: NFS connection lost ({}); reconnecting, {} requests to re-send", t_.name,
                 why, live_.size());
    ++gen_;  // callbacks of the old connection, including the cancels below, are ignored
    nfs_destroy_context(ctx_);
    ctx_ = nullptr;
    rpc_ = nullptr;
    if (watched_fd_ >= 0) ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, watched_fd_, nullptr);
    watched_fd_ = -1;
    reconnect_delay_ms_ = 0;
    next_connect_ = std::chrono::steady_clock::now();
  }
  waiting_.assign(live_.begin(), live_.end());
}

void NfsQueue::TryReconnect() {
  Status s = Connect();
  if (!s.ok()) {
    reconnect_delay_ms_ = std::clamp(reconnect_delay_ms_ * 2, kTickMs, kMaxReconnectDelayMs);
    next_connect_ = std::chrono::steady_clock::now() +
                    std::chrono::milliseconds(reconnect_delay_ms_);
    if (reconnect_delay_ms_ >= kMaxReconnectDelayMs)
      spdlog::warn("{}: still no NFS connection ({}); retrying every {} ms", t_.name,
                   std::string(s.message()), kMaxReconnectDelayMs);
    return;
  }
  std::vector<Rpc*> again;
  again.swap(waiting_);
  std::sort(again.begin(), again.end(), [](Rpc* a, Rpc* b) { return a->seq < b->seq; });
  spdlog::info("{}: NFS connection re-established; re-sending {} requests", t_.name,
               again.size());
  // The grace window counts from the reconnection after a lost connection, not from the ones
  // made to wait out STALE answers (a file that really went away fails once it has passed).
  if (!waiting_out_stale_) reconnected_at_ = std::chrono::steady_clock::now();
  waiting_out_stale_ = false;
  for (Rpc* r : again) Dispatch(r);
}

NfsQueue::~NfsQueue() {
  // Parked operations are issued too, so every callback runs exactly once. A server that stays
  // away makes the wait end after kCloseGiveUpS: what is still out then fails (UNAVAILABLE).
  (void)submit();
  auto last_progress = std::chrono::steady_clock::now();
  while (in_flight() > 0) {
    auto n = poll(1, kTickMs);
    if (!n.ok()) break;
    if (*n > 0) last_progress = std::chrono::steady_clock::now();
    if (std::chrono::steady_clock::now() - last_progress > std::chrono::seconds(kCloseGiveUpS)) {
      Abandon(absl::UnavailableError(absl::StrCat(
          t_.name, ": the NFS server did not answer for ", kCloseGiveUpS,
          " s while the queue was being closed")));
      (void)poll(0, 0);
      break;
    }
  }
  // Internal COMMITs / resends still out: give them a moment, then let the context go (an
  // un-flushed queue promises nothing about durability).
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (rpcs_ > 0 && ctx_ && std::chrono::steady_clock::now() < deadline)
    if (!Service(kTickMs).ok()) break;
  closing_ = true;
  ++gen_;
  if (ctx_) nfs_destroy_context(ctx_);  // its callbacks are stale now
  for (Rpc* r : live_) delete r;
  if (wake_fd_ >= 0) ::close(wake_fd_);
  if (timer_fd_ >= 0) ::close(timer_fd_);
  if (epoll_fd_ >= 0) ::close(epoll_fd_);
}

void NfsQueue::Abandon(const Status& status) {
  std::vector<Rpc*> left(live_.begin(), live_.end());
  waiting_.clear();
  for (Rpc* r : left) Fail(r, status);
  for (uint32_t index : issuing_) {
    slots_[index].status = status;
    slots_[index].issued = slots_[index].length;
    if (slots_[index].pending == 0) finished_.push_back(index);
  }
  issuing_.clear();
  for (uint32_t index : flushes_) {
    slots_[index].status = status;
    finished_.push_back(index);
  }
  flushes_.clear();
}

std::string NfsQueue::Where(Op op, uint64_t offset, uint64_t length) const {
  if (op == Op::kFlush) return absl::StrCat(t_.name, ": flush");
  return absl::StrCat(t_.name, ": ", OpName(static_cast<int>(op)), " [", offset, ", +", length,
                      ")");
}

void NfsQueue::Defer(IoCallback done, Status status) {
  deferred_.emplace_back(std::move(done), std::move(status));
  uint64_t one = 1;
  ssize_t w = ::write(wake_fd_, &one, sizeof one);
  (void)w;
}

NfsQueue::Slot* NfsQueue::Start(Op op, uint64_t offset, uint64_t length, IoCallback& done) {
  if (op != Op::kRead && op != Op::kFlush && t_.read_only) {
    Defer(std::move(done),
          absl::PermissionDeniedError(Where(op, offset, length) + ": device is read-only"));
    return nullptr;
  }
  if (op != Op::kFlush) {
    if (offset % t_.block_size != 0 || length % t_.block_size != 0) {
      Defer(std::move(done), absl::InvalidArgumentError(absl::StrCat(
                                 Where(op, offset, length), ": not aligned to the block size ",
                                 t_.block_size)));
      return nullptr;
    }
    if (offset > t_.size || length > t_.size - offset) {
      Defer(std::move(done), absl::OutOfRangeError(absl::StrCat(
                                 Where(op, offset, length), ": beyond the end of the image (",
                                 t_.size, " bytes)")));
      return nullptr;
    }
  }
  if (free_head_ == kNoSlot) {
    Defer(std::move(done), absl::ResourceExhaustedError(absl::StrCat(
                               Where(op, offset, length), ": queue full (depth ", depth_, ")")));
    return nullptr;
  }
  Slot& s = slots_[free_head_];
  free_head_ = s.next_free;
  ++busy_;
  s.op = op;
  s.offset = offset;
  s.length = length;
  s.iov = nullptr;
  s.iovcnt = 0;
  s.issued = 0;
  s.pending = 0;
  s.flush_upto = 0;
  s.status = Status();
  s.done = std::move(done);
  return &s;
}

Status NfsQueue::submit() {
  for (uint32_t index : parked_) {
    Slot& s = slots_[index];
    if (s.op == Op::kFlush) {
      s.flush_upto = log_.last_id();
      flushes_.push_back(index);
    } else if (s.length == 0) {
      finished_.push_back(index);
    } else {
      issuing_.push_back(index);
    }
  }
  parked_.clear();
  Issue();
  Pump();
  // Hand the new requests to the socket now rather than at the next poll().
  return Service(0);
}

void NfsQueue::Issue() {
  while (!issuing_.empty()) {
    Slot& s = slots_[issuing_.front()];
    while (s.issued < s.length && s.status.ok()) {
      if (!IssuePart(s)) return;
    }
    issuing_.pop_front();
    if (!s.status.ok() && s.issued < s.length) {  // failed part-way: issue no more
      s.issued = s.length;
      if (s.pending == 0) finished_.push_back(s.index);
    }
  }
}

bool NfsQueue::IssuePart(Slot& s) {
  const bool read = s.op == Op::kRead;
  const uint32_t unit = read ? rsize_ : wsize_;
  const uint32_t len = static_cast<uint32_t>(std::min<uint64_t>(unit, s.length - s.issued));
  if (rpcs_ >= kMaxRpcs || (rpcs_ > 0 && rpc_bytes_ + len > kMaxBytesInFlight)) return false;
  // Writes wait while the log holds too much unproven data (a COMMIT is on its way).
  if (!read && log_.bytes() >= 4 * t_.unstable_limit && t_.unstable_limit > 0) return false;
  auto* r = new Rpc;
  r->q = this;
  r->slot = s.index;
  r->offset = s.offset + s.issued;
  r->length = len;
  r->skip = s.issued;
  s.issued += len;
  ++s.pending;
  if (read) {
    r->kind = Rpc::Kind::kRead;
    SendRead(r);
    return true;
  }
  r->kind = Rpc::Kind::kWrite;
  if (s.op == Op::kWrite) {
    r->data.reset(new char[len]);
    Gather(s.iov, s.iovcnt, r->skip, r->data.get(), len);
    r->payload = r->data.get();
  } else {
    r->zero = true;
    r->payload = Zeroes();
  }
  SendWrite(r);
  return true;
}

void NfsQueue::Track(Rpc* r) {
  r->seq = ++seq_;
  live_.insert(r);
  ++rpcs_;
  if (r->kind != Rpc::Kind::kCommit) rpc_bytes_ += r->length;
}

void NfsQueue::Dispatch(Rpc* r) {
  if (!ctx_) {  // reconnecting: sent once the connection is back
    waiting_.push_back(r);
    return;
  }
  r->gen = gen_;
  nfs_fh3 fh;
  fh.data.data_len = static_cast<u_int>(t_.handle.size());
  fh.data.data_val = const_cast<char*>(t_.handle.data());
  int rc = 0;
  switch (r->kind) {
    case Rpc::Kind::kRead: {
      READ3args a{};
      a.file = fh;
      a.offset = r->offset;
      a.count = r->length;
      rc = rpc_nfs3_read_async(rpc_, &NfsQueue::OnRead, &a, r);
      break;
    }
    case Rpc::Kind::kWrite:
    case Rpc::Kind::kResend: {
      WRITE3args a{};
      a.file = fh;
      a.offset = r->offset;
      a.count = r->length;
      // UNSTABLE unless the log is switched off (then every write is durable on its own).
      a.stable = t_.unstable_limit > 0 ? UNSTABLE : FILE_SYNC;
      a.data.data_len = r->length;
      a.data.data_val = const_cast<char*>(r->payload);
      // libnfs encodes the payload into its request buffer here.
      rc = rpc_nfs3_write_async(rpc_, &NfsQueue::OnWrite, &a, r);
      break;
    }
    case Rpc::Kind::kCommit: {
      COMMIT3args a{};
      a.file = fh;
      a.offset = 0;
      a.count = 0;  // the whole file
      rc = rpc_nfs3_commit_async(rpc_, &NfsQueue::OnCommit, &a, r);
      break;
    }
  }
  if (rc != 0) {
    // libnfs could not queue it (out of memory, or the context broke): start over on a new
    // connection, this request with the others.
    Reconnect(absl::StrCat("queueing a request failed: ", rpc_get_error(rpc_)));
  }
}

void NfsQueue::SendRead(Rpc* r) {
  Track(r);
  Dispatch(r);
}

void NfsQueue::SendWrite(Rpc* r) {
  Track(r);
  Dispatch(r);
}

void NfsQueue::SendCommit() {
  const uint64_t round = log_.StartCommit();
  if (round == 0) return;
  auto* r = new Rpc;
  r->q = this;
  r->kind = Rpc::Kind::kCommit;
  r->round = round;
  commit_in_flight_ = true;
  Track(r);
  Dispatch(r);
}

void NfsQueue::Pump() {
  if (closing_) return;
  // Writes the server may have lost (its verifier changed): send them again.
  for (UnstableLog::Entry* e : log_.TakeResends()) {
    auto* r = new Rpc;
    r->q = this;
    r->kind = Rpc::Kind::kResend;
    r->entry = e->id;
    r->offset = e->offset;
    r->length = e->length;
    r->zero = !e->data;
    r->payload = e->data ? e->data.get() : Zeroes();
    ++resent_;
    SendWrite(r);
  }
  if (!commit_in_flight_ && log_.has_uncovered() &&
      (!flushes_.empty() || log_.bytes() > t_.unstable_limit))
    SendCommit();
  // Flushes whose writes are all durable complete; a lost resend fails the waiting ones.
  while (!flushes_.empty()) {
    Slot& s = slots_[flushes_.front()];
    if (!lost_.ok()) {
      s.status = lost_;
    } else if (!log_.Durable(s.flush_upto)) {
      break;
    }
    flushes_.pop_front();
    finished_.push_back(s.index);
  }
  if (flushes_.empty()) lost_ = Status();
}

bool NfsQueue::Stale(Rpc* r, int status, void* data) {
  if (r->gen != gen_) return true;  // sent on a connection since replaced; re-sent already
  if (status == RPC_STATUS_SUCCESS) {
    // READ3res, WRITE3res and COMMIT3res all begin with their nfsstat3. A server that has just
    // come back may answer STALE until its exports are loaded again (seen with nfs-ganesha):
    // within kStaleAfterRestartS of a reconnection that is waited out like a lost connection.
    const bool just_back = reconnected_at_ && std::chrono::steady_clock::now() - *reconnected_at_ <
                                                  std::chrono::seconds(kStaleAfterRestartS);
    if (!data || !just_back || *static_cast<const nfsstat3*>(data) != NFS3ERR_STALE) return false;
    // Not from inside libnfs' callback (it still uses the context afterwards): poll() reconnects
    // once nfs_service() returns, and this request, still in live_, is re-sent then.
    stale_answered_ = true;
    return true;
  }
  // The connection failed under this request (libnfs' own error, cancel or timeout): not an
  // answer from the server. Reconnect and send everything again.
  Reconnect(status == RPC_STATUS_ERROR && data ? static_cast<const char*>(data)
                                               : "request cancelled or timed out");
  return true;
}

void NfsQueue::Retire(Rpc* r) {
  live_.erase(r);
  --rpcs_;
  if (r->kind != Rpc::Kind::kCommit) rpc_bytes_ -= r->length;
}

void NfsQueue::Fail(Rpc* r, Status status) {
  Retire(r);
  switch (r->kind) {
    case Rpc::Kind::kRead:
    case Rpc::Kind::kWrite:
      PartDone(slots_[r->slot], std::move(status));
      break;
    case Rpc::Kind::kResend:
      log_.Drop(r->entry);
      if (lost_.ok())
        lost_ = absl::DataLossError(absl::StrCat(
            t_.name, ": re-sending an unstable write [", r->offset, ", +", r->length,
            ") after a server restart failed; the data may be lost: ", status.message()));
      break;
    case Rpc::Kind::kCommit:
      commit_in_flight_ = false;
      log_.CommitFailed(r->round);
      for (uint32_t index : flushes_) {
        slots_[index].status = status;
        finished_.push_back(index);
      }
      flushes_.clear();
      break;
  }
  delete r;
  Pump();
}

void NfsQueue::PartDone(Slot& s, Status status) {
  if (!status.ok() && s.status.ok()) s.status = std::move(status);
  --s.pending;
  if (s.pending > 0) return;
  if (s.issued == s.length) {
    finished_.push_back(s.index);
  } else if (!s.status.ok()) {
    // Failed part-way: issue no more of it.
    auto it = std::find(issuing_.begin(), issuing_.end(), s.index);
    if (it != issuing_.end()) issuing_.erase(it);
    s.issued = s.length;
    finished_.push_back(s.index);
  }
}

void NfsQueue::OnRead(struct rpc_context*, int status, void* data, void* priv) {
  auto* r = static_cast<Rpc*>(priv);
  NfsQueue* q = r->q;
  if (q->Stale(r, status, data)) return;
  Slot& s = q->slots_[r->slot];
  const std::string what = absl::StrCat(q->t_.name, ": READ [", r->offset, ", +", r->length, ")");
  auto* res = static_cast<READ3res*>(data);
  if (res->status != NFS3_OK)
    return q->Fail(r, ErrnoStatus(nfsstat3_to_errno(res->status),
                                  absl::StrCat(what, ": ", nfsstat3_to_str(res->status))));
  const READ3resok& ok = res->READ3res_u.resok;
  const uint32_t got = std::min<uint32_t>(ok.data.data_len, r->length);
  Scatter(s.iov, s.iovcnt, r->skip, ok.data.data_val, got, false);
  if (got < r->length) {
    if (ok.eof) {
      // Past the end of a file shorter than the device (truncated by someone else): zeroes.
      Scatter(s.iov, s.iovcnt, r->skip + got, nullptr, r->length - got, true);
    } else if (++r->tries <= kMaxShortRetries || got > 0) {
      // A short read: ask again for the rest.
      q->rpc_bytes_ -= got;
      r->offset += got;
      r->skip += got;
      r->length -= got;
      q->Dispatch(r);
      return;
    } else {
      return q->Fail(r, absl::DataLossError(absl::StrCat(what, ": the server returned no data")));
    }
  }
  q->Retire(r);
  q->PartDone(s, Status());
  delete r;
}

void NfsQueue::OnWrite(struct rpc_context*, int status, void* data, void* priv) {
  auto* r = static_cast<Rpc*>(priv);
  NfsQueue* q = r->q;
  if (q->Stale(r, status, data)) return;
  const std::string what =
      absl::StrCat(q->t_.name, ": WRITE [", r->offset, ", +", r->length, ")");
  auto* res = static_cast<WRITE3res*>(data);
  if (res->status != NFS3_OK)
    return q->Fail(r, ErrnoStatus(nfsstat3_to_errno(res->status),
                                  absl::StrCat(what, ": ", nfsstat3_to_str(res->status))));
  const WRITE3resok& ok = res->WRITE3res_u.resok;
  if (ok.count < r->length) {
    // A short write: send the whole part again (writes are idempotent), a few times.
    if (++r->tries > kMaxShortRetries)
      return q->Fail(r, absl::DataLossError(
                            absl::StrCat(what, ": the server wrote only ", ok.count, " bytes")));
    q->Dispatch(r);
    return;
  }
  q->Retire(r);
  const bool stable = ok.committed != UNSTABLE;
  const WriteVerifier verf = ToVerifier(ok.verf);
  if (r->kind == Rpc::Kind::kResend) {
    q->log_.Resent(r->entry, stable, verf);
  } else {
    if (stable) q->log_.Observe(verf);
    else q->log_.Add(r->offset, r->length, std::move(r->data), verf);
    q->PartDone(q->slots_[r->slot], Status());
  }
  delete r;
  q->Pump();
}

void NfsQueue::OnCommit(struct rpc_context*, int status, void* data, void* priv) {
  auto* r = static_cast<Rpc*>(priv);
  NfsQueue* q = r->q;
  if (q->Stale(r, status, data)) return;
  const std::string what = absl::StrCat(q->t_.name, ": COMMIT");
  auto* res = static_cast<COMMIT3res*>(data);
  if (res->status != NFS3_OK)
    return q->Fail(r, ErrnoStatus(nfsstat3_to_errno(res->status),
                                  absl::StrCat(what, ": ", nfsstat3_to_str(res->status))));
  q->Retire(r);
  q->commit_in_flight_ = false;
  q->log_.CommitDone(r->round, ToVerifier(res->COMMIT3res_u.resok.verf));
  delete r;
  q->Pump();
}

void NfsQueue::WatchSocket() {
  // The socket of the current connection; a new connection may reuse the descriptor number,
  // so a new socket is told apart by its inode.
  const int fd = ctx_ ? nfs_get_fd(ctx_) : -1;
  const bool want = fd >= 0;
  uint32_t events = EPOLLIN | EPOLLRDHUP;
  if (ctx_ && (nfs_which_events(ctx_) & POLLOUT)) events |= EPOLLOUT;
  uint64_t ino = 0;
  struct stat st {};
  if (want && ::fstat(fd, &st) == 0) ino = st.st_ino;
  if (watched_fd_ >= 0 && (!want || fd != watched_fd_ || ino != watched_ino_)) {
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, watched_fd_, nullptr);  // ENOENT if it was closed
    watched_fd_ = -1;
  }
  struct epoll_event ev {};
  ev.events = events;
  ev.data.fd = fd;
  if (want && watched_fd_ < 0) {
    if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) == 0 ||
        (errno == EEXIST && ::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &ev) == 0)) {
      watched_fd_ = fd;
      watched_ino_ = ino;
      watched_events_ = events;
    }
  } else if (want && events != watched_events_) {
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &ev);
    watched_events_ = events;
  }
  // While work is out, a timer wakes epoll loops so reconnections are retried and libnfs checks
  // its timeouts; idle queues cost nothing.
  const bool busy = rpcs_ > 0 || !issuing_.empty();
  if (busy != timer_armed_) {
    struct itimerspec its {};
    if (busy) {
      its.it_interval.tv_nsec = kTickMs * 1000000L;
      its.it_value.tv_nsec = kTickMs * 1000000L;
    }
    ::timerfd_settime(timer_fd_, 0, &its, nullptr);
    timer_armed_ = busy;
  }
}

Status NfsQueue::Service(int timeout_ms) {
  uint64_t ticks;
  while (::read(timer_fd_, &ticks, sizeof ticks) > 0) {
  }
  if (!ctx_) {
    // Reconnecting: try when due; a caller willing to wait sleeps until then.
    auto now = std::chrono::steady_clock::now();
    if (now < next_connect_ && timeout_ms != 0) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(next_connect_ - now);
      int64_t ms = left.count() + 1;
      if (timeout_ms > 0) ms = std::min<int64_t>(ms, timeout_ms);
      std::this_thread::sleep_for(std::chrono::milliseconds(ms));
      now = std::chrono::steady_clock::now();
    }
    if (now >= next_connect_ && !waiting_.empty()) TryReconnect();
    if (!ctx_) {
      WatchSocket();
      return Status();
    }
  }
  const int fd = nfs_get_fd(ctx_);
  struct pollfd pfd = {fd, static_cast<short>(nfs_which_events(ctx_) | POLLRDHUP), 0};
  const int wait = timeout_ms < 0 ? kTickMs : std::min(timeout_ms, kTickMs);
  int n = fd >= 0 ? ::poll(&pfd, 1, wait) : 0;
  if (n < 0 && errno != EINTR) return LastErrnoStatus(t_.name + ": poll");
  int revents = n > 0 ? pfd.revents : 0;
  if (revents & POLLRDHUP) {
    // The server closed the connection (a restart): read what replies did arrive first.
    int avail = 0;
    if (::ioctl(fd, FIONREAD, &avail) == 0 && avail == 0) revents |= POLLHUP;
    revents &= ~POLLRDHUP;
  }
  if (revents & (POLLERR | POLLHUP)) {
    Reconnect("the server closed the connection");
  } else if (nfs_service(ctx_, revents) < 0) {  // also lets libnfs check its timeouts
    Reconnect(nfs_get_error(ctx_));
  }
  if (stale_answered_) {  // Stale(): wait out a server that has just come back
    stale_answered_ = false;
    if (ctx_) {
      Reconnect("the server answered STALE right after coming back");
      waiting_out_stale_ = true;
      next_connect_ = std::chrono::steady_clock::now() + std::chrono::milliseconds(200);
    }
  }
  Issue();  // replies freed room for more
  WatchSocket();
  return Status();
}

unsigned NfsQueue::RunFinished() {
  unsigned n = 0;
  while (!finished_.empty()) {
    std::vector<uint32_t> batch;
    batch.swap(finished_);
    for (uint32_t index : batch) {
      Slot& s = slots_[index];
      IoCallback done = std::move(s.done);
      Status status = std::move(s.status);
      s.done = nullptr;
      s.status = Status();
      s.next_free = free_head_;
      free_head_ = s.index;
      --busy_;
      std::move(done)(std::move(status));
      ++n;
    }
  }
  return n;
}

unsigned NfsQueue::RunDeferred() {
  uint64_t count;
  while (::read(wake_fd_, &count, sizeof count) > 0) {
  }
  unsigned n = 0;
  while (!deferred_.empty()) {
    std::vector<std::pair<IoCallback, Status>> batch;
    batch.swap(deferred_);
    for (auto& [done, status] : batch) {
      std::move(done)(std::move(status));
      ++n;
    }
  }
  return n;
}

StatusOr<unsigned> NfsQueue::poll(unsigned min_complete, int timeout_ms) {
  RETURN_IF_ERROR(submit());
  const unsigned target = std::min(min_complete, in_flight());
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  unsigned n = RunDeferred() + RunFinished();
  for (;;) {
    int wait_ms = 0;
    if (n < target) {
      wait_ms = -1;
      if (timeout_ms >= 0) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                        deadline - std::chrono::steady_clock::now())
                        .count();
        wait_ms = static_cast<int>(std::clamp<int64_t>(left, 0, INT_MAX));
      }
    }
    RETURN_IF_ERROR(Service(wait_ms));
    Pump();
    n += RunFinished() + RunDeferred();
    if (n >= target || wait_ms == 0) break;
    RETURN_IF_ERROR(submit());  // callbacks may have queued more
  }
  return n;
}

}  // namespace vdisk::blockdev::nfs
