#include "blockdev/rbd/journal.h"

#include <sys/time.h>

#include <cerrno>
#include <algorithm>
#include <chrono>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"

namespace vdisk::blockdev::rbd {

namespace {
constexpr const char* kLockName = "vdisk.journal";
constexpr int kLeaseSeconds = 10;  // critical sections are a few omap ops

std::string RandomHex(int bytes) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  std::string out;
  static const char* digits = "0123456789abcdef";
  for (int i = 0; i < bytes; ++i) {
    unsigned v = rng() & 0xff;
    out.push_back(digits[v >> 4]);
    out.push_back(digits[v & 15]);
  }
  return out;
}

struct ReadOp {
  rados_read_op_t op = rados_create_read_op();
  ~ReadOp() { rados_release_read_op(op); }
};
struct WriteOp {
  rados_write_op_t op = rados_create_write_op();
  ~WriteOp() { rados_release_write_op(op); }
};
}  // namespace

Journal::Journal(const IoCtx* io, std::string object)
    : io_(io), object_(std::move(object)), cookie_(RandomHex(8)) {}

StatusOr<std::optional<std::string>> Journal::Get(const std::string& key) const {
  ReadOp op;
  rados_omap_iter_t iter = nullptr;
  int prval = 0;
  const char* keys[] = {key.c_str()};
  size_t key_lens[] = {key.size()};
  rados_read_op_omap_get_vals_by_keys2(op.op, keys, 1, key_lens, &iter, &prval);
  int r = rados_read_op_operate(op.op, io_->get(), object_.c_str(), 0);
  if (r == -ENOENT) {
    if (iter) rados_omap_get_end(iter);
    return std::optional<std::string>();
  }
  if (r < 0 || prval < 0) {
    if (iter) rados_omap_get_end(iter);
    return RadosError(r < 0 ? r : prval, absl::StrCat("reading journal ", object_));
  }
  std::optional<std::string> out;
  char *k = nullptr, *v = nullptr;
  size_t klen = 0, vlen = 0;
  while (rados_omap_get_next2(iter, &k, &v, &klen, &vlen) == 0 && k) {
    if (std::string(k, klen) == key) out = std::string(v ? v : "", vlen);
  }
  rados_omap_get_end(iter);
  return out;
}

StatusOr<std::map<std::string, std::string>> Journal::List(const std::string& prefix) const {
  std::map<std::string, std::string> out;
  std::string after;
  for (;;) {
    ReadOp op;
    rados_omap_iter_t iter = nullptr;
    unsigned char more = 0;
    int prval = 0;
    rados_read_op_omap_get_vals2(op.op, after.c_str(), prefix.c_str(), 1000, &iter, &more,
                                 &prval);
    int r = rados_read_op_operate(op.op, io_->get(), object_.c_str(), 0);
    if (r == -ENOENT) {
      if (iter) rados_omap_get_end(iter);
      return out;
    }
    if (r < 0 || prval < 0) {
      if (iter) rados_omap_get_end(iter);
      return RadosError(r < 0 ? r : prval, absl::StrCat("listing journal ", object_));
    }
    char *k = nullptr, *v = nullptr;
    size_t klen = 0, vlen = 0;
    size_t n = 0;
    while (rados_omap_get_next2(iter, &k, &v, &klen, &vlen) == 0 && k) {
      after.assign(k, klen);
      out.emplace(after, std::string(v ? v : "", vlen));
      ++n;
    }
    rados_omap_get_end(iter);
    if (!more || n == 0) break;
  }
  return out;
}

Status Journal::Update(const std::map<std::string, std::string>& set,
                       const std::vector<std::string>& remove) {
  if (set.empty() && remove.empty()) return Status();
  WriteOp op;
  std::vector<const char*> keys, vals, rm;
  std::vector<size_t> key_lens, val_lens, rm_lens;
  for (const auto& [k, v] : set) {
    keys.push_back(k.c_str());
    key_lens.push_back(k.size());
    vals.push_back(v.c_str());
    val_lens.push_back(v.size());
  }
  for (const auto& k : remove) {
    rm.push_back(k.c_str());
    rm_lens.push_back(k.size());
  }
  if (!rm.empty()) rados_write_op_omap_rm_keys2(op.op, rm.data(), rm_lens.data(), rm.size());
  if (!keys.empty())
    rados_write_op_omap_set2(op.op, keys.data(), vals.data(), key_lens.data(), val_lens.data(),
                             keys.size());
  int r = rados_write_op_operate2(op.op, io_->get(), object_.c_str(), nullptr, 0);
  if (r < 0) return RadosError(r, absl::StrCat("updating journal ", object_));
  return Status();
}

StatusOr<Journal::Lock> Journal::Acquire() {
  std::unique_lock<std::mutex> held(mu_);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  auto backoff = std::chrono::milliseconds(5);
  for (;;) {
    struct timeval lease = {kLeaseSeconds, 0};
    int r = rados_lock_exclusive(io_->get(), object_.c_str(), kLockName, cookie_.c_str(),
                                 "vdisk journal update", &lease, 0);
    if (r == 0 || r == -EEXIST) return Lock(this, std::move(held));
    if (r != -EBUSY) return RadosError(r, absl::StrCat("locking journal ", object_));
    if (std::chrono::steady_clock::now() > deadline)
      return absl::UnavailableError(
          absl::StrCat("journal ", object_, " is locked by another vdisk process"));
    std::this_thread::sleep_for(backoff);
    backoff = std::min(backoff * 2, std::chrono::milliseconds(200));
  }
}

Journal::Lock::~Lock() {
  if (journal_)
    rados_unlock(journal_->io_->get(), journal_->object_.c_str(), kLockName,
                 journal_->cookie_.c_str());
}

}  // namespace vdisk::blockdev::rbd
