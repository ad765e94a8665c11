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
constexpr uint8_t kClsLockExclusive = 1;  // ClsLockType::EXCLUSIVE

// Input of cls_lock's "assert_locked" method (cls_lock_assert_op): a versioned struct
// (version 1, compat 1, u32 length) of name, type (u8), cookie and tag, strings as u32 length
// plus bytes, little-endian. librados' rados_lock_exclusive() locks with an empty tag.
std::string AssertLockedInput(const std::string& name, const std::string& cookie) {
  auto put32 = [](std::string* out, uint32_t v) {
    for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  };
  auto put_string = [&](std::string* out, const std::string& v) {
    put32(out, static_cast<uint32_t>(v.size()));
    out->append(v);
  };
  std::string body;
  put_string(&body, name);
  body.push_back(static_cast<char>(kClsLockExclusive));
  put_string(&body, cookie);
  put_string(&body, "");  // tag
  std::string out;
  out.push_back(1);  // struct_v
  out.push_back(1);  // struct_compat
  put32(&out, static_cast<uint32_t>(body.size()));
  out.append(body);
  return out;
}

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
// Adds the omap removals and sets to a write op (librados copies keys and values into the op).
void AddChanges(rados_write_op_t op, const std::map<std::string, std::string>& set,
                const std::vector<std::string>& remove) {
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
  if (!rm.empty()) rados_write_op_omap_rm_keys2(op, rm.data(), rm_lens.data(), rm.size());
  if (!keys.empty())
    rados_write_op_omap_set2(op, keys.data(), vals.data(), key_lens.data(), val_lens.data(),
                             keys.size());
}
}  // namespace

Journal::Journal(const IoCtx* io, std::string object, std::chrono::seconds lease)
    : io_(io), object_(std::move(object)), cookie_(RandomHex(8)), lease_(lease) {}

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
  if (holder_.load() != std::this_thread::get_id())
    return absl::InternalError(absl::StrCat("journal ", object_, " updated without its lock"));
  WriteOp op;
  // The fence: the op fails as a whole unless this client still holds the lock (its lease
  // unexpired) under this journal's cookie.
  const std::string fence = AssertLockedInput(kLockName, cookie_);
  int fence_rval = 0;
  rados_write_op_exec(op.op, "lock", "assert_locked", fence.data(), fence.size(), &fence_rval);
  AddChanges(op.op, set, remove);
  int r = rados_write_op_operate2(op.op, io_->get(), object_.c_str(), nullptr, 0);
  if (r == -EBUSY || fence_rval == -EBUSY)
    return absl::AbortedError(absl::StrCat(
        "journal ", object_, ": this process no longer holds the journal lock (its ",
        lease_.count(), " s lease ran out or was broken, and another process may have taken "
        "over); nothing was written, retry"));
  if (r < 0) return RadosError(r, absl::StrCat("updating journal ", object_));
  return Status();
}

StatusOr<bool> Journal::UpdateIfUnchanged(const std::string& key, const std::string& expected,
                                          const std::map<std::string, std::string>& set,
                                          const std::vector<std::string>& remove) {
  WriteOp op;
  int cmp_rval = 0;
  rados_write_op_omap_cmp2(op.op, key.c_str(), LIBRADOS_CMPXATTR_OP_EQ, expected.data(),
                           /*key_len=*/key.size(), /*val_len=*/expected.size(), &cmp_rval);
  AddChanges(op.op, set, remove);
  int r = rados_write_op_operate2(op.op, io_->get(), object_.c_str(), nullptr, 0);
  if (r == -ECANCELED || cmp_rval == -ECANCELED) return false;
  if (r < 0) return RadosError(r, absl::StrCat("updating journal ", object_));
  return true;
}

StatusOr<Journal::Lock> Journal::Acquire() {
  std::unique_lock<std::mutex> held(mu_);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  auto backoff = std::chrono::milliseconds(5);
  for (;;) {
    struct timeval lease = {static_cast<time_t>(lease_.count()), 0};
    // MAY_RENEW: if an earlier unlock of ours failed, the lock is taken again with a fresh lease
    // (without it the call answers EEXIST and the old lease keeps running).
    int r = rados_lock_exclusive(io_->get(), object_.c_str(), kLockName, cookie_.c_str(),
                                 "vdisk journal update", &lease, LIBRADOS_LOCK_FLAG_MAY_RENEW);
    if (r == 0 || r == -EEXIST) {
      holder_ = std::this_thread::get_id();
      return Lock(this, std::move(held));
    }
    if (r != -EBUSY) return RadosError(r, absl::StrCat("locking journal ", object_));
    if (std::chrono::steady_clock::now() > deadline)
      return absl::UnavailableError(
          absl::StrCat("journal ", object_, " is locked by another vdisk process"));
    std::this_thread::sleep_for(backoff);
    backoff = std::min(backoff * 2, std::chrono::milliseconds(200));
  }
}

Journal::Lock::~Lock() {
  if (!journal_) return;
  journal_->holder_ = std::thread::id();
  rados_unlock(journal_->io_->get(), journal_->object_.c_str(), kLockName,
               journal_->cookie_.c_str());
}

}  // namespace vdisk::blockdev::rbd
