// The local pool: volumes as thin raw images in directories under one root (the embedded default
// backend, kind "local", e.g. `--pool local:/var/lib/vdisk`).
//
// Every volume is <root>/volumes/<id>/ holding a sparse `disk.img` (Filesystem mode: the node
// bind-mounts that directory; Block mode: a loop device over disk.img). Snapshots are read-only
// images under <root>/snapshots/. Where the root's file system can reflink (XFS with reflink=1,
// btrfs) snapshots and clones are FICLONE reflinks, O(1) whatever the size; elsewhere snapshots
// are sparse copies made by the pool (copy engine) and clone offload is reported as unavailable,
// so clone/ does a host copy. Metadata is one JSON record per object, committed by an atomic
// rename after the data is in place; see layout.h for the crash-safety protocol.
//
// Semantics worth knowing (docs/local-pool.md has the rest):
// - Snapshots and clones never depend on their source: deleting a volume keeps its snapshots
//   (and volumes cloned from it) intact.
// - Sizes are rounded up to 1 MiB. A volume larger than the free space is created thin anyway;
//   its `condition` then starts with "thin:" (a warning, not a fault). Other non-empty
//   conditions ("abnormal: ...") are faults.
// - StorageClass parameters: `preallocation=none|full` (full: fallocate the whole image, fails
//   with RESOURCE_EXHAUSTED without space; ignored for clones). `pool` and namespaced keys
//   (containing '/', e.g. csi.storage.k8s.io/...) are ignored; anything else is INVALID_ARGUMENT.
// - A pending create with a source records the source only; the caller fills the data.
// - attach() is idempotent per (volume, read_only): two read-only attaches of one volume share
//   one loop device, and detach() of it releases it for both. Callers that hand one attachment
//   to several users (several read-only publishes) must count them and detach on the last.
// - Ids that are not [A-Za-z0-9._-]{1,64} (or are "." / "..") get INVALID_ARGUMENT everywhere,
//   so no id can name a path outside the root.
// - Several processes may open the same root (controller and node plugin on one host):
//   records live on disk, writers take an flock, readers need none.
#pragma once

#include <memory>
#include <string>

#include "blockdev/pool.h"
#include "blockdev/registry.h"
#include "common/status.h"

namespace vdisk::blockdev::local {

inline constexpr uint64_t kSizeGranularity = 1ULL << 20;

struct LocalPoolOptions {
  std::string name = "local";
  std::string root;  // absolute; created if missing
  // auto: reflink where the file system can; on: refuse to open without reflink (every snapshot
  // and clone O(1) and point-in-time); off: never reflink (tests and benchmarks of the fallback).
  enum class Reflink { kAuto, kOn, kOff } reflink = Reflink::kAuto;
};

// From a PoolConfig: options root=<absolute dir> (required), reflink=auto|on|off.
// INVALID_ARGUMENT for a missing/relative root, a bad value or an unknown option.
StatusOr<LocalPoolOptions> ParseLocalPoolConfig(const PoolConfig& config);

// Opens the pool at options.root, creating the layout on first use, and sweeps what interrupted
// operations left behind (staging entries nobody holds, data without a committed record).
// FAILED_PRECONDITION: reflink=on without reflink support, or a non-empty directory that is not
// a vdisk pool. The Pool is thread-safe (see blockdev/pool.h).
StatusOr<std::shared_ptr<Pool>> OpenLocalPool(const LocalPoolOptions& options);

}  // namespace vdisk::blockdev::local
