// RbdPool: write holds across processes and nodes, for group snapshots (snapshot/group_snapshot.h).
//
// Every process that serves an image (a vhost-user export on some node) watches the RADOS object
// "vdisk.hold.<image id>" in the image's pool. A group snapshot notifies "hold <token> <lease ms>"
// on each member's object; each watcher holds its write acknowledgements and acks "held"; the
// member snapshots are taken; "release <token>" lets them go (a watcher also lets go when the
// lease runs out, so a snapshotting process that dies never stalls a guest for long).
//
// Whether that covers every writer: librbd clients that open an image read-write watch its
// header object; vdisk's exports are counted there too. If an image has more header watchers
// than held acks, something else writes it (QEMU's own librbd, rbd-nbd, another tool) and the
// group is reported as sequential, not held.
//
// Why not librbd's group snapshot (rbd_group_snap_create), which takes one point in time by
// acquiring every member's exclusive lock: its member snapshots live in the group namespace, and
// librbd 16 (Debian 12) can neither clone them (rbd_clone3 takes user-namespace names; cloning by
// snapshot id came in Ceph 19) nor diff against them by name (rbd_diff_iterate2), so members
// could not be restored or cloned alone, nor feed changed-block tracking. Taking the same exclusive
// locks through the public API (rbd_lock_acquire) instead makes librbd refuse the other writers'
// lock requests with EROFS: their I/O fails (seen with a librbd writer during a group snapshot),
// where the internal block_requests() of the group snapshot makes them wait.
#include <rados/librados.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "blockdev/rbd/rbd_pool_impl.h"
#include "spdlog/spdlog.h"

namespace vdisk::blockdev::rbd {

namespace {

constexpr uint64_t kNotifyTimeoutMs = 10000;
constexpr uint32_t kWatchTimeoutS = 30;

std::string HoldObject(const std::string& image_id) { return "vdisk.hold." + image_id; }

// Creates the (empty) object if it is missing.
Status EnsureObject(rados_ioctx_t io, const std::string& oid) {
  rados_write_op_t op = rados_create_write_op();
  rados_write_op_create(op, LIBRADOS_CREATE_IDEMPOTENT, nullptr);
  int r = rados_write_op_operate(op, io, oid.c_str(), nullptr, 0);
  rados_release_write_op(op);
  if (r < 0) return RadosError(r, absl::StrCat("creating ", oid));
  return Status();
}

std::string NewToken() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  return absl::StrCat(absl::Hex(rng(), absl::kZeroPad16));
}

// One process's watch of one image's hold object (see the file comment).
class HoldWatch : public std::enable_shared_from_this<HoldWatch> {
 public:
  HoldWatch(std::shared_ptr<RbdPool> pool, rados_ioctx_t io, std::string oid, std::shared_ptr<WriteHoldSink> sink)
      : pool_(std::move(pool)), io_(io), oid_(std::move(oid)), sink_(std::move(sink)) {}

  Status Start() {
    int r = rados_watch3(io_, oid_.c_str(), &cookie_, &HoldWatch::OnNotify, &HoldWatch::OnError, kWatchTimeoutS,
                         this);
    if (r < 0) return RadosError(r, absl::StrCat("watching ", oid_));
    watching_ = true;
    return Status();
  }

  ~HoldWatch() {
    if (watching_) {
      rados_unwatch2(io_, cookie_);
      rados_watch_flush(rados_ioctx_get_cluster(io_));  // no callback runs after this
    }
    std::lock_guard lock(mu_);
    holds_.clear();
  }

 private:
  static void OnNotify(void* arg, uint64_t notify_id, uint64_t cookie, uint64_t, void* data, size_t len) {
    static_cast<HoldWatch*>(arg)->Handle(notify_id, cookie, std::string(static_cast<char*>(data), len));
  }
  static void OnError(void* arg, uint64_t, int err) {
    spdlog::warn("rbd write holds: watch of {} failed ({}); holds on it are dropped",
                 static_cast<HoldWatch*>(arg)->oid_, err);
    auto* w = static_cast<HoldWatch*>(arg);
    std::lock_guard lock(w->mu_);
    w->holds_.clear();
  }

  void Handle(uint64_t notify_id, uint64_t cookie, const std::string& payload) {
    std::vector<std::string> words = absl::StrSplit(payload, ' ');
    std::string reply = "?";
    if (words.size() == 3 && words[0] == "hold") {
      auto h = sink_->HoldWrites();
      if (h.ok()) {
        const int64_t lease_ms = std::max<int64_t>(0, std::atoll(words[2].c_str()));
        {
          std::lock_guard lock(mu_);
          holds_[words[1]] = std::move(*h);
        }
        ExpireLater(words[1], std::chrono::milliseconds(lease_ms));
        reply = "held";
      } else {
        spdlog::warn("rbd write holds: {}: cannot hold: {}", oid_, h.status().ToString());
        reply = "failed";
      }
    } else if (words.size() == 2 && words[0] == "release") {
      std::lock_guard lock(mu_);
      holds_.erase(words[1]);
      reply = "released";
    }
    rados_notify_ack(io_, oid_.c_str(), notify_id, cookie, reply.data(), static_cast<int>(reply.size()));
  }

  void ExpireLater(const std::string& token, std::chrono::milliseconds lease) {
    std::weak_ptr<HoldWatch> weak = weak_from_this();
    std::thread([weak, token, lease] {
      std::this_thread::sleep_for(lease);
      if (auto self = weak.lock()) {
        std::lock_guard lock(self->mu_);
        if (self->holds_.erase(token) > 0)
          spdlog::warn("rbd write holds: {}: hold {} outlived its lease; released", self->oid_, token);
      }
    }).detach();
  }

  std::shared_ptr<RbdPool> pool_;  // keeps the IoCtx alive
  rados_ioctx_t io_;
  const std::string oid_;
  std::shared_ptr<WriteHoldSink> sink_;
  uint64_t cookie_ = 0;
  bool watching_ = false;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<void>> holds_;  // by token
};

// Sends `payload` to the watchers of `oid`; returns how many acked with `want`.
StatusOr<size_t> Notify(rados_ioctx_t io, const std::string& oid, const std::string& payload, const char* want) {
  char* reply = nullptr;
  size_t reply_len = 0;
  int r = rados_notify2(io, oid.c_str(), payload.data(), static_cast<int>(payload.size()), kNotifyTimeoutMs, &reply,
                        &reply_len);
  size_t acked = 0;
  if (reply != nullptr) {
    notify_ack_t* acks = nullptr;
    notify_timeout_t* timeouts = nullptr;
    size_t nr_acks = 0, nr_timeouts = 0;
    if (rados_decode_notify_response(reply, reply_len, &acks, &nr_acks, &timeouts, &nr_timeouts) == 0) {
      for (size_t i = 0; i < nr_acks; ++i)
        if (acks[i].payload_len == std::strlen(want) && std::memcmp(acks[i].payload, want, acks[i].payload_len) == 0)
          ++acked;
      rados_free_notify_response(acks, nr_acks, timeouts);
    }
    rados_buffer_free(reply);
  }
  if (r < 0 && r != -ETIMEDOUT) return RadosError(r, absl::StrCat("notify on ", oid));
  return acked;
}

// Read-write librbd clients of the image (watchers of its header).
StatusOr<size_t> Writers(rbd_image_t img) {
  size_t max = 16;
  std::vector<rbd_image_watcher_t> w;
  int r;
  do {
    w.resize(max);
    r = rbd_watchers_list(img, w.data(), &max);
  } while (r == -ERANGE);
  if (r < 0) return RadosError(r, "rbd_watchers_list");
  rbd_watchers_list_cleanup(w.data(), max);
  return max;
}

}  // namespace

StatusOr<std::shared_ptr<void>> RbdPool::watch_write_holds(const std::string& volume_id,
                                                           std::shared_ptr<WriteHoldSink> sink) {
  ASSIGN_OR_RETURN(VolumeRecord rec, ReadVolume(volume_id));
  ASSIGN_OR_RETURN(const IoCtx* io, Io(rec.rbd_pool));
  const std::string oid = HoldObject(rec.image_id);
  RETURN_IF_ERROR(EnsureObject(io->get(), oid));
  auto watch = std::make_shared<HoldWatch>(shared_from_this(), io->get(), oid, std::move(sink));
  RETURN_IF_ERROR(watch->Start());
  return std::shared_ptr<void>(watch);
}

StatusOr<WriteHold> RbdPool::hold_writes(const std::vector<std::string>& volume_ids,
                                         std::chrono::milliseconds lease) {
  struct Target {
    rados_ioctx_t io;
    std::string oid;
  };
  auto targets = std::make_shared<std::vector<Target>>();
  const std::string token = NewToken();
  auto release = [targets, token, name = options_.name] {
    for (const auto& t : *targets) {
      auto r = Notify(t.io, t.oid, "release " + token, "released");
      if (!r.ok()) spdlog::warn("rbd pool {}: releasing hold {} on {}: {}", name, token, t.oid, r.status().ToString());
    }
  };
  WriteHold out;
  out.every_writer_held = true;
  for (const auto& id : volume_ids) {
    ASSIGN_OR_RETURN(VolumeRecord rec, ReadVolume(id));
    ASSIGN_OR_RETURN(const IoCtx* io, Io(rec.rbd_pool));
    const std::string oid = HoldObject(rec.image_id);
    RETURN_IF_ERROR(EnsureObject(io->get(), oid));
    targets->push_back({io->get(), oid});
    auto held = Notify(io->get(), oid, absl::StrCat("hold ", token, " ", lease.count()), "held");
    if (!held.ok()) {
      release();
      return held.status();
    }
    // Counted after the hold: a writer that opened the image meanwhile is seen too.
    ASSIGN_OR_RETURN(Image img, Image::OpenById(*io, rec.image_id, "", /*read_only=*/true));
    ASSIGN_OR_RETURN(size_t writers, Writers(img.get()));
    if (writers > *held) {
      out.every_writer_held = false;
      absl::StrAppend(&out.detail, out.detail.empty() ? "" : "; ", "volume ", id, ": ", writers,
                      " read-write client(s), ", *held, " holding");
    }
  }
  out.release = std::shared_ptr<void>(new char(0), [release](void* p) {
    delete static_cast<char*>(p);
    release();
  });
  return out;
}

}  // namespace vdisk::blockdev::rbd
