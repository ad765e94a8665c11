#include "blockdev/vhost/session.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace vdisk::blockdev::vhost {

namespace {

constexpr uint64_t Bit(int n) { return uint64_t{1} << n; }

constexpr uint64_t kProtocolFeatures =
    Bit(kPfMq) | Bit(kPfReplyAck) | Bit(kPfBackendReq) | Bit(kPfConfig) | Bit(kPfInflightShmfd);

// Messages that carry their own reply (REPLY_ACK does not add one to them).
bool HasOwnReply(Request r) {
  switch (r) {
    case Request::kGetFeatures:
    case Request::kGetProtocolFeatures:
    case Request::kGetVringBase:
    case Request::kGetQueueNum:
    case Request::kGetConfig:
    case Request::kGetInflightFd:
      return true;
    default:
      return false;
  }
}

}  // namespace

Session::Session(UniqueFd sock, BlkTarget* target, SessionConfig config)
    : sock_(std::move(sock)), target_(target), config_(config) {
  for (unsigned i = 0; i < config_.num_queues; i++) vrings_.push_back(std::make_unique<Vring>());
}

Session::~Session() { StopAll(); }

uint64_t Session::DeviceFeatures(const BlkTarget& t) {
  uint64_t f = Bit(kFVersion1) | Bit(kFRingIndirectDesc) | Bit(kFRingEventIdx) |
               Bit(kFProtocolFeatures) | Bit(kBlkFSegMax) | Bit(kBlkFBlkSize) | Bit(kBlkFFlush) |
               Bit(kBlkFMq);
  if (t.read_only) {
    f |= Bit(kBlkFRo);
  } else {
    if (t.max_discard_sectors > 0) f |= Bit(kBlkFDiscard);
    if (t.max_write_zeroes_sectors > 0) f |= Bit(kBlkFWriteZeroes);
  }
  return f;
}

BlkConfig Session::MakeConfig(const BlkTarget& t, unsigned num_queues, uint32_t seg_max) {
  BlkConfig c{};
  c.capacity = t.capacity_bytes.load() / kSectorSize;
  c.seg_max = seg_max;
  c.blk_size = t.block_size;
  c.num_queues = static_cast<uint16_t>(num_queues);
  uint32_t align = std::max<uint32_t>(t.block_size / kSectorSize, 1);
  if (!t.read_only && t.max_discard_sectors > 0) {
    c.max_discard_sectors = t.max_discard_sectors;
    c.max_discard_seg = 1;
    c.discard_sector_alignment = align;
  }
  if (!t.read_only && t.max_write_zeroes_sectors > 0) {
    c.max_write_zeroes_sectors = t.max_write_zeroes_sectors;
    c.max_write_zeroes_seg = 1;
    c.write_zeroes_may_unmap = 1;
  }
  return c;
}

StatusOr<unsigned> Session::RingIndex(uint64_t value) const {
  uint64_t index = value & kVringIndexMask;
  if (index >= vrings_.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("virtqueue index ", index, " beyond the ", vrings_.size(), " offered"));
  }
  return static_cast<unsigned>(index);
}

Status Session::Serve(int stop_fd) {
  Message msg;
  Status result;
  for (;;) {
    pollfd fds[2] = {{sock_.get(), POLLIN, 0}, {stop_fd, POLLIN, 0}};
    int n = ::poll(fds, 2, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      result = LastErrnoStatus("poll");
      break;
    }
    if (fds[1].revents & POLLIN) break;
    if (!(fds[0].revents & (POLLIN | POLLHUP | POLLERR))) continue;
    Status s = RecvMessage(sock_.get(), &msg);
    if (!s.ok()) {
      if (!absl::IsUnavailable(s)) result = s;
      break;
    }
    bool replied = false;
    uint32_t request = msg.header.request;
    spdlog::debug("vhost-user: request {} ({} payload bytes, {} fds)", request, msg.header.size,
                  msg.fds.size());
    Status h = Handle(msg, &replied);
    if (!h.ok()) {
      spdlog::warn("vhost-user: request {} failed: {}", request, h.ToString());
    }
    if (absl::IsUnavailable(h) || absl::IsDataLoss(h)) {  // the connection itself is unusable
      result = h;
      break;
    }
    if (!replied && (msg.header.flags & kFlagNeedReply) &&
        (acked_protocol_features_ & Bit(kPfReplyAck)) && !HasOwnReply(msg.request())) {
      uint64_t code = h.ok() ? 0 : 1;
      Status r = SendReply(sock_.get(), request, code);
      if (!r.ok()) {
        result = r;
        break;
      }
    }
  }
  StopAll();
  return result;
}

Status Session::Handle(Message& msg, bool* replied) {
  const int sock = sock_.get();
  const uint32_t req = msg.header.request;
  auto reply_u64 = [&](uint64_t v) {
    *replied = true;
    Status s = SendReply(sock, req, v);
    return s.ok() ? s : absl::UnavailableError(s.message());
  };
  uint64_t u64 = 0;
  switch (msg.request()) {
    case Request::kGetFeatures:
      return reply_u64(DeviceFeatures(*target_));
    case Request::kSetFeatures:
      if (!msg.Get(&u64)) return absl::InvalidArgumentError("SET_FEATURES without a value");
      if (u64 & ~DeviceFeatures(*target_)) {
        return absl::InvalidArgumentError(absl::StrCat("SET_FEATURES with unoffered bits ", u64));
      }
      acked_features_ = u64;
      protocol_features_acked_ = u64 & Bit(kFProtocolFeatures);
      return Status();
    case Request::kGetProtocolFeatures:
      return reply_u64(kProtocolFeatures);
    case Request::kSetProtocolFeatures:
      if (!msg.Get(&u64)) return absl::InvalidArgumentError("SET_PROTOCOL_FEATURES without a value");
      acked_protocol_features_.store(u64 & kProtocolFeatures);
      return Status();
    case Request::kGetQueueNum:
      return reply_u64(vrings_.size());
    case Request::kSetOwner:
      return Status();
    case Request::kResetOwner:
    case Request::kResetDevice:
      StopAll();
      for (auto& v : vrings_) {
        v->config = VringConfig{};
        v->addr_set = v->kick_set = v->disabled = false;
        v->kick.reset();
        v->err.reset();
        v->call.Set(UniqueFd());
      }
      acked_features_ = 0;
      return Status();
    case Request::kSetMemTable:
      return HandleMemTable(msg);
    case Request::kSetVringNum: {
      VringState st;
      if (!msg.Get(&st)) return absl::InvalidArgumentError("SET_VRING_NUM without a payload");
      ASSIGN_OR_RETURN(unsigned i, RingIndex(st.index));
      if (st.num == 0 || st.num > kMaxQueueSize || (st.num & (st.num - 1)) != 0) {
        return absl::InvalidArgumentError(absl::StrCat("virtqueue size ", st.num));
      }
      vrings_[i]->config.num = static_cast<uint16_t>(st.num);
      return Status();
    }
    case Request::kSetVringAddr: {
      VringAddr a;
      if (!msg.Get(&a)) return absl::InvalidArgumentError("SET_VRING_ADDR without a payload");
      ASSIGN_OR_RETURN(unsigned i, RingIndex(a.index));
      Vring& v = *vrings_[i];
      v.config.desc_va = a.desc_user_addr;
      v.config.avail_va = a.avail_user_addr;
      v.config.used_va = a.used_user_addr;
      v.addr_set = true;
      return Status();
    }
    case Request::kSetVringBase: {
      VringState st;
      if (!msg.Get(&st)) return absl::InvalidArgumentError("SET_VRING_BASE without a payload");
      ASSIGN_OR_RETURN(unsigned i, RingIndex(st.index));
      vrings_[i]->config.last_avail_idx = static_cast<uint16_t>(st.num);
      return Status();
    }
    case Request::kGetVringBase: {
      VringState st;
      if (!msg.Get(&st)) return absl::InvalidArgumentError("GET_VRING_BASE without a payload");
      auto i = RingIndex(st.index);
      if (!i.ok()) {
        // The front end waits for a reply: answer, then drop the connection.
        (void)reply_u64(0);
        return absl::DataLossError(i.status().message());
      }
      StopRing(*i);
      Vring& v = *vrings_[*i];
      v.kick_set = false;
      v.kick.reset();
      st.num = v.config.last_avail_idx;
      *replied = true;
      Status s = SendReply(sock, req, st);
      return s.ok() ? s : absl::UnavailableError(s.message());
    }
    case Request::kSetVringKick:
    case Request::kSetVringCall:
    case Request::kSetVringErr: {
      if (!msg.Get(&u64)) return absl::InvalidArgumentError("vring fd message without a payload");
      ASSIGN_OR_RETURN(unsigned i, RingIndex(u64));
      UniqueFd fd;
      if (!(u64 & kVringNoFdMask)) {
        if (msg.fds.size() != 1) return absl::InvalidArgumentError("vring fd message without an fd");
        fd = std::move(msg.fds[0]);
        // Eventfds from QEMU already are; anything else must never block a worker.
        int flags = ::fcntl(fd.get(), F_GETFL);
        if (flags < 0 || ::fcntl(fd.get(), F_SETFL, flags | O_NONBLOCK) != 0) {
          return LastErrnoStatus("vring fd: fcntl O_NONBLOCK");
        }
      }
      Vring& v = *vrings_[i];
      if (msg.request() == Request::kSetVringCall) {
        v.call.Set(std::move(fd));
        return Status();
      }
      if (msg.request() == Request::kSetVringErr) {
        v.err = std::move(fd);
        return Status();
      }
      StopRing(i);  // a new kick fd (re)starts the ring
      v.kick = std::move(fd);
      v.kick_set = true;
      return MaybeStart(i);
    }
    case Request::kSetVringEnable: {
      VringState st;
      if (!msg.Get(&st)) return absl::InvalidArgumentError("SET_VRING_ENABLE without a payload");
      ASSIGN_OR_RETURN(unsigned i, RingIndex(st.index));
      vrings_[i]->disabled = st.num == 0;
      if (st.num == 0) {
        StopRing(i);
        return Status();
      }
      return MaybeStart(i);
    }
    case Request::kGetConfig:
      return HandleGetConfig(msg);
    case Request::kSetConfig:
      // Only the writeback byte is writable in virtio-blk, and CONFIG_WCE is not offered.
      return Status();
    case Request::kGetInflightFd:
      *replied = true;
      return HandleGetInflight(msg);
    case Request::kSetInflightFd:
      return HandleSetInflight(msg);
    case Request::kSetBackendReqFd: {
      if (msg.fds.size() != 1) return absl::InvalidArgumentError("SET_BACKEND_REQ_FD without an fd");
      std::lock_guard<std::mutex> lock(backend_mu_);
      backend_fd_ = std::move(msg.fds[0]);
      return Status();
    }
    default:
      return absl::UnimplementedError(absl::StrCat("vhost-user request ", req, " not supported"));
  }
}

Status Session::HandleMemTable(Message& msg) {
  MemTable table{};
  if (msg.header.size < 8) return absl::InvalidArgumentError("SET_MEM_TABLE without a payload");
  std::memcpy(&table, msg.payload, std::min<size_t>(msg.header.size, sizeof(table)));
  if (table.nregions == 0 || table.nregions > kMaxMemRegions ||
      msg.header.size < 8 + sizeof(MemRegion) * table.nregions) {
    return absl::InvalidArgumentError(absl::StrCat("SET_MEM_TABLE with ", table.nregions, " regions"));
  }
  ASSIGN_OR_RETURN(auto mem, GuestMemory::Map(std::span<const MemRegion>(table.regions, table.nregions),
                                              std::move(msg.fds)));
  return RestartRunning([&] { memory_ = std::move(mem); });
}

Status Session::RestartRunning(const std::function<void()>& swap) {
  std::vector<unsigned> running;
  for (unsigned i = 0; i < vrings_.size(); i++) {
    if (vrings_[i]->worker) {
      running.push_back(i);
      StopRing(i);
    }
  }
  swap();
  Status result;
  for (unsigned i : running) {
    Status s = MaybeStart(i);
    if (!s.ok()) result = s;
  }
  return result;
}

Status Session::HandleGetInflight(const Message& msg) {
  InflightPayload in{};
  InflightPayload out{};
  UniqueFd fd;
  Status s;
  if (!msg.Get(&in)) {
    s = absl::InvalidArgumentError("GET_INFLIGHT_FD without a payload");
  } else if (in.num_queues > vrings_.size()) {
    s = absl::InvalidArgumentError(absl::StrCat("GET_INFLIGHT_FD for ", in.num_queues, " queues; ",
                                                vrings_.size(), " offered"));
  } else {
    auto created = InflightArea::Create(in.num_queues, in.queue_size, &out);
    if (created.ok()) fd = std::move(*created);
    s = created.status();
  }
  // A zero-sized area tells the front end there is no inflight tracking.
  if (!s.ok()) out = InflightPayload{};
  const int fds[1] = {fd.get()};
  Status sent = SendMessage(sock_.get(), msg.header.request, kVersion | kFlagReply,
                            std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(&out), sizeof(out)),
                            fd.valid() ? std::span<const int>(fds) : std::span<const int>());
  if (!sent.ok()) return absl::UnavailableError(sent.message());
  return s;
}

Status Session::HandleSetInflight(Message& msg) {
  InflightPayload p{};
  if (!msg.Get(&p)) return absl::InvalidArgumentError("SET_INFLIGHT_FD without a payload");
  if (msg.fds.size() != 1) return absl::InvalidArgumentError("SET_INFLIGHT_FD without an fd");
  ASSIGN_OR_RETURN(auto area, InflightArea::Map(p, std::move(msg.fds[0])));
  spdlog::debug("vhost-blk: inflight area for {} queue(s) of {} entries", area->num_queues(),
                area->queue_size());
  return RestartRunning([&] { inflight_ = std::move(area); });
}

Status Session::HandleGetConfig(const Message& msg) {
  ConfigPayload in{};
  if (msg.header.size < kConfigHeaderSize) {
    return absl::InvalidArgumentError("GET_CONFIG without a payload");
  }
  std::memcpy(&in, msg.payload, std::min<size_t>(msg.header.size, sizeof(in)));
  ConfigPayload out{};
  out.offset = in.offset;
  out.flags = in.flags;
  size_t reply_size = kConfigHeaderSize;
  if (in.size <= kMaxConfigSize && in.offset <= kMaxConfigSize - in.size) {
    uint8_t space[kMaxConfigSize] = {};
    BlkConfig c = MakeConfig(*target_, static_cast<unsigned>(vrings_.size()), config_.seg_max);
    std::memcpy(space, &c, sizeof(c));
    out.size = in.size;
    std::memcpy(out.region, space + in.offset, in.size);
    reply_size += in.size;
  }
  // An invalid range gets a zero-size reply, which the front end treats as failure.
  Status s = SendMessage(sock_.get(), msg.header.request, kVersion | kFlagReply,
                         std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(&out), reply_size));
  return s.ok() ? s : absl::UnavailableError(s.message());
}

Status Session::MaybeStart(unsigned index) {
  Vring& v = *vrings_[index];
  if (v.worker || !v.kick_set || v.disabled || !v.addr_set || v.config.num == 0 || !memory_) {
    return Status();
  }
  QueueWorkerParams p;
  p.index = index;
  p.target = target_;
  p.memory = memory_.get();
  p.vring = v.config;
  p.vring.event_idx = acked_features_ & Bit(kFRingEventIdx);
  p.vring.indirect = acked_features_ & Bit(kFRingIndirectDesc);
  if (inflight_ && (acked_protocol_features_ & Bit(kPfInflightShmfd))) {
    p.vring.inflight = inflight_->queue(index);
    p.vring.inflight_entries = inflight_->queue_size();
  }
  if (v.kick.valid()) {
    int dup = ::fcntl(v.kick.get(), F_DUPFD_CLOEXEC, 0);
    if (dup < 0) return LastErrnoStatus("dup of the kick fd");
    p.kick.reset(dup);
  }
  p.call = &v.call;
  p.limits.max_bytes = config_.max_request_bytes + 4096;  // data plus header/status/segments
  ASSIGN_OR_RETURN(auto worker, QueueWorker::Start(std::move(p)));
  std::lock_guard<std::mutex> lock(workers_mu_);
  v.worker = std::move(worker);
  spdlog::info("vhost-blk: queue {} started (size {}, avail {})", index, v.config.num,
               v.worker->start_avail_idx());
  return Status();
}

void Session::StopRing(unsigned index) {
  Vring& v = *vrings_[index];
  std::unique_ptr<QueueWorker> w;
  {
    std::lock_guard<std::mutex> lock(workers_mu_);
    if (!v.worker) return;
    v.config.last_avail_idx = v.worker->Stop();
    if (v.worker->broken()) broken_queues_++;
    w = std::move(v.worker);
  }
  spdlog::info("vhost-blk: queue {} stopped (avail {})", index, v.config.last_avail_idx);
}

void Session::StopAll() {
  for (unsigned i = 0; i < vrings_.size(); i++) StopRing(i);
}

unsigned Session::broken_queues() const {
  std::lock_guard<std::mutex> lock(workers_mu_);
  unsigned n = broken_queues_;
  for (const auto& v : vrings_) {
    if (v->worker && v->worker->broken()) n++;
  }
  return n;
}

Status Session::ReopenIoQueues() {
  std::lock_guard<std::mutex> lock(workers_mu_);
  for (auto& v : vrings_) {
    if (v->worker) RETURN_IF_ERROR(v->worker->ReopenIoQueue());
  }
  return Status();
}

Status Session::NotifyConfigChange() {
  std::lock_guard<std::mutex> lock(backend_mu_);
  if (!backend_fd_.valid() || !(acked_protocol_features_ & Bit(kPfBackendReq))) {
    return absl::FailedPreconditionError("the front end gave no back-end request channel");
  }
  return SendMessage(backend_fd_.get(), static_cast<uint32_t>(BackendRequest::kConfigChange),
                     kVersion, {});
}

}  // namespace vdisk::blockdev::vhost
