// What the RBD pool's journal (journal.h) stores about each volume and snapshot, and the
// pool-local ids, which name the rados pool and image so an id alone locates the data:
//
//   volume id    <rados-pool>.<image>             e.g. rbd.vdisk-0123456789abcdef
//   snapshot id  <rados-pool>.<image>.<snap>      e.g. rbd.vdisk-0123456789abcdef.snap-89abcdef01234567
//
// Images are named "vdisk-<16 hex>", snapshots "snap-<16 hex>", hidden clone-source snapshots
// "clone-<16 hex>" (random, so they never collide with anything the operator made). Records
// are JSON; unknown fields are ignored (forward compatible). Pure functions, thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "blockdev/pool.h"
#include "common/status.h"

namespace vdisk::blockdev::rbd {

// Life cycle of a record. Only kPending / kReady volumes and kReady snapshots are visible.
//   volume:   creating -> pending -> ready -> deleted (image kept while snapshots or clones
//             still need it, removed by the pool's garbage collection)
//   snapshot: creating -> ready -> deleting
enum class RecordState { kCreating, kPending, kReady, kDeleted, kDeleting };

struct VolumeRecord {
  std::string id;
  std::string name;
  std::string rbd_pool;
  std::string image;
  std::string image_id;  // filled once the image exists
  std::string data_pool;
  uint64_t features = 0;
  uint64_t size_bytes = 0;
  VolumeMode mode = VolumeMode::kBlock;
  std::vector<AccessMode> access_modes;
  Params params;
  Params mutable_params;  // QoS (blockdev/qos/qos_limits.h), also set as the image's librbd QoS
  VolumeSource source;
  RecordState state = RecordState::kCreating;
  int64_t created_unix_ns = 0;
  int64_t updated_unix_ns = 0;  // heartbeat while creating
  std::string owner;            // the pool instance that is creating it
  // A background flatten is due (clone deeper than the soft limit).
  bool flatten_pending = false;
  // Ancestors of the image when it was made (0 after a flatten); -1 unknown (older records).
  // Never below the truth (a chain only shrinks), so a clone within the limits by this count
  // is within them.
  int chain_depth = -1;
  // Clone from a volume: the hidden snapshot on the source image (rbd_pool/image_id).
  std::string clone_snap;
  std::string clone_src_pool;
  std::string clone_src_image_id;
};

struct SnapshotRecord {
  std::string id;
  std::string name;
  std::string source_volume_id;
  std::string rbd_pool;
  std::string image;
  std::string image_id;
  std::string snap;
  uint64_t size_bytes = 0;
  RecordState state = RecordState::kCreating;
  int64_t created_unix_ns = 0;
  int64_t updated_unix_ns = 0;
  std::string owner;
  int chain_depth = -1;  // the volume's chain_depth when the snapshot was taken (-1 unknown)
};

std::string ToJson(const VolumeRecord& r);
std::string ToJson(const SnapshotRecord& r);
StatusOr<VolumeRecord> VolumeRecordFromJson(const std::string& json);
StatusOr<SnapshotRecord> SnapshotRecordFromJson(const std::string& json);


// Journal keys.
std::string VolumeKey(const std::string& id);     // "v/<id>"
std::string VolumeNameKey(const std::string& name);  // "vn/<name>"
std::string SnapshotKey(const std::string& id);   // "s/<id>"
std::string SnapshotNameKey(const std::string& name);  // "sn/<name>"


// Ids.
struct VolumeRef {
  std::string rbd_pool;
  std::string image;
};
struct SnapshotRef {
  std::string rbd_pool;
  std::string image;
  std::string snap;
};
std::string MakeVolumeId(const std::string& rbd_pool, const std::string& image);
std::string MakeSnapshotId(const std::string& rbd_pool, const std::string& image,
                           const std::string& snap);
// NOT_FOUND for anything this pool could not have produced.
StatusOr<VolumeRef> ParseVolumeId(const std::string& id);
StatusOr<SnapshotRef> ParseSnapshotId(const std::string& id);

std::string NewImageName();      // "vdisk-<16 hex>"
std::string NewSnapName();       // "snap-<16 hex>"
std::string NewCloneSnapName();  // "clone-<16 hex>"


int64_t NowUnixNs();

}  // namespace vdisk::blockdev::rbd
