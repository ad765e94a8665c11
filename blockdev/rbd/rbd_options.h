// Configuration of an RBD pool (from its PoolConfig and the CSI secrets) and of one volume
// (from StorageClass parameters over the pool's defaults). Pure functions, thread-safe.
//
// Pool options (PoolConfig.options; `--pool name=ceph,kind=rbd,conf=/etc/ceph/ceph.conf,...`
// or `--pool 'rbd:<rados-pool>?conf=...&user=...'`):
//   conf, mon_host      the cluster (at least one of them)
//   user, keyring, keyfile   default credentials (keyfile: a file holding just the key)
//   rbd_pool            default rados pool for images and the journal (default "rbd")
//   data_pool           default erasure-coded/replicated data pool (default none)
//   image_features      default "layering,exclusive-lock,object-map,fast-diff,deep-flatten"
//   clone_soft_depth    past this many ancestors a new clone is flattened in the background (4)
//   clone_hard_depth    past this many the request waits for the flatten (8)
//   instance            journal namespace, for several vdisk installations on one rados pool
//   connect_timeout     seconds (default 10)
//   op_timeout          seconds an OSD operation (control call or image I/O) may wait for an
//                       answer before it fails with an error (default 120; 0: wait for ever)
//   abandon_after       seconds after which a "creating" record whose creator went silent is
//                       treated as abandoned and cleaned up (default 120)
//   rbd_cache           true|false (librbd's rbd_cache for Devices the pool opens)
//   diff                auto|exact|object: extent maps (allocated, changed_extents) whole-object
//                       when fast-diff is valid (auto), always exact, or always whole-object
// CSI secrets (override the user/key of the config): userID, userKey.
// A pool has an identity of its own only with user= and keyring= (or keyfile=); one without it
// takes its credentials from the CSI secrets of each call, and a call without them is refused
// (UNAUTHENTICATED), never run as the default identity ceph.conf would pick (client.admin).
//
// StorageClass parameters (VolumeRequest.params): rbdPool, dataPool, imageFeatures,
// cloneSoftDepth, cloneHardDepth (a hard depth alone below the soft default lowers the soft
// one too). `pool` (the vdisk pool name) and namespaced keys (with '/',
// e.g. csi.storage.k8s.io/...) are ignored; anything else is INVALID_ARGUMENT.
#pragma once

#include <cstdint>
#include <string>

#include "blockdev/pool.h"
#include "blockdev/rbd/cluster.h"
#include "blockdev/rbd/rbd_device.h"
#include "blockdev/registry.h"

namespace vdisk::blockdev::rbd {

inline constexpr uint64_t kDefaultFeatures =
    RBD_FEATURE_LAYERING | RBD_FEATURE_EXCLUSIVE_LOCK | RBD_FEATURE_OBJECT_MAP |
    RBD_FEATURE_FAST_DIFF | RBD_FEATURE_DEEP_FLATTEN;

// Per-volume settings.
struct VolumeOptions {
  std::string rbd_pool = "rbd";
  std::string data_pool;
  uint64_t features = kDefaultFeatures;
  int clone_soft_depth = 4;
  int clone_hard_depth = 8;
};

struct RbdPoolOptions {
  std::string name = "rbd";  // the configured (vdisk) pool name
  ClusterOptions cluster;
  VolumeOptions defaults;
  std::string instance;      // journal namespace ("" = default)
  DiffMode diff = DiffMode::kAuto;
  int abandon_after_s = 120;
};

// INVALID_ARGUMENT for unknown options, bad values, no cluster, a user without a key (or a key
// without a user); UNAUTHENTICATED when neither the config nor `secrets` give an identity.
StatusOr<RbdPoolOptions> ParseRbdPoolConfig(const PoolConfig& config, const Params& secrets);

// StorageClass parameters over `defaults`. INVALID_ARGUMENT on unknown keys or bad values.
StatusOr<VolumeOptions> ParseVolumeParams(const VolumeOptions& defaults, const Params& params);

// "layering,exclusive-lock,..." <-> feature bits. INVALID_ARGUMENT for unknown names or
// combinations librbd refuses (object-map without exclusive-lock, fast-diff without object-map).
StatusOr<uint64_t> ParseFeatures(const std::string& list);
std::string FeaturesToString(uint64_t features);

// RADOS pool names vdisk can put into ids: [A-Za-z0-9_-]{1,64}.
bool IsIdSafePoolName(const std::string& pool);

}  // namespace vdisk::blockdev::rbd
