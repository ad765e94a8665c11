#include "blockdev/rbd/owner_lease.h"

#include <rados/librados.h>
#include <sys/time.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

namespace vdisk::blockdev::rbd {

namespace {
constexpr const char* kLockName = "vdisk.owners";
constexpr const char* kTag = "vdisk";  // shared holders must agree on it
}  // namespace

OwnerLease::OwnerLease(const IoCtx* io, std::string object, std::string owner,
                       std::chrono::seconds lease)
    : io_(io), object_(std::move(object)), owner_(std::move(owner)), lease_(lease) {}

OwnerLease::~OwnerLease() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
    cv_.notify_all();
  }
  if (renewer_.joinable()) renewer_.join();
  if (held_) rados_unlock(io_->get(), object_.c_str(), kLockName, owner_.c_str());
}

Status OwnerLease::Take() {
  struct timeval duration = {static_cast<time_t>(lease_.count()), 0};
  int r = rados_lock_shared(io_->get(), object_.c_str(), kLockName, owner_.c_str(), kTag,
                            "vdisk pool instance creating objects", &duration,
                            LIBRADOS_LOCK_FLAG_MAY_RENEW);
  if (r < 0)
    return RadosError(r, absl::StrCat("taking the owner lease on ", object_));
  held_ = true;
  renewed_ = std::chrono::steady_clock::now();
  return Status();
}

Status OwnerLease::Ensure() {
  std::lock_guard lock(mu_);
  if (held_) return Status();
  RETURN_IF_ERROR(Take());
  renewer_ = std::thread([this] { Renew(); });
  return Status();
}

void OwnerLease::Renew() {
  std::unique_lock lock(mu_);
  while (!cv_.wait_for(lock, lease_ / 4, [&] { return stop_; })) {
    const auto since = std::chrono::steady_clock::now() - renewed_;
    Status s = Take();
    if (!s.ok()) {
      spdlog::warn("rbd: renewing the owner lease of {} on {} failed: {}", owner_, object_,
                   s.ToString());
    } else if (since > lease_) {
      spdlog::warn("rbd: the owner lease of {} on {} had run out ({} ms since the last renewal); "
                   "records this process was creating may have been taken over",
                   owner_, object_,
                   std::chrono::duration_cast<std::chrono::milliseconds>(since).count());
    }
  }
}

bool OwnerLease::Alive(const std::string& owner) const {
  size_t tag_len = 64, clients_len = 1024, cookies_len = 1024, addrs_len = 1024;
  for (int attempt = 0; attempt < 6; ++attempt) {
    std::vector<char> tag(tag_len), clients(clients_len), cookies(cookies_len), addrs(addrs_len);
    int exclusive = 0;
    ssize_t n = rados_list_lockers(io_->get(), object_.c_str(), kLockName, &exclusive, tag.data(),
                                   &tag_len, clients.data(), &clients_len, cookies.data(),
                                   &cookies_len, addrs.data(), &addrs_len);
    if (n == -ERANGE) continue;  // the lengths now say what is needed
    if (n == -ENOENT) return false;  // no journal object: nobody holds anything
    if (n < 0) {
      spdlog::warn("rbd: listing the owner leases on {}: {}", object_, std::strerror(static_cast<int>(-n)));
      return true;
    }
    const char* p = cookies.data();
    for (ssize_t i = 0; i < n; ++i) {
      std::string cookie(p);
      if (cookie == owner) return true;
      p += cookie.size() + 1;
    }
    return false;
  }
  return true;
}

}  // namespace vdisk::blockdev::rbd
