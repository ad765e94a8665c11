#include "csi/pool_health.h"

#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/metrics.h"
#include "spdlog/spdlog.h"

namespace vdisk::csi {

using Clock = std::chrono::steady_clock;

struct PoolHealthMonitor::State {
  std::string name, kind;
  std::shared_ptr<blockdev::PoolSet> pools;
  std::chrono::milliseconds interval, timeout;

  mutable std::mutex mu;
  std::condition_variable cv;
  bool stop = false;
  bool checking = false;
  Clock::time_point check_started;
  std::optional<Status> last;  // unset until the first check ends
  std::optional<blockdev::Capacity> capacity;
  bool reported_bad = false;  // what was last logged

  // The pool's verdict now (under mu).
  Status Verdict(Clock::time_point now) const {
    if (checking && now - check_started > timeout)
      return absl::UnavailableError(absl::StrCat(
          "health check has not returned for ",
          std::chrono::duration_cast<std::chrono::seconds>(now - check_started).count(),
          " s (backend not answering)"));
    return last.value_or(Status());
  }

  void Log(const Status& verdict) {
    if (!verdict.ok() && !reported_bad) {
      spdlog::warn("pool {} is unhealthy: {}; Probe reports the plugin not ready", name,
                   verdict.ToString());
      reported_bad = true;
    } else if (verdict.ok() && reported_bad) {
      spdlog::warn("pool {} is healthy again", name);
      reported_bad = false;
    }
  }

  void Run() {
    std::unique_lock lock(mu);
    while (!stop) {
      checking = true;
      check_started = Clock::now();
      lock.unlock();
      Status s;
      std::optional<blockdev::Capacity> cap;
      auto pool = pools->Get(name, {});
      if (!pool.ok()) {
        s = absl::UnavailableError(absl::StrCat("cannot open: ", pool.status().ToString()));
      } else {
        s = (*pool)->health();
        if (s.ok()) {
          auto c = (*pool)->capacity({});
          if (c.ok()) cap = *c;
        }
      }
      lock.lock();
      checking = false;
      last = s;
      if (cap) capacity = cap;
      Log(s);
      cv.wait_for(lock, interval, [&] { return stop; });
    }
  }
};

PoolHealthMonitor::PoolHealthMonitor(std::shared_ptr<blockdev::PoolSet> pools,
                                     std::chrono::milliseconds interval,
                                     std::chrono::milliseconds timeout) {
  for (const auto& name : pools->names()) {
    auto opened = pools->Get(name, {});
    if (!opened.ok() && !absl::IsUnavailable(opened.status())) {
      spdlog::info("pool {} is not health-checked: it opens only with CSI secrets ({})", name,
                   opened.status().ToString());
      continue;
    }
    auto st = std::make_shared<State>();
    st->name = name;
    st->kind = pools->config(name) ? pools->config(name)->kind : "";
    st->pools = pools;
    st->interval = interval;
    st->timeout = timeout;
    states_.push_back(st);
    std::thread([st] { st->Run(); }).detach();
  }
  // Scrapes read the last results; they never wait for a backend.
  std::vector<std::shared_ptr<State>> states = states_;
  collector_ = metrics::Registry::Default().AddCollector([states](auto& out) {
    metrics::Collected up{"vdisk_pool_up", "1 if the pool's last health check passed in time.",
                          metrics::Type::kGauge, {"pool", "kind"}, {}};
    metrics::Collected total{"vdisk_pool_capacity_bytes", "Size of the pool's backing store.",
                             metrics::Type::kGauge, {"pool"}, {}};
    metrics::Collected avail{"vdisk_pool_available_bytes",
                             "Space available for new volumes in the pool.",
                             metrics::Type::kGauge, {"pool"}, {}};
    const auto now = Clock::now();
    for (const auto& st : states) {
      std::lock_guard lock(st->mu);
      up.samples.push_back({{st->name, st->kind}, st->Verdict(now).ok() ? 1.0 : 0.0});
      if (st->capacity) {
        total.samples.push_back({{st->name}, static_cast<double>(st->capacity->total_bytes)});
        avail.samples.push_back({{st->name}, static_cast<double>(st->capacity->available_bytes)});
      }
    }
    out.push_back(std::move(up));
    out.push_back(std::move(total));
    out.push_back(std::move(avail));
  });
}

PoolHealthMonitor::~PoolHealthMonitor() {
  metrics::Registry::Default().RemoveCollector(collector_);
  for (const auto& st : states_) {
    std::lock_guard lock(st->mu);
    st->stop = true;
    st->cv.notify_all();
  }
}

Status PoolHealthMonitor::Ready() const {
  const auto now = Clock::now();
  for (const auto& st : states_) {
    std::lock_guard lock(st->mu);
    Status v = st->Verdict(now);
    st->Log(v);
    if (!v.ok())
      return absl::FailedPreconditionError(
          absl::StrCat("pool ", st->name, " is unhealthy: ", std::string(v.message())));
  }
  return Status();
}

}  // namespace vdisk::csi
