// Pool kinds, device URI schemes, and configured pools.
//
// Each backend folder (blockdev/<kind>/) has a Register() that registers a factory for its pool
// kind and an opener for its device URI scheme; RegisterBuiltinBackends() (blockdev/backends.cc)
// calls them, one line per backend. The driver and the
// CLI build a PoolSet from configuration; the CSI layer asks it for a Pool by name and never
// names a backend type. Thread-safe.
#pragma once

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

// The pools one process serves, by name. Pools are opened lazily and cached per secrets.
class PoolSet {
 public:
  // INVALID_ARGUMENT on duplicate names, unknown kinds or a bad generic option
  // (overprovisioning=...), which is moved out of config.options into its field.
  Status Add(PoolConfig config);
  // The first pool added is the default (used when a StorageClass names none).
  std::string default_pool() const;
  std::vector<std::string> names() const;
  bool contains(const std::string& name) const;
  const PoolConfig* config(const std::string& name) const;
  // NOT_FOUND for an unknown name; otherwise the factory's result (cached).
  StatusOr<std::shared_ptr<Pool>> Get(const std::string& name, const Params& secrets = {});

 private:
  mutable std::mutex mu_;
  std::vector<PoolConfig> configs_;
  std::map<std::string, std::shared_ptr<Pool>> cache_;  // key: name + '\0' + hash(secrets)
};

}  // namespace vdisk::blockdev
