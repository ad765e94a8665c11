// Which pool a pool-aware backup or restore talks to, and which snapshot it names.
//
// A pool comes from a --pool flag ("local:/var/lib/vdisk", "name=..,kind=..,key=value") or from
// the vdisk-csi configuration file (the `pools:` list of deploy/config.yaml, the same file the
// driver reads), picked by name. A snapshot is a pool-local id or a CSI snapshot handle
// ("v1.snap.<pool>.<id>", what a VolumeSnapshotContent's status.snapshotHandle holds), whose
// pool part selects the pool from the configuration file. Pure functions, thread-safe.
#pragma once

#include <string>

#include "blockdev/registry.h"
#include "common/status.h"

namespace vdisk::backup {

struct SnapshotRef {
  std::string pool;      // from a CSI handle; empty for a plain id
  std::string local_id;  // the pool's own snapshot id
};

// "v1.snap.<pool>.<id>" -> {pool, id}; anything else -> {"", ref}. INVALID_ARGUMENT if empty.
StatusOr<SnapshotRef> ParseSnapshotRef(const std::string& ref);

// The `pools:` entries of a vdisk-csi config file (YAML/JSON): name, kind, and either an
// `options:` map or backend keys beside them.
StatusOr<std::vector<blockdev::PoolConfig>> LoadPoolConfigs(const std::string& path);

// Resolves the pool: `pool_flag` if given, else the entry of `config_file` named `name` (the
// first entry when `name` is empty). INVALID_ARGUMENT if neither is given, NOT_FOUND for an
// unknown name.
StatusOr<blockdev::PoolConfig> ResolvePool(const std::string& pool_flag,
                                           const std::string& config_file,
                                           const std::string& name);

}  // namespace vdisk::backup
