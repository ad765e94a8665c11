// A minimal vhost-user front end for tests: connects to an export's socket, negotiates, shares
// a memfd as guest memory, sets up split virtqueues and submits hand-made virtio-blk requests
// (including deliberately hostile ones). Plays the role QEMU + the guest driver play.
#pragma once

#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <poll.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "blockdev/vhost/inflight.h"
#include "blockdev/vhost/message.h"
#include "blockdev/vhost/protocol.h"
#include "blockdev/vhost/test_guest.h"
#include "common/status.h"

namespace vdisk::blockdev::vhost::testing {

class VhostClient {
 public:
  static constexpr uint16_t kDefaultRingSize = 64;
  // Guest RAM layout: rings at 1 MiB steps from 0, buffers from kDataBase.
  static constexpr uint64_t kDataBase = 16 << 20;

  explicit VhostClient(uint64_t ram_bytes = 64 << 20, uint16_t ring_size = kDefaultRingSize)
      : ram_(ram_bytes), ring_size_(ring_size) {}
  ~VhostClient() { Close(); }

  Status Connect(const std::string& path) {
    sock_.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
    if (::connect(sock_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      return LastErrnoStatus("connect " + path);
    }
    return Status();
  }
  // Connects to socket `name` inside directory `dir` however long `dir` is (a Unix socket
  // address holds 107 bytes): through /proc/self/fd of the directory opened O_PATH.
  Status ConnectIn(const std::string& dir, const std::string& name) {
    UniqueFd d(::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!d.valid()) return LastErrnoStatus("open " + dir);
    return Connect("/proc/self/fd/" + std::to_string(d.get()) + "/" + name);
  }
  void Close() {
    sock_.reset();
    backend_peer_.reset();
  }
  int sock() const { return sock_.get(); }
  FakeGuestRam& ram() { return ram_; }

  StatusOr<uint64_t> GetU64(Request r) {
    RETURN_IF_ERROR(SendMessage(sock(), static_cast<uint32_t>(r), kVersion, {}));
    Message m;
    RETURN_IF_ERROR(RecvMessage(sock(), &m));
    uint64_t v = 0;
    if (m.header.request != static_cast<uint32_t>(r) || !(m.header.flags & kFlagReply) || !m.Get(&v)) {
      return absl::InternalError("bad reply");
    }
    return v;
  }
  // Sends with NEED_REPLY and returns the ack value (0 = success).
  template <typename T>
  StatusOr<uint64_t> SetAck(Request r, const T& payload, std::vector<int> fds = {}) {
    RETURN_IF_ERROR(Send(r, payload, fds, kFlagNeedReply));
    Message m;
    RETURN_IF_ERROR(RecvMessage(sock(), &m));
    uint64_t v = 0;
    if (m.header.request != static_cast<uint32_t>(r) || !m.Get(&v)) {
      return absl::InternalError("bad ack");
    }
    return v;
  }
  template <typename T>
  Status Send(Request r, const T& payload, std::vector<int> fds = {}, uint32_t flags = 0) {
    return SendMessage(sock(), static_cast<uint32_t>(r), kVersion | flags,
                       std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(&payload), sizeof(T)),
                       fds);
  }

  // Full set-up as QEMU does it: features, memory table, `queues` rings started. Acks the
  // protocol features the back end offers, limited to `protocol_mask`. With `inflight` (and the
  // back end offering INFLIGHT_SHMFD) the inflight area is fetched once and handed over, as
  // QEMU's vhost-user-blk does before starting the rings.
  Status Setup(unsigned queues, bool event_idx = false, bool backend_channel = false,
               uint64_t protocol_mask = ~uint64_t{0}, bool inflight = false) {
    RETURN_IF_ERROR(Negotiate(event_idx, backend_channel, protocol_mask, inflight, queues));
    for (unsigned q = 0; q < queues; q++) RETURN_IF_ERROR(StartRing(q));
    return Status();
  }

  // What QEMU does when the back end comes back after dying (chardev reconnect=): a new
  // connection, the same guest memory, rings and inflight area; each ring resumes at its used
  // index (QEMU's guess once GET_VRING_BASE could not be asked).
  Status Reconnect(const std::string& path, unsigned queues, bool event_idx = false) {
    Close();
    RETURN_IF_ERROR(Connect(path));
    RETURN_IF_ERROR(Negotiate(event_idx, false, ~uint64_t{0}, inflight_fd_.valid(), queues));
    for (unsigned q = 0; q < queues; q++) RETURN_IF_ERROR(ResumeRing(q, ring(q).ring.used_idx()));
    return Status();
  }

  // GET_INFLIGHT_FD for `queues` rings of the client's ring size: the reply, and the fd kept.
  StatusOr<InflightPayload> GetInflight(unsigned queues) {
    InflightPayload req{0, 0, static_cast<uint16_t>(queues), ring_size_, 0};
    RETURN_IF_ERROR(Send(Request::kGetInflightFd, req));
    Message m;
    RETURN_IF_ERROR(RecvMessage(sock(), &m));
    InflightPayload reply{};
    if (m.header.request != static_cast<uint32_t>(Request::kGetInflightFd) || !m.Get(&reply)) {
      return absl::InternalError("bad GET_INFLIGHT_FD reply");
    }
    if (reply.mmap_size > 0) {
      if (m.fds.size() != 1) return absl::InternalError("GET_INFLIGHT_FD reply without an fd");
      inflight_fd_ = std::move(m.fds[0]);
      inflight_ = reply;
    } else if (!m.fds.empty()) {
      return absl::InternalError("empty GET_INFLIGHT_FD reply with an fd");
    }
    return reply;
  }
  // The region of queue `q` in the kept inflight area, mapped in this process (the test's view
  // of what the back end logged), or nullptr.
  InflightQueueHeader* InflightRegion(unsigned q) {
    if (!inflight_fd_.valid()) return nullptr;
    if (inflight_map_ == nullptr) {
      int dup = ::dup(inflight_fd_.get());
      auto area = InflightArea::Map(inflight_, UniqueFd(dup));
      if (!area.ok()) return nullptr;
      inflight_map_ = std::move(*area);
    }
    return inflight_map_->queue(q);
  }

 private:
  Status Negotiate(bool event_idx, bool backend_channel, uint64_t protocol_mask, bool inflight,
                   unsigned queues) {
    ASSIGN_OR_RETURN(features_, GetU64(Request::kGetFeatures));
    uint64_t want = features_;
    if (!event_idx) want &= ~(uint64_t{1} << kFRingEventIdx);
    RETURN_IF_ERROR(Send(Request::kSetFeatures, want));
    acked_ = want;
    ASSIGN_OR_RETURN(uint64_t pf, GetU64(Request::kGetProtocolFeatures));
    RETURN_IF_ERROR(Send(Request::kSetProtocolFeatures, pf & protocol_mask));
    RETURN_IF_ERROR(SendMessage(sock(), static_cast<uint32_t>(Request::kSetOwner), kVersion, {}));
    if (backend_channel) {
      int sv[2];
      if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return LastErrnoStatus("socketpair");
      backend_peer_.reset(sv[0]);
      uint64_t zero = 0;
      Status s = Send(Request::kSetBackendReqFd, zero, {sv[1]});
      ::close(sv[1]);
      RETURN_IF_ERROR(s);
    }
    if (inflight && (pf & protocol_mask & (uint64_t{1} << kPfInflightShmfd))) {
      if (!inflight_fd_.valid()) RETURN_IF_ERROR(GetInflight(queues).status());
      if (inflight_fd_.valid()) {
        RETURN_IF_ERROR(Send(Request::kSetInflightFd, inflight_, {inflight_fd_.get()}));
      }
    }
    MemTable t{};
    t.nregions = 1;
    t.regions[0] = ram_.region();
    ASSIGN_OR_RETURN(uint64_t ack, SetAck(Request::kSetMemTable, t, {ram_.fd()}));
    if (ack != 0) return absl::InternalError("SET_MEM_TABLE refused");
    return Status();
  }

 public:
  Status StartRing(unsigned q, uint16_t base = 0) {
    while (rings_.size() <= q) rings_.push_back(nullptr);
    rings_[q] = std::make_unique<Ring>(&ram_, uint64_t{q} << 20, ring_size_);
    return ResumeRing(q, base);
  }

  // Hands the back end ring `q` as it is in guest memory (nothing reset), starting at `base`.
  Status ResumeRing(unsigned q, uint16_t base) {
    Ring& r = *rings_[q];
    RETURN_IF_ERROR(Send(Request::kSetVringNum, VringState{q, ring_size_}));
    RETURN_IF_ERROR(Send(Request::kSetVringBase, VringState{q, base}));
    VringAddr a{q, 0, ram_.va_of(r.ring.desc_gpa()), ram_.va_of(r.ring.used_gpa()),
                ram_.va_of(r.ring.avail_gpa()), 0};
    RETURN_IF_ERROR(Send(Request::kSetVringAddr, a));
    r.call.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    r.kick.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    RETURN_IF_ERROR(Send(Request::kSetVringCall, uint64_t{q}, {r.call.get()}));
    RETURN_IF_ERROR(Send(Request::kSetVringKick, uint64_t{q}, {r.kick.get()}));
    ASSIGN_OR_RETURN(uint64_t ack, SetAck(Request::kSetVringEnable, VringState{q, 1}));
    return ack == 0 ? Status() : absl::InternalError("SET_VRING_ENABLE refused");
  }

  StatusOr<uint16_t> GetVringBase(unsigned q) {
    RETURN_IF_ERROR(Send(Request::kGetVringBase, VringState{q, 0}));
    Message m;
    RETURN_IF_ERROR(RecvMessage(sock(), &m));
    VringState st{};
    if (!m.Get(&st)) return absl::InternalError("bad GET_VRING_BASE reply");
    return static_cast<uint16_t>(st.num);
  }

  StatusOr<std::vector<uint8_t>> GetConfig(uint32_t offset, uint32_t size) {
    ConfigPayload p{};
    p.offset = offset;
    p.size = size;
    RETURN_IF_ERROR(SendMessage(sock(), static_cast<uint32_t>(Request::kGetConfig), kVersion,
                                std::span<const uint8_t>(reinterpret_cast<uint8_t*>(&p), kConfigHeaderSize + size)));
    Message m;
    RETURN_IF_ERROR(RecvMessage(sock(), &m));
    if (m.header.size < kConfigHeaderSize) return absl::InternalError("short GET_CONFIG reply");
    std::memcpy(&p, m.payload, std::min<size_t>(m.header.size, sizeof(p)));
    return std::vector<uint8_t>(p.region, p.region + (m.header.size - kConfigHeaderSize));
  }

  // The back-end request channel's next message type (waits up to timeout_ms), or -1.
  int NextBackendRequest(int timeout_ms) {
    pollfd p{backend_peer_.get(), POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) != 1) return -1;
    Message m;
    if (!RecvMessage(backend_peer_.get(), &m).ok()) return -1;
    return static_cast<int>(m.header.request);
  }

  // ---- requests ----
  struct Ring {
    Ring(FakeGuestRam* ram, uint64_t base, uint16_t num) : ring(ram, base, num) {}
    DriverRing ring;
    UniqueFd kick, call;
    uint16_t next_desc = 0;
    uint16_t seen_used = 0;
  };
  Ring& ring(unsigned q) { return *rings_[q]; }

  // Lays a chain of (gpa, len, writable) buffers into free descriptors; returns the head.
  uint16_t Chain(unsigned q, const std::vector<std::tuple<uint64_t, uint32_t, bool>>& bufs) {
    Ring& r = ring(q);
    uint16_t head = r.next_desc;
    for (size_t i = 0; i < bufs.size(); i++) {
      uint16_t idx = static_cast<uint16_t>((head + i) % ring_size_);
      uint16_t next = static_cast<uint16_t>((idx + 1) % ring_size_);
      auto [gpa, len, w] = bufs[i];
      uint16_t flags = (w ? kDescFWrite : 0) | (i + 1 < bufs.size() ? kDescFNext : 0);
      r.ring.SetDesc(idx, gpa, len, flags, next);
    }
    r.next_desc = static_cast<uint16_t>((head + bufs.size()) % ring_size_);
    return head;
  }
  void Post(unsigned q, uint16_t head) { ring(q).ring.Post(head); }
  void Kick(unsigned q) {
    uint64_t one = 1;
    (void)!::write(ring(q).kick.get(), &one, sizeof(one));
  }
  // Waits until `count` more used entries appeared (up to timeout); returns them.
  std::vector<VringUsedElem> WaitUsed(unsigned q, unsigned count, int timeout_ms = 5000) {
    Ring& r = ring(q);
    std::vector<VringUsedElem> out;
    for (int waited = 0; waited <= timeout_ms;) {
      while (static_cast<uint16_t>(r.ring.used_idx() - r.seen_used) > 0 && out.size() < count) {
        out.push_back(r.ring.used(r.seen_used));
        r.seen_used++;
      }
      if (out.size() >= count) break;
      pollfd p{r.call.get(), POLLIN, 0};
      ::poll(&p, 1, 20);
      uint64_t v;
      (void)!::read(r.call.get(), &v, sizeof(v));
      waited += 20;
    }
    return out;
  }

  // A whole virtio-blk request at buffers from `scratch` (gpa): header, data, status.
  struct BlkReq {
    uint64_t hdr_gpa, data_gpa, status_gpa;
  };
  BlkReq Layout(uint64_t scratch, uint32_t data_len) {
    return BlkReq{scratch, scratch + 4096, scratch + 4096 + ((data_len + 4095) / 4096) * 4096};
  }
  uint16_t Submit(unsigned q, uint32_t type, uint64_t sector, uint64_t scratch, uint32_t data_len,
                  bool data_writable) {
    BlkReq l = Layout(scratch, data_len);
    BlkOutHeader h{type, 0, sector};
    std::memcpy(ram_.at(l.hdr_gpa), &h, sizeof(h));
    ram_.at(l.status_gpa)[0] = 0xff;
    std::vector<std::tuple<uint64_t, uint32_t, bool>> bufs = {{l.hdr_gpa, 16, false}};
    if (data_len > 0) bufs.push_back({l.data_gpa, data_len, data_writable});
    bufs.push_back({l.status_gpa, 1, true});
    uint16_t head = Chain(q, bufs);
    Post(q, head);
    return head;
  }
  uint8_t StatusByte(uint64_t scratch, uint32_t data_len) { return ram_.at(Layout(scratch, data_len).status_gpa)[0]; }

  uint64_t acked_features() const { return acked_; }

 private:
  FakeGuestRam ram_;
  UniqueFd sock_;
  UniqueFd inflight_fd_;
  InflightPayload inflight_{};
  std::unique_ptr<InflightArea> inflight_map_;
  UniqueFd backend_peer_;
  uint64_t features_ = 0, acked_ = 0;
  uint16_t ring_size_;
  std::vector<std::unique_ptr<Ring>> rings_;
};

// One virtio-blk request on queue 0 through `vc` (its RAM at kDataBase as the buffer): the status
// byte (0xff: no answer). `data` is written (kBlkTOut) or filled (kBlkTIn).
inline uint8_t BlkIo(VhostClient& vc, uint32_t type, uint64_t offset, std::string* data) {
  const uint64_t scratch = VhostClient::kDataBase;
  const uint32_t len = data ? static_cast<uint32_t>(data->size()) : 0;
  auto layout = vc.Layout(scratch, len);
  if (type == kBlkTOut) std::memcpy(vc.ram().at(layout.data_gpa), data->data(), len);
  vc.Submit(0, type, offset / 512, scratch, len, /*data_writable=*/type == kBlkTIn);
  vc.Kick(0);
  if (vc.WaitUsed(0, 1).size() != 1) return 0xff;
  if (type == kBlkTIn) std::memcpy(data->data(), vc.ram().at(layout.data_gpa), len);
  return vc.StatusByte(scratch, len);
}

// The capacity the export announces in its virtio-blk config space (0 if unreadable).
inline uint64_t BlkCapacityBytes(VhostClient& vc) {
  auto cfg = vc.GetConfig(0, sizeof(BlkConfig));
  if (!cfg.ok() || cfg->size() != sizeof(BlkConfig)) return 0;
  BlkConfig bc;
  std::memcpy(&bc, cfg->data(), sizeof(bc));
  return bc.capacity * 512;
}

}  // namespace vdisk::blockdev::vhost::testing
