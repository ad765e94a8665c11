#include "blockdev/registry.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "blockdev/credential_digest.h"

namespace vdisk::blockdev {

namespace {
std::mutex& KindsMu() {
  static std::mutex mu;
  return mu;
}
std::map<std::string, PoolFactory>& Kinds() {
  static std::map<std::string, PoolFactory> kinds;
  return kinds;
}

std::map<std::string, DeviceOpener>& Schemes() {
  static std::map<std::string, DeviceOpener> schemes;
  return schemes;
}

}  // namespace

void RegisterPoolKind(const std::string& kind, PoolFactory factory) {
  std::lock_guard lock(KindsMu());
  Kinds()[kind] = std::move(factory);
}

std::vector<std::string> RegisteredPoolKinds() {
  std::lock_guard lock(KindsMu());
  std::vector<std::string> out;
  for (const auto& [k, f] : Kinds()) out.push_back(k);
  return out;
}

void RegisterDeviceScheme(const std::string& scheme, DeviceOpener opener) {
  std::lock_guard lock(KindsMu());
  Schemes()[scheme] = std::move(opener);
}

StatusOr<std::unique_ptr<Device>> OpenDeviceUri(const std::string& uri, bool read_only) {
  std::string scheme = "file";
  std::string rest = uri;
  auto colon = uri.find(':');
  auto slash = uri.find('/');
  if (colon != std::string::npos && colon > 0 && (slash == std::string::npos || colon < slash)) {
    scheme = uri.substr(0, colon);
    rest = uri.substr(colon + 1);
    if (rest.starts_with("//")) rest = rest.substr(2);
  }
  DeviceOpener opener;
  {
    std::lock_guard lock(KindsMu());
    auto it = Schemes().find(scheme);
    if (it == Schemes().end())
      return absl::InvalidArgumentError(absl::StrCat("unknown device scheme '", scheme, "' in '", uri, "'"));
    opener = it->second;
  }
  return opener(rest, read_only);
}

StatusOr<PoolConfig> ParsePoolFlag(std::string_view flag_sv) {
  const std::string flag(flag_sv);
  PoolConfig cfg;
  if (flag.find('=') == std::string::npos || flag.find(':') < flag.find('=')) {
    auto colon = flag.find(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == flag.size())
      return absl::InvalidArgumentError(
          absl::StrCat("--pool wants <kind>:<spec> or name=..,kind=..: got '", flag, "'"));
    cfg.kind = std::string(flag.substr(0, colon));
    cfg.name = cfg.kind;
    std::string spec(flag.substr(colon + 1));
    if (cfg.kind == "local") {
      cfg.options["root"] = spec;
    } else {
      cfg.options["spec"] = spec;
    }
    return cfg;
  }
  for (auto item : absl::StrSplit(flag, ',', absl::SkipEmpty())) {
    std::pair<std::string, std::string> kv = absl::StrSplit(item, absl::MaxSplits('=', 1));
    if (kv.first.empty() || item.find('=') == std::string::npos)
      return absl::InvalidArgumentError(absl::StrCat("--pool: bad item '", item, "'"));
    if (kv.first == "name") cfg.name = kv.second;
    else if (kv.first == "kind") cfg.kind = kv.second;
    else cfg.options[kv.first] = kv.second;
  }
  if (cfg.kind.empty()) return absl::InvalidArgumentError("--pool: kind= is required");
  if (cfg.name.empty()) cfg.name = cfg.kind;
  return cfg;
}

Status PoolSet::Add(PoolConfig config) {
  {
    std::lock_guard lock(KindsMu());
    if (!Kinds().contains(config.kind))
      return absl::InvalidArgumentError(absl::StrCat("unknown pool kind '", config.kind, "'"));
  }
  if (config.name.empty() ||
      config.name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") !=
          std::string::npos)
    return absl::InvalidArgumentError(
        absl::StrCat("pool name '", config.name, "' must be non-empty [A-Za-z0-9_-]"));
  if (auto it = config.options.find(kOverprovisioningOption); it != config.options.end()) {
    auto percent = ParseOverprovisioning(it->second);
    if (!percent.ok())
      return absl::InvalidArgumentError(absl::StrCat("pool '", config.name, "': ", percent.status().message()));
    config.overprovisioning_percent = *percent;
    config.options.erase(it);
  }
  std::lock_guard lock(mu_);
  for (const auto& c : configs_)
    if (c.name == config.name)
      return absl::InvalidArgumentError(absl::StrCat("duplicate pool name '", config.name, "'"));
  configs_.push_back(std::move(config));
  return Status();
}

std::string PoolSet::default_pool() const {
  std::lock_guard lock(mu_);
  return configs_.empty() ? std::string() : configs_.front().name;
}

std::vector<std::string> PoolSet::names() const {
  std::lock_guard lock(mu_);
  std::vector<std::string> out;
  for (const auto& c : configs_) out.push_back(c.name);
  return out;
}

bool PoolSet::contains(const std::string& name) const { return config(name) != nullptr; }

const PoolConfig* PoolSet::config(const std::string& name) const {
  std::lock_guard lock(mu_);
  for (const auto& c : configs_)
    if (c.name == name) return &c;
  return nullptr;
}

StatusOr<std::shared_ptr<Pool>> PoolSet::Get(const std::string& name, const Params& secrets) {
  PoolConfig cfg;
  const std::string key = absl::StrCat(name, std::string("\0", 1), CredentialDigest(secrets));
  const auto now = std::chrono::steady_clock::now();
  {
    std::lock_guard lock(mu_);
    EvictLocked(now);
    auto it = cache_.find(key);
    if (it != cache_.end()) {
      it->second.last_used = now;
      return it->second.pool;
    }
    const PoolConfig* found = nullptr;
    for (const auto& c : configs_)
      if (c.name == name) found = &c;
    if (!found) return absl::NotFoundError(absl::StrCat("no pool named '", name, "'"));
    cfg = *found;
  }
  PoolFactory factory;
  {
    std::lock_guard lock(KindsMu());
    factory = Kinds().at(cfg.kind);
  }
  ASSIGN_OR_RETURN(std::shared_ptr<Pool> pool, factory(cfg, secrets));
  std::lock_guard lock(mu_);
  auto [it, inserted] = cache_.emplace(key, Entry{pool, !secrets.empty(), now});
  it->second.last_used = std::chrono::steady_clock::now();
  if (inserted) EvictLocked(it->second.last_used);
  return it->second.pool;
}

size_t PoolSet::cached() const {
  std::lock_guard lock(mu_);
  return cache_.size();
}

void PoolSet::EvictLocked(std::chrono::steady_clock::time_point now) {
  // Only pools opened with secrets, and only when nobody outside the cache holds them: a pool
  // in use keeps serving its callers (and its Devices keep its connection) until released.
  size_t with_secrets = 0;
  std::vector<std::map<std::string, Entry>::iterator> idle;
  for (auto it = cache_.begin(); it != cache_.end();) {
    const Entry& e = it->second;
    if (!e.with_secrets) {
      ++it;
      continue;
    }
    const bool unused = e.pool.use_count() == 1;
    if (unused && now - e.last_used >= cache_options_.idle_ttl) {
      it = cache_.erase(it);
      continue;
    }
    ++with_secrets;
    if (unused) idle.push_back(it);
    ++it;
  }
  if (with_secrets <= cache_options_.max_with_secrets) return;
  std::sort(idle.begin(), idle.end(),
            [](const auto& a, const auto& b) { return a->second.last_used < b->second.last_used; });
  const size_t excess = with_secrets - cache_options_.max_with_secrets;
  for (size_t i = 0; i < excess && i < idle.size(); ++i) cache_.erase(idle[i]);
}

}  // namespace vdisk::blockdev
