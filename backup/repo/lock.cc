#include "backup/repo/lock.h"

#include <unistd.h>

#include <ctime>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "backup/repo/crypto.h"
#include "backup/repo/repository.h"
#include "spdlog/spdlog.h"

namespace vdisk::backup {

namespace {

using nlohmann::json;

std::string Hostname() {
  char buf[256] = {};
  ::gethostname(buf, sizeof buf - 1);
  return buf;
}

struct LockInfo {
  std::string key;
  bool exclusive = false;
  std::string host, purpose;
  int64_t pid = 0, created = 0, refreshed = 0;
};

StatusOr<std::vector<LockInfo>> ReadLocks(ObjectStore& store) {
  ASSIGN_OR_RETURN(auto objects, store.List(kLocksPrefix));
  std::vector<LockInfo> out;
  for (const auto& o : objects) {
    auto text = store.Get(o.key);
    if (absl::IsNotFound(text.status())) continue;  // removed meanwhile
    RETURN_IF_ERROR(text.status());
    json j = json::parse(*text, nullptr, false);
    LockInfo l;
    l.key = o.key;
    if (j.is_object()) {
      l.exclusive = j.value("mode", "") == "exclusive";
      l.host = j.value("host", "");
      l.purpose = j.value("purpose", "");
      l.pid = j.value("pid", int64_t{0});
      l.created = j.value("created", int64_t{0});
      l.refreshed = j.value("refreshed", int64_t{0});
    } else {
      l.exclusive = true;  // unreadable (torn/foreign): refreshed=0 makes it stale
    }
    out.push_back(std::move(l));
  }
  return out;
}

bool IsStale(const LockInfo& l, const LockOptions& o) {
  return std::time(nullptr) - l.refreshed > o.stale_after.count();
}

std::string Describe(const LockInfo& l) {
  return absl::StrCat(l.exclusive ? "exclusive" : "shared", " lock held by ", l.host, " pid ",
                      l.pid, " for '", l.purpose, "' since ", l.created, " (", l.key, ")");
}

// The first live lock (other than `own`) that conflicts with `mode`, or nullptr.
const LockInfo* Conflict(const std::vector<LockInfo>& locks, const std::string& own,
                         RepoLock::Mode mode, const LockOptions& o) {
  for (const auto& l : locks) {
    if (l.key == own || IsStale(l, o)) continue;
    if (mode == RepoLock::Mode::kExclusive || l.exclusive) return &l;
  }
  return nullptr;
}

}  // namespace

RepoLock::RepoLock(ObjectStore& store, Mode mode, std::string key, std::string purpose,
                   LockOptions options)
    : store_(store),
      mode_(mode),
      key_(std::move(key)),
      purpose_(std::move(purpose)),
      options_(options),
      created_(std::time(nullptr)) {}

Status RepoLock::Write() {
  json j = {{"mode", mode_ == Mode::kExclusive ? "exclusive" : "shared"},
            {"host", Hostname()},
            {"pid", static_cast<int64_t>(::getpid())},
            {"purpose", purpose_},
            {"created", created_},
            {"refreshed", static_cast<int64_t>(std::time(nullptr))}};
  return store_.Put(key_, j.dump());
}

StatusOr<std::unique_ptr<RepoLock>> RepoLock::Acquire(ObjectStore& store, Mode mode,
                                                      const std::string& purpose,
                                                      LockOptions options) {
  const auto deadline = std::chrono::steady_clock::now() + options.wait;
  std::string key = absl::StrCat(kLocksPrefix, RandomHex(16));
  while (true) {
    ASSIGN_OR_RETURN(auto before, ReadLocks(store));
    const LockInfo* c = Conflict(before, key, mode, options);
    if (!c) {
      std::unique_ptr<RepoLock> lock(new RepoLock(store, mode, key, purpose, options));
      RETURN_IF_ERROR(lock->Write());
      ASSIGN_OR_RETURN(auto after, ReadLocks(store));
      c = Conflict(after, key, mode, options);
      if (!c) {
        lock->refresher_.emplace(options.refresh, [l = lock.get()] {
          Status s = l->Write();
          if (!s.ok()) spdlog::warn("refreshing repository lock {}: {}", l->key_, s.ToString());
        });
        return lock;
      }
      // Someone raced us: withdraw (the destructor deletes our object) and report/retry.
    }
    std::string holder = Describe(*c);
    if (std::chrono::steady_clock::now() >= deadline)
      return absl::AbortedError(absl::StrCat("repository ", store.describe(), " is locked: ",
                                             holder));
    spdlog::info("waiting for repository lock: {}", holder);
    std::this_thread::sleep_for(std::chrono::seconds(2));
  }
}

RepoLock::~RepoLock() {
  refresher_.reset();
  Status s = store_.Delete(key_);
  if (!s.ok()) spdlog::warn("removing repository lock {}: {}", key_, s.ToString());
}

StatusOr<int> RepoLock::RemoveStaleLocks() {
  ASSIGN_OR_RETURN(auto locks, ReadLocks(store_));
  int removed = 0;
  for (const auto& l : locks) {
    if (l.key == key_ || !IsStale(l, options_)) continue;
    RETURN_IF_ERROR(store_.Delete(l.key));
    ++removed;
  }
  return removed;
}

StatusOr<std::vector<std::string>> RepoLock::RemoveLocks(ObjectStore& store, bool all,
                                                         LockOptions options) {
  ASSIGN_OR_RETURN(auto locks, ReadLocks(store));
  std::vector<std::string> removed;
  for (const auto& l : locks) {
    if (!all && !IsStale(l, options)) continue;
    RETURN_IF_ERROR(store.Delete(l.key));
    removed.push_back(Describe(l));
  }
  return removed;
}

}  // namespace vdisk::backup
