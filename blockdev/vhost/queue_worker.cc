#include "blockdev/vhost/queue_worker.h"

#include <errno.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <cstring>

#include "blockdev/vhost/blk_processor.h"

namespace vdisk::blockdev::vhost {

namespace {

constexpr uint64_t kStopTag = 0;
constexpr uint64_t kKickTag = 1;
constexpr uint64_t kCompletionTag = 2;
constexpr uint64_t kReopenTag = 3;

void DrainEventfd(int fd) {
  uint64_t v;
  while (::read(fd, &v, sizeof(v)) < 0 && errno == EINTR) {
  }
}

Status EpollAdd(int ep, int fd, uint64_t tag) {
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = tag;
  if (::epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) return LastErrnoStatus("epoll_ctl");
  return Status();
}

}  // namespace

// The worker thread's state: lives on that thread's stack for the life of the loop.
struct QueueWorker::Loop {
  QueueWorker* w;
  SplitVirtqueue vq;
  UniqueFd ep;
  std::unique_ptr<IoQueue> io;
  std::unique_ptr<BlkProcessor> proc;
  int completion_fd = -1;
  bool broken = false;

  Status OpenIo() {
    ASSIGN_OR_RETURN(io, w->params_.target->device.load()->open_queue(vq.num()));
    proc = std::make_unique<BlkProcessor>(w->params_.target, w->params_.index, &vq, io.get(),
                                          w->params_.limits);
    completion_fd = io->completion_fd();
    if (completion_fd >= 0) RETURN_IF_ERROR(EpollAdd(ep.get(), completion_fd, kCompletionTag));
    return Status();
  }

  // Waits for every in-flight request, answers them, and closes the IoQueue.
  void CloseIo() {
    if (!io) return;
    Status d = io->drain();
    if (!d.ok()) spdlog::error("vhost-blk queue {}: draining: {}", w->params_.index, d.ToString());
    Notify();
    if (completion_fd >= 0) ::epoll_ctl(ep.get(), EPOLL_CTL_DEL, completion_fd, nullptr);
    proc.reset();
    io.reset();
    completion_fd = -1;
  }

  void Process() {
    if (broken) return;
    Status s = proc->Process();
    if (!s.ok()) {
      spdlog::error("vhost-blk queue {}: {}; no further requests are taken from it",
                    w->params_.index, s.ToString());
      broken = true;
      w->broken_.store(true);
    }
  }

  // Runs completion callbacks; returns how many ran. `force` polls even when nothing is in
  // flight, to consume a completion eventfd signal whose CQE was already reaped (else epoll
  // keeps firing).
  unsigned Reap(bool force = false) {
    if (!force && io->in_flight() == 0) return 0;
    auto n = io->poll(0, 0);
    if (!n.ok()) {
      spdlog::error("vhost-blk queue {}: poll: {}", w->params_.index, n.status().ToString());
      return 0;
    }
    return *n;
  }

  // Takes new requests and completes finished ones until neither makes progress, then tells
  // the driver. Kicks stay suppressed only while requests are in flight (whose completions wake
  // us); completions reaped here (fast I/O, or errors the engine reports without an eventfd
  // signal) loop back to Process(), which re-arms the kick once the queue is idle.
  void Service(bool completed) {
    Reap(completed);
    for (int round = 0; round < 1024; round++) {
      Process();
      if (Reap() == 0) break;
    }
    Notify();
  }

  void Notify() {
    if (proc->Publish() && !w->params_.call->Signal()) {
      spdlog::warn("vhost-blk queue {}: call eventfd write failed", w->params_.index);
    }
  }
};

QueueWorker::QueueWorker(QueueWorkerParams params) : params_(std::move(params)) {}

StatusOr<std::unique_ptr<QueueWorker>> QueueWorker::Start(QueueWorkerParams params) {
  std::unique_ptr<QueueWorker> w(new QueueWorker(std::move(params)));
  w->last_avail_idx_ = w->params_.vring.last_avail_idx;
  int sfd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (sfd < 0) return LastErrnoStatus("eventfd");
  w->stop_fd_.reset(sfd);
  int rfd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (rfd < 0) return LastErrnoStatus("eventfd");
  w->reopen_fd_.reset(rfd);
  std::promise<Status> started;
  auto ready = started.get_future();
  w->thread_ = std::thread([raw = w.get(), &started] { raw->Run(&started); });
  Status s = ready.get();
  if (!s.ok()) {
    w->thread_.join();
    w->stopped_ = true;
    return s;
  }
  return w;
}

QueueWorker::~QueueWorker() { Stop(); }

uint16_t QueueWorker::Stop() {
  if (!stopped_) {
    uint64_t one = 1;
    ssize_t n = ::write(stop_fd_.get(), &one, sizeof(one));
    (void)n;
    if (thread_.joinable()) thread_.join();
    stopped_ = true;
  }
  return last_avail_idx_;
}

Status QueueWorker::ReopenIoQueue() {
  if (stopped_) return Status();
  std::promise<Status> done;
  auto result = done.get_future();
  {
    std::lock_guard<std::mutex> lock(reopen_mu_);
    if (exited_) return Status();
    reopen_done_ = &done;
  }
  uint64_t one = 1;
  if (::write(reopen_fd_.get(), &one, sizeof(one)) != sizeof(one)) {
    std::lock_guard<std::mutex> lock(reopen_mu_);
    reopen_done_ = nullptr;
    return LastErrnoStatus("eventfd write");
  }
  return result.get();
}

void QueueWorker::Run(std::promise<Status>* started) {
  const unsigned index = params_.index;
  auto vq_or = SplitVirtqueue::Create(*params_.memory, params_.vring);
  if (!vq_or.ok()) {
    started->set_value(vq_or.status());
    return;
  }
  Loop loop{this, std::move(vq_or).value(), UniqueFd(), nullptr, nullptr};
  if (loop.vq.has_resubmit()) {
    spdlog::info("vhost-blk: queue {} resumes at avail {}: an earlier back end left {} request(s) "
                 "in flight, submitting them again", index, loop.vq.last_avail_idx(),
                 loop.vq.last_avail_idx() - loop.vq.used_idx());
  }
  loop.ep.reset(::epoll_create1(EPOLL_CLOEXEC));
  if (!loop.ep.valid()) {
    started->set_value(LastErrnoStatus("epoll_create1"));
    return;
  }
  Status s = EpollAdd(loop.ep.get(), stop_fd_.get(), kStopTag);
  if (s.ok()) s = EpollAdd(loop.ep.get(), reopen_fd_.get(), kReopenTag);
  if (s.ok() && params_.kick.valid()) s = EpollAdd(loop.ep.get(), params_.kick.get(), kKickTag);
  if (s.ok()) s = loop.OpenIo();
  if (!s.ok()) {
    started->set_value(Annotate(s, "starting the queue"));
    return;
  }
  start_avail_idx_ = loop.vq.last_avail_idx();
  started->set_value(Status());  // `started` dangles after this point

  loop.Service(false);  // the driver may have queued requests before the kick fd arrived
  bool stop = false;
  epoll_event events[5];
  while (!stop) {
    int timeout = -1;
    if (!params_.kick.valid()) timeout = 1;
    const bool poll_engine = loop.completion_fd < 0 && loop.io->in_flight() > 0;
    if (poll_engine) timeout = 0;
    int n = ::epoll_wait(loop.ep.get(), events, 5, timeout);
    if (n < 0) {
      if (errno == EINTR) continue;
      spdlog::error("vhost-blk queue {}: epoll_wait: {}", index, strerror(errno));
      break;
    }
    bool reopen = false;
    bool completed = false;
    for (int i = 0; i < n; i++) {
      switch (events[i].data.u64) {
        case kStopTag: stop = true; break;
        case kKickTag: DrainEventfd(params_.kick.get()); break;
        case kReopenTag: DrainEventfd(reopen_fd_.get()); reopen = true; break;
        default: completed = true; break;
      }
    }
    if (poll_engine && n == 0) {
      auto r = loop.io->poll(1, 1);  // an engine without an fd: wait briefly for completions
      if (!r.ok()) spdlog::error("vhost-blk queue {}: poll: {}", index, r.status().ToString());
    }
    if (reopen) {
      loop.CloseIo();
      Status r = loop.OpenIo();
      if (!r.ok()) {
        spdlog::error("vhost-blk queue {}: reopening the I/O queue: {}", index, r.ToString());
        stop = true;
      }
      std::lock_guard<std::mutex> lock(reopen_mu_);
      if (reopen_done_ != nullptr) {
        reopen_done_->set_value(r);
        reopen_done_ = nullptr;
      }
      if (!r.ok()) break;
    }
    if (stop) break;
    loop.Service(completed);
  }
  // Let everything in flight finish into the used ring; guest memory is still mapped.
  loop.CloseIo();
  last_avail_idx_ = loop.vq.last_avail_idx();
  std::lock_guard<std::mutex> lock(reopen_mu_);
  exited_ = true;
  if (reopen_done_ != nullptr) {
    reopen_done_->set_value(absl::UnavailableError("queue stopped"));
    reopen_done_ = nullptr;
  }
}

}  // namespace vdisk::blockdev::vhost
