// Pool kinds, device URI schemes, and configured pools.
//
// Each backend folder (blockdev/<kind>/) has a Register() that registers a factory for its pool
// kind and an opener for its device URI scheme; RegisterBuiltinBackends() (blockdev/backends.cc)
// calls them, one line per backend. The driver and the
// CLI build a PoolSet from configuration; the CSI layer asks it for a Pool by name and never
// names a backend type. Thread-safe.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "blockdev/overprovisioning.h"
#include "blockdev/pool.h"
#include "common/status.h"

namespace vdisk::blockdev {

// One configured pool: `name` chosen by the operator (StorageClass parameter "pool"), `kind`
// the backend, `options` its backend-specific settings (e.g. root=/var/lib/vdisk).
struct PoolConfig {
  std::string name;
  std::string kind;
  Params options;
  // The node this process serves (vdisk-csi --node-id; empty: the host name). Backends that
  // identify the node to their storage (an iSCSI initiator name) derive it from this.
  std::string node_id;
  // Generic pool options, taken out of `options` by PoolSet::Add (blockdev/overprovisioning.h):
  // percent of the pool's capacity its volumes may add up to; 0 = no limit.
  uint32_t overprovisioning_percent = kDefaultOverprovisioningPercent;
};

// Builds a Pool. `secrets` are CSI request secrets (credentials), possibly empty.
using PoolFactory =
    std::function<StatusOr<std::shared_ptr<Pool>>(const PoolConfig& config, const Params& secrets)>;

void RegisterPoolKind(const std::string& kind, PoolFactory factory);
std::vector<std::string> RegisteredPoolKinds();

// Opens a Device from the part of a URI after "<scheme>:" (e.g. for "rbd:pool/image?conf=/x"
// the opener gets "pool/image?conf=/x").
using DeviceOpener =
    std::function<StatusOr<std::unique_ptr<Device>>(const std::string& rest, bool read_only)>;
void RegisterDeviceScheme(const std::string& scheme, DeviceOpener opener);
// Opens "<scheme>:<rest>"; a URI without a registered scheme (e.g. "/dev/loop3", "./disk.img")
// is opened with the "file" scheme. INVALID_ARGUMENT for an unknown scheme.
StatusOr<std::unique_ptr<Device>> OpenDeviceUri(const std::string& uri, bool read_only);

// Registers every backend compiled into vdisk (pool kinds and device schemes). Idempotent.
void RegisterBuiltinBackends();

// Parses a --pool flag: "<kind>:<path-or-spec>" (e.g. "local:/var/lib/vdisk", name defaults to
// the kind) or "name=<n>,kind=<k>,<key>=<value>,...". INVALID_ARGUMENT on bad syntax.
StatusOr<PoolConfig> ParsePoolFlag(std::string_view flag);

// How long PoolSet keeps pools opened with CSI secrets. A pool opened without secrets (the
// pool's configured identity) stays for the life of the PoolSet.
struct PoolCacheOptions {
  // At most this many pools opened with secrets are kept; past it the least recently used of
  // those nobody holds are dropped. A pool a caller still holds is never dropped under it (the
  // bound may be exceeded while that many are in use at once).
  size_t max_with_secrets = 16;
  // A pool opened with secrets and unused for this long is dropped (its cluster connection,
  // and with it the credentials, go once the last Device opened from it closes).
  std::chrono::milliseconds idle_ttl = std::chrono::minutes(5);
};

// The pools one process serves, by name. Pools are opened lazily and cached per (name,
// secrets): a request is only ever served by a pool opened with exactly its own secrets (none
// for none). The cache keys hold a keyed digest of the secrets (credential_digest.h), never the
// secrets.
class PoolSet {
 public:
  explicit PoolSet(PoolCacheOptions cache = {}) : cache_options_(cache) {}
  // INVALID_ARGUMENT on duplicate names, unknown kinds or a bad generic option
  // (overprovisioning=...), which is moved out of config.options into its field.
  Status Add(PoolConfig config);
  // The first pool added is the default (used when a StorageClass names none).
  std::string default_pool() const;
  std::vector<std::string> names() const;
  bool contains(const std::string& name) const;
  const PoolConfig* config(const std::string& name) const;
  // NOT_FOUND for an unknown name; otherwise the factory's result (cached; an error is not).
  StatusOr<std::shared_ptr<Pool>> Get(const std::string& name, const Params& secrets = {});
  // Pools currently cached (for tests and metrics).
  size_t cached() const;

 private:
  struct Entry {
    std::shared_ptr<Pool> pool;
    bool with_secrets = false;
    std::chrono::steady_clock::time_point last_used;
  };
  // mu_ held: drops idle pools opened with secrets past the TTL and past the count bound.
  void EvictLocked(std::chrono::steady_clock::time_point now);

  const PoolCacheOptions cache_options_;
  mutable std::mutex mu_;
  std::vector<PoolConfig> configs_;
  std::map<std::string, Entry> cache_;  // key: name + '\0' + CredentialDigest(secrets)
};

}  // namespace vdisk::blockdev
