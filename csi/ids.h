// CSI volume and snapshot ids: opaque to the CO, self-describing to vdisk.
//
// An id names a configured pool and an object inside it, with a format version first so the
// encoding can change without breaking ids already stored in PersistentVolumes:
//
//     v1.vol.<pool>.<pool-local id>        volume
//     v1.snap.<pool>.<pool-local id>       snapshot
//     v1.grp.<pool>.<pool-local id>        group snapshot (VolumeGroupSnapshot)
//
// Pool names are [A-Za-z0-9_-] (no dot), pool-local ids are [A-Za-z0-9._-] (never "." or ".."
// or starting with a dot), so the first three dots split the id unambiguously and every id is
// safe as a file name. The whole id is at most 128 bytes (the CSI string limit).
//
// Decoding is strict: anything that is not an id we could have produced (hand-made ids, other
// drivers' ids, a snapshot id passed as a volume id) returns NOT_FOUND — to the CO such an id
// names an object that does not exist. An empty id is INVALID_ARGUMENT (a missing field).
// Pure functions, thread-safe.
#pragma once

#include <string>

#include "common/status.h"

namespace vdisk::csi {

enum class ObjectKind { kVolume, kSnapshot, kGroupSnapshot };

struct ObjectId {
  ObjectKind kind = ObjectKind::kVolume;
  std::string pool;      // configured pool name
  std::string local_id;  // the pool's own id for the object
  bool operator==(const ObjectId&) const = default;
};

inline constexpr size_t kMaxIdBytes = 128;

// INVALID_ARGUMENT if pool or local_id are not of the allowed alphabet; OUT_OF_RANGE if the
// result would exceed kMaxIdBytes (a pool that makes ids that long is misconfigured).
StatusOr<std::string> EncodeId(const ObjectId& id);
StatusOr<std::string> EncodeVolumeId(const std::string& pool, const std::string& local_id);
StatusOr<std::string> EncodeSnapshotId(const std::string& pool, const std::string& local_id);

StatusOr<std::string> EncodeGroupSnapshotId(const std::string& pool, const std::string& local_id);

// INVALID_ARGUMENT for an empty id, NOT_FOUND for anything not produced by EncodeId with the
// expected kind. `what` names the field in messages ("volume_id", "source_volume_id", ...).
StatusOr<ObjectId> DecodeVolumeId(const std::string& id, const std::string& what = "volume_id");
StatusOr<ObjectId> DecodeSnapshotId(const std::string& id,
                                    const std::string& what = "snapshot_id");
StatusOr<ObjectId> DecodeGroupSnapshotId(const std::string& id,
                                         const std::string& what = "group_snapshot_id");

// The alphabets, exposed for validation elsewhere.
bool IsValidPoolName(const std::string& name);
bool IsValidLocalId(const std::string& id);

}  // namespace vdisk::csi
