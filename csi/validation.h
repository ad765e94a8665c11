// Request validation shared by the Controller and Node services: names, volume capabilities,
// capacity ranges, StorageClass parameters and mount flags. Every function returns the exact
// CSI error code for bad input (INVALID_ARGUMENT for malformed or unsupported fields,
// OUT_OF_RANGE for a capacity the pool cannot satisfy). Pure functions, thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "blockdev/pool.h"
#include "common/status.h"
#include "csi/csi.pb.h"

namespace vdisk::csi {

inline constexpr size_t kMaxNameBytes = 128;  // CSI's general string limit
inline constexpr uint64_t kDefaultVolumeBytes = 1ull << 30;  // size when the CO asks for none

// The StorageClass parameter that selects a configured pool.
inline constexpr char kPoolParam[] = "pool";
// Parameters the Kubernetes sidecars add for the driver's information; never passed to a pool.
inline constexpr char kCoParamPrefix[] = "csi.storage.k8s.io/";

// A required CO-chosen name: non-empty, at most 128 bytes, none of the control characters the
// spec bans (U+0000-U+0008, U+000B, U+000C, U+000E-U+001F, U+007F-U+009F).
Status ValidateName(const std::string& name, const std::string& what);

// One parsed VolumeCapability.
struct Capability {
  blockdev::VolumeMode mode = blockdev::VolumeMode::kBlock;
  blockdev::AccessMode access = blockdev::AccessMode::kSingleNodeWriter;
  std::string fs_type;                  // Filesystem only; informational for vdisk
  std::vector<std::string> mount_flags;  // Filesystem only; never logged
};

// INVALID_ARGUMENT when the access type or the access mode is missing or unknown.
StatusOr<Capability> ParseCapability(const ::csi::v1::VolumeCapability& cap,
                                     const std::string& what = "volume_capability");

// All capabilities of a request: at least one, all of the same volume mode (a vdisk volume is
// either a block device or a directory). Access modes are de-duplicated.
struct CapabilitySet {
  blockdev::VolumeMode mode = blockdev::VolumeMode::kBlock;
  std::vector<blockdev::AccessMode> access_modes;
  std::vector<Capability> items;
};
StatusOr<CapabilitySet> ParseCapabilities(
    const google::protobuf::RepeatedPtrField<::csi::v1::VolumeCapability>& caps,
    const std::string& what = "volume_capabilities");

// INVALID_ARGUMENT naming the first mode / access mode the pool cannot serve.
Status CheckSupported(const blockdev::Capabilities& pool_caps, blockdev::VolumeMode mode,
                      const std::vector<blockdev::AccessMode>& access_modes);
// Same, as a yes/no with the reason in `why`.
bool IsSupported(const blockdev::Capabilities& pool_caps, blockdev::VolumeMode mode,
                 const std::vector<blockdev::AccessMode>& access_modes, std::string* why);

// Reader-only access modes (the volume is attached and published read-only).
bool IsReadOnlyAccess(blockdev::AccessMode mode);

// Conversions between the CSI enum and blockdev's.
StatusOr<blockdev::AccessMode> FromCsiAccessMode(int mode);
::csi::v1::VolumeCapability::AccessMode::Mode ToCsiAccessMode(blockdev::AccessMode mode);

// Chooses the size of a new or grown volume from an optional CapacityRange:
//  - negative values or limit < required: INVALID_ARGUMENT;
//  - the size is the smallest multiple of `granularity` >= max(required, min_bytes), or
//    `default_bytes` when nothing is required (clamped to the limit, and at least min_bytes);
//  - OUT_OF_RANGE when no multiple of `granularity` fits in [max(required, min_bytes), limit]
//    or the result exceeds `max_bytes` (0: no maximum).
// `min_bytes` is the size of a content source (a restored volume is never smaller than it).
StatusOr<uint64_t> ChooseCapacity(const ::csi::v1::CapacityRange* range, uint64_t granularity,
                                  uint64_t default_bytes, uint64_t max_bytes,
                                  uint64_t min_bytes = 0);

// The pool to use for a request: parameters["pool"] or the default pool. INVALID_ARGUMENT if
// the name is not well formed.
StatusOr<std::string> PoolFromParams(const blockdev::Params& params, const std::string& default_pool);

// Parameters as a pool sees them: without "pool", the node attach keys (node_attach.h) and the
// CO's csi.storage.k8s.io/ keys.
blockdev::Params PoolParams(const blockdev::Params& params);

// Mount flags vdisk honours on a bind mount (ro, nosuid, nodev, noexec, noatime, nodiratime,
// relatime, strictatime, rw, bind, rbind, defaults). Returns MS_* bits; INVALID_ARGUMENT for
// anything else (the flag is named but its value never echoed: flags may hold secrets).
StatusOr<unsigned long> MountFlagBits(const std::vector<std::string>& flags);

// Copies a protobuf map into Params.
blockdev::Params ToParams(const google::protobuf::Map<std::string, std::string>& map);

}  // namespace vdisk::csi
