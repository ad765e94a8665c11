#include "blockdev/vhost/export.h"

#include <errno.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "blockdev/vhost/blk_target.h"
#include "blockdev/vhost/session.h"
#include "blockdev/vhost/unique_fd.h"

namespace vdisk::blockdev::vhost {

namespace {

class ExportImpl final : public Export {
 public:
  ExportImpl(std::shared_ptr<Device> device, ExportOptions options)
      : device_(std::move(device)), options_(std::move(options)) {}
  ~ExportImpl() override { Stop(); }

  Status Init();
  void Stop() override;
  StatusOr<uint64_t> Resize(std::shared_ptr<Device> reopened) override;
  std::string socket_path() const override { return options_.socket_path; }
  ExportStats stats() const override;

 private:
  void Listen();

  std::shared_ptr<Device> device_;
  std::vector<std::shared_ptr<Device>> retired_;  // replaced by Resize; queues may still use them
  ExportOptions options_;
  std::unique_ptr<ExportMetrics> metrics_;  // before target_: queues stop before it goes
  BlkTarget target_;
  UniqueFd listen_fd_;
  UniqueFd stop_fd_;
  std::thread listener_;
  std::mutex stop_mu_;
  bool stopped_ = false;

  mutable std::mutex session_mu_;
  Session* session_ = nullptr;  // the connected front end's session, guarded by session_mu_
  uint64_t connections_ = 0;     // guarded by session_mu_
  uint64_t broken_queues_ = 0;   // of finished sessions, guarded by session_mu_
  std::mutex resize_mu_;
};

Status ExportImpl::Init() {
  const ExportOptions& o = options_;
  if (o.socket_path.empty()) return absl::InvalidArgumentError("vhost export: no socket path");
  sockaddr_un addr{};
  if (o.socket_path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(absl::StrCat("vhost export: socket path longer than ",
                                                   sizeof(addr.sun_path) - 1, " bytes"));
  }
  if (o.num_queues == 0 || o.num_queues > kMaxExportQueues) {
    return absl::InvalidArgumentError(
        absl::StrCat("vhost export: num_queues must be 1..64, not ", o.num_queues));
  }
  if (o.serial.size() > kBlkIdBytes) {
    return absl::InvalidArgumentError("vhost export: serial longer than 20 bytes");
  }
  if (o.max_request_bytes < 4096) {
    return absl::InvalidArgumentError("vhost export: max_request_bytes below 4096");
  }
  uint64_t size = device_->size();
  uint32_t bs = device_->block_size();
  if (bs < kSectorSize || bs % kSectorSize != 0 || size % bs != 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "vhost export: device ", device_->describe(), " has block size ", bs, " and size ", size,
        " (need a multiple of 512 and a whole number of blocks)"));
  }
  target_.device.store(device_.get());
  target_.read_only = o.read_only || device_->read_only();
  target_.serial = o.serial;
  target_.block_size = bs;
  target_.buffer_alignment = device_->buffer_alignment();
  uint32_t block_sectors = bs / kSectorSize;
  auto round = [&](uint32_t sectors) { return sectors / block_sectors * block_sectors; };
  // Not offered on a read-only export: such requests are answered UNSUPP.
  target_.max_discard_sectors = o.discard && !target_.read_only ? round(o.max_discard_sectors) : 0;
  target_.max_write_zeroes_sectors =
      o.write_zeroes && !target_.read_only ? round(o.max_write_zeroes_sectors) : 0;
  target_.capacity_bytes.store(size);
  if (!o.metrics_volume.empty()) {
    metrics_ = std::make_unique<ExportMetrics>(o.metrics_volume, o.socket_path);
    target_.metrics = metrics_.get();
  }

  // Replace a stale socket file (a previous run that died), never anything else.
  struct stat st;
  if (::lstat(o.socket_path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return absl::AlreadyExistsError(
          absl::StrCat("vhost export: ", o.socket_path, " exists and is not a socket"));
    }
    ::unlink(o.socket_path.c_str());
  }
  listen_fd_.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!listen_fd_.valid()) return LastErrnoStatus("vhost export: socket");
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, o.socket_path.data(), o.socket_path.size());
  if (::bind(listen_fd_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return LastErrnoStatus(absl::StrCat("vhost export: bind ", o.socket_path));
  }
  if (::chmod(o.socket_path.c_str(), o.socket_mode) != 0 || ::listen(listen_fd_.get(), 1) != 0) {
    Status s = LastErrnoStatus(absl::StrCat("vhost export: listen on ", o.socket_path));
    ::unlink(o.socket_path.c_str());
    return s;
  }
  stop_fd_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!stop_fd_.valid()) {
    ::unlink(o.socket_path.c_str());
    return LastErrnoStatus("eventfd");
  }
  listener_ = std::thread([this] { Listen(); });
  spdlog::info("vhost-blk: exporting {} on {} ({} queue(s), {}, {} bytes)", device_->describe(),
               o.socket_path, o.num_queues, target_.read_only ? "read-only" : "read-write", size);
  return Status();
}

void ExportImpl::Listen() {
  SessionConfig config;
  config.num_queues = options_.num_queues;
  config.max_request_bytes = options_.max_request_bytes;
  for (;;) {
    pollfd fds[2] = {{listen_fd_.get(), POLLIN, 0}, {stop_fd_.get(), POLLIN, 0}};
    int n = ::poll(fds, 2, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      spdlog::error("vhost-blk: poll on the listener: {}", strerror(errno));
      return;
    }
    if (fds[1].revents & POLLIN) return;
    if (!(fds[0].revents & POLLIN)) continue;
    UniqueFd conn(::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!conn.valid()) {
      if (errno != EINTR && errno != ECONNABORTED) {
        spdlog::warn("vhost-blk: accept: {}", strerror(errno));
      }
      continue;
    }
    Session session(std::move(conn), &target_, config);
    {
      std::lock_guard<std::mutex> lock(session_mu_);
      session_ = &session;
      connections_++;
    }
    spdlog::info("vhost-blk: front end connected on {}", options_.socket_path);
    Status s = session.Serve(stop_fd_.get());
    {
      std::lock_guard<std::mutex> lock(session_mu_);
      session_ = nullptr;
      broken_queues_ += session.broken_queues();
    }
    if (s.ok()) {
      spdlog::info("vhost-blk: front end on {} disconnected", options_.socket_path);
    } else {
      spdlog::warn("vhost-blk: front end on {} dropped: {}", options_.socket_path, s.ToString());
    }
    // ~Session: workers stopped (in-flight requests completed), guest memory unmapped.
  }
}

void ExportImpl::Stop() {
  std::lock_guard<std::mutex> lock(stop_mu_);
  if (stopped_) return;
  stopped_ = true;
  if (stop_fd_.valid()) {
    uint64_t one = 1;
    ssize_t n = ::write(stop_fd_.get(), &one, sizeof(one));
    (void)n;
  }
  if (listener_.joinable()) listener_.join();
  if (listen_fd_.valid()) {
    listen_fd_.reset();
    ::unlink(options_.socket_path.c_str());
  }
}

StatusOr<uint64_t> ExportImpl::Resize(std::shared_ptr<Device> reopened) {
  std::lock_guard<std::mutex> resize_lock(resize_mu_);
  Device* next = reopened ? reopened.get() : device_.get();
  if (reopened && (reopened->block_size() != target_.block_size ||
                   (reopened->read_only() && !target_.read_only))) {
    return absl::FailedPreconditionError(absl::StrCat(
        "vhost export: reopened device ", reopened->describe(),
        " differs in block size or writability from the exported one"));
  }
  uint64_t size = next->size();
  uint64_t old = target_.capacity_bytes.load();
  if (size < old) {
    return absl::FailedPreconditionError(absl::StrCat(
        "vhost export: device shrank from ", old, " to ", size, " bytes; shrinking is not supported"));
  }
  if (size % target_.block_size != 0) {
    return absl::FailedPreconditionError("vhost export: new size is not a whole number of blocks");
  }
  if (reopened) {
    retired_.push_back(std::move(device_));
    device_ = std::move(reopened);
    target_.device.store(device_.get());
  }
  if (size == old) return size;
  std::lock_guard<std::mutex> lock(session_mu_);
  if (session_ != nullptr) RETURN_IF_ERROR(session_->ReopenIoQueues());
  target_.capacity_bytes.store(size, std::memory_order_release);
  spdlog::info("vhost-blk: {} grew from {} to {} bytes", options_.socket_path, old, size);
  if (session_ != nullptr) {
    Status s = session_->NotifyConfigChange();
    if (!s.ok()) {
      spdlog::warn("vhost-blk: could not notify the guest of the new size: {}", s.ToString());
    }
  }
  return size;
}

ExportStats ExportImpl::stats() const {
  ExportStats s;
  const BlkStats& b = target_.stats;
  s.requests = b.requests.load();
  s.read_bytes = b.read_bytes.load();
  s.write_bytes = b.write_bytes.load();
  s.io_errors = b.io_errors.load();
  s.unsupported = b.unsupported.load();
  s.bad_requests = b.bad_requests.load();
  s.bounced = b.bounced.load();
  s.resubmitted = b.resubmitted.load();
  s.capacity_bytes = target_.capacity_bytes.load();
  s.block_size = target_.block_size;
  s.read_only = target_.read_only;
  for (unsigned i = 0; i < options_.num_queues; i++) {
    s.queue_requests.push_back(b.queue_requests[i].load());
  }
  std::lock_guard<std::mutex> lock(session_mu_);
  s.connections = connections_;
  s.connected = session_ != nullptr;
  s.broken_queues = broken_queues_ + (session_ ? session_->broken_queues() : 0);
  return s;
}

}  // namespace

StatusOr<std::unique_ptr<Export>> Export::Start(std::shared_ptr<Device> device,
                                                const ExportOptions& options) {
  if (!device) return absl::InvalidArgumentError("vhost export: no device");
  auto e = std::make_unique<ExportImpl>(std::move(device), options);
  RETURN_IF_ERROR(e->Init());
  return std::unique_ptr<Export>(std::move(e));
}

}  // namespace vdisk::blockdev::vhost
