#include "blockdev/qos/io_gate.h"

#include <algorithm>
#include <thread>

#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

namespace vdisk::blockdev::qos {

void IoGate::SetLimits(const QosLimits& limits) {
  {
    std::lock_guard lock(mu_);
    const double now = std::chrono::duration<double>(std::chrono::steady_clock::now() - epoch_).count();
    limits_ = limits;
    const uint32_t s = limits.burst_seconds;
    iops_.Configure(limits.iops, s, now);
    read_iops_.Configure(limits.read_iops, s, now);
    write_iops_.Configure(limits.write_iops, s, now);
    bps_.Configure(limits.bps, s, now);
    read_bps_.Configure(limits.read_bps, s, now);
    write_bps_.Configure(limits.write_bps, s, now);
    limited_.store(!limits.unlimited());
  }
  spdlog::info("io gate {}: QoS {}", name_, Describe(limits));
  WakeAll();  // parked operations may start now (or must wait longer)
}

QosLimits IoGate::limits() const {
  std::lock_guard lock(mu_);
  return limits_;
}

double IoGate::TryAdmit(OpKind kind, uint64_t bytes) {
  if (kind == OpKind::kUnmetered || !limited()) return 0;
  std::lock_guard lock(mu_);
  const double now = std::chrono::duration<double>(std::chrono::steady_clock::now() - epoch_).count();
  RateBuckets* ops = kind == OpKind::kRead ? &read_iops_ : &write_iops_;
  RateBuckets* byte = kind == OpKind::kRead ? &read_bps_ : &write_bps_;
  RateBuckets* all[] = {&iops_, ops, &bps_, byte};
  double wait = 0;
  for (RateBuckets* b : all) {
    b->Refill(now);
    wait = std::max(wait, b->SecondsUntilStart());
  }
  if (wait > 0) {
    stats_.delayed++;
    return wait;
  }
  iops_.Take(1);
  ops->Take(1);
  bps_.Take(static_cast<double>(bytes));
  byte->Take(static_cast<double>(bytes));
  stats_.admitted++;
  return 0;
}

StatusOr<std::shared_ptr<void>> IoGate::Hold(std::chrono::milliseconds wait) {
  holds_.fetch_add(1);
  {
    std::lock_guard lock(mu_);
    stats_.holds++;
  }
  // Polls that entered before the hold may still be running completions: wait them out, so that
  // once we return no acknowledgement can be given until the hold ends.
  const auto deadline = std::chrono::steady_clock::now() + wait;
  while (in_poll_.load() > 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      Release();
      return absl::DeadlineExceededError(absl::StrCat("io gate ", name_, ": a queue kept polling; cannot hold"));
    }
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
  auto self = shared_from_this();
  return std::shared_ptr<void>(self.get(), [self](IoGate* g) { g->Release(); });
}

void IoGate::Release() {
  if (holds_.fetch_sub(1) == 1) WakeAll();
}

bool IoGate::EnterPoll() {
  in_poll_.fetch_add(1);
  if (holds_.load() > 0) {
    in_poll_.fetch_sub(1);
    return false;
  }
  return true;
}

void IoGate::Register(Waker* w) {
  std::lock_guard lock(wakers_mu_);
  wakers_.insert(w);
}

void IoGate::Unregister(Waker* w) {
  std::lock_guard lock(wakers_mu_);
  wakers_.erase(w);
}

void IoGate::WakeAll() {
  std::lock_guard lock(wakers_mu_);
  for (Waker* w : wakers_) w->Wake();
}

void IoGate::Attach(std::shared_ptr<void> attachment) {
  std::lock_guard lock(attach_mu_);
  attachment_ = std::move(attachment);
}

bool IoGate::attached() const {
  std::lock_guard lock(attach_mu_);
  return attachment_ != nullptr;
}

GateStats IoGate::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

std::shared_ptr<IoGate> GateRegistry::Get(const std::string& key) {
  std::lock_guard lock(mu_);
  if (auto g = gates_[key].lock()) return g;
  auto g = std::make_shared<IoGate>(key);
  gates_[key] = g;
  return g;
}

std::shared_ptr<IoGate> GateRegistry::Find(const std::string& key) {
  std::lock_guard lock(mu_);
  auto it = gates_.find(key);
  return it == gates_.end() ? nullptr : it->second.lock();
}

std::vector<std::pair<std::string, std::shared_ptr<IoGate>>> GateRegistry::List() {
  std::lock_guard lock(mu_);
  std::vector<std::pair<std::string, std::shared_ptr<IoGate>>> out;
  for (auto it = gates_.begin(); it != gates_.end();) {
    if (auto g = it->second.lock()) {
      out.emplace_back(it->first, std::move(g));
      ++it;
    } else {
      it = gates_.erase(it);
    }
  }
  return out;
}

}  // namespace vdisk::blockdev::qos
