#include "csi/provisioning_limit.h"

#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "blockdev/overprovisioning.h"

namespace vdisk::csi {

ProvisioningLimits::Reservation::Reservation(Reservation&& o) noexcept
    : owner_(std::exchange(o.owner_, nullptr)), pool_(std::move(o.pool_)), bytes_(std::exchange(o.bytes_, 0)) {}

ProvisioningLimits::Reservation& ProvisioningLimits::Reservation::operator=(Reservation&& o) noexcept {
  if (this != &o) {
    Release();
    owner_ = std::exchange(o.owner_, nullptr);
    pool_ = std::move(o.pool_);
    bytes_ = std::exchange(o.bytes_, 0);
  }
  return *this;
}

ProvisioningLimits::Reservation::~Reservation() { Release(); }

void ProvisioningLimits::Reservation::Release() {
  if (owner_ == nullptr) return;
  std::lock_guard lock(owner_->mu_);
  auto it = owner_->reserved_.find(pool_);
  if (it != owner_->reserved_.end()) {
    it->second -= std::min(it->second, bytes_);
    if (it->second == 0) owner_->reserved_.erase(it);
  }
  owner_ = nullptr;
}

StatusOr<uint64_t> ProvisioningLimits::PromisedLocked(const std::string& pool_name, blockdev::Pool& pool) {
  ASSIGN_OR_RETURN(std::vector<blockdev::Volume> volumes, pool.list_volumes());
  uint64_t promised = 0;
  for (const auto& v : volumes) promised += v.size_bytes;
  if (auto it = reserved_.find(pool_name); it != reserved_.end()) promised += it->second;
  return promised;
}

StatusOr<ProvisioningLimits::Reservation> ProvisioningLimits::Reserve(const std::string& pool_name,
                                                                      blockdev::Pool& pool, uint32_t percent,
                                                                      uint64_t total_bytes, uint64_t extra_bytes) {
  if (percent == 0) return Reservation();
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(uint64_t promised, PromisedLocked(pool_name, pool));
  const uint64_t limit = blockdev::PromiseLimit(percent, total_bytes);
  if (promised > limit || extra_bytes > limit - promised)
    return absl::ResourceExhaustedError(absl::StrCat(
        "pool '", pool_name, "' cannot promise ", extra_bytes, " more bytes: its volumes already add up to ",
        promised, " of the ", limit, " it may promise (overprovisioning=", percent, "% of its capacity of ",
        total_bytes, " bytes)"));
  reserved_[pool_name] += extra_bytes;
  return Reservation(this, pool_name, extra_bytes);
}

StatusOr<uint64_t> ProvisioningLimits::Promisable(const std::string& pool_name, blockdev::Pool& pool,
                                                  uint32_t percent, uint64_t total_bytes) {
  if (percent == 0) return std::numeric_limits<uint64_t>::max();
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(uint64_t promised, PromisedLocked(pool_name, pool));
  const uint64_t limit = blockdev::PromiseLimit(percent, total_bytes);
  return promised >= limit ? 0 : limit - promised;
}

}  // namespace vdisk::csi
