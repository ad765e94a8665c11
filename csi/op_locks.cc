#include "csi/op_locks.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace vdisk::csi {

namespace {
void Normalize(std::vector<std::string>& keys) {
  keys.erase(std::remove(keys.begin(), keys.end(), std::string()), keys.end());
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
}
}  // namespace

OpLocks::Guard::Guard(Guard&& other) noexcept
    : owner_(other.owner_), exclusive_(std::move(other.exclusive_)), shared_(std::move(other.shared_)) {
  other.owner_ = nullptr;
}

OpLocks::Guard& OpLocks::Guard::operator=(Guard&& other) noexcept {
  if (this != &other) {
    Release();
    owner_ = other.owner_;
    exclusive_ = std::move(other.exclusive_);
    shared_ = std::move(other.shared_);
    other.owner_ = nullptr;
  }
  return *this;
}

OpLocks::Guard::~Guard() { Release(); }

void OpLocks::Guard::Release() {
  if (owner_ != nullptr) owner_->Release(exclusive_, shared_);
  owner_ = nullptr;
  exclusive_.clear();
  shared_.clear();
}

StatusOr<OpLocks::Guard> OpLocks::Acquire(std::vector<std::string> exclusive,
                                          std::vector<std::string> shared) {
  Normalize(exclusive);
  Normalize(shared);
  // A key wanted both ways is taken exclusively.
  shared.erase(std::remove_if(shared.begin(), shared.end(),
                              [&](const std::string& k) {
                                return std::binary_search(exclusive.begin(), exclusive.end(), k);
                              }),
               shared.end());
  std::lock_guard lock(mu_);
  for (const auto& k : exclusive) {
    if (held_.contains(k))
      return absl::AbortedError(absl::StrCat("an operation on ", k, " is already in progress"));
  }
  for (const auto& k : shared) {
    auto it = held_.find(k);
    if (it != held_.end() && it->second < 0)
      return absl::AbortedError(absl::StrCat("an operation on ", k, " is already in progress"));
  }
  for (const auto& k : exclusive) held_[k] = -1;
  for (const auto& k : shared) held_[k] += 1;
  return Guard(this, std::move(exclusive), std::move(shared));
}

size_t OpLocks::held() const {
  std::lock_guard lock(mu_);
  return held_.size();
}

void OpLocks::Release(const std::vector<std::string>& exclusive, const std::vector<std::string>& shared) {
  std::lock_guard lock(mu_);
  for (const auto& k : exclusive) held_.erase(k);
  for (const auto& k : shared) {
    auto it = held_.find(k);
    if (it != held_.end() && --it->second <= 0) held_.erase(it);
  }
}

}  // namespace vdisk::csi
