// blockdev::Pool — where volumes live: what one StorageClass points at.
//
// A Pool provisions volumes (one per virtual disk), keeps their snapshots, clones them where the
// backend can do it natively (offload), opens them as Devices for the data path, and attaches
// them on a node. The CSI layer talks only to this interface; it never includes a backend
// header. Host-assisted copies (when a backend cannot clone) are done by clone/ with the copy
// engine, using create_volume(pending=true) ... complete_volume().
//
// Thread-safety: every method may be called concurrently. Operations on different objects run
// in parallel; the pool serialises what it must internally (metadata updates), while the CSI
// layer is the one that rejects concurrent operations on the same object with ABORTED.
//
// Persistence: everything returned by a successful call survives a restart of the process.
// A crash mid-call never leaves a half-made volume or snapshot visible under its final name
// and never duplicates one on retry (names are unique within a pool).
//
// Errors (absl codes): NOT_FOUND unknown id, ALREADY_EXISTS name taken, INVALID_ARGUMENT bad
// parameters, OUT_OF_RANGE size beyond the pool's limit or a shrink, RESOURCE_EXHAUSTED no space,
// FAILED_PRECONDITION wrong state (e.g. delete a volume that is attached or pending),
// UNIMPLEMENTED an optional ability the pool does not have (see Capabilities), UNAVAILABLE
// backend unreachable.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "blockdev/device.h"
#include "blockdev/extent.h"
#include "common/status.h"

namespace vdisk::blockdev {

enum class VolumeMode { kBlock, kFilesystem };

// The CSI access modes (same meaning as csi.v1.VolumeCapability.AccessMode.Mode).
enum class AccessMode {
  kSingleNodeWriter,        // RWO
  kSingleNodeReaderOnly,
  kMultiNodeReaderOnly,     // ROX
  kMultiNodeSingleWriter,
  kMultiNodeMultiWriter,    // RWX
  kSingleNodeSingleWriter,  // RWOP
  kSingleNodeMultiWriter,
};
// Every access mode, in the order above (what a pool lists when it serves them all).
inline constexpr AccessMode kAllAccessModes[] = {
    AccessMode::kSingleNodeWriter,     AccessMode::kSingleNodeReaderOnly,
    AccessMode::kMultiNodeReaderOnly,  AccessMode::kMultiNodeSingleWriter,
    AccessMode::kMultiNodeMultiWriter, AccessMode::kSingleNodeSingleWriter,
    AccessMode::kSingleNodeMultiWriter,
};

using Params = std::map<std::string, std::string>;

struct Capabilities {
  // Volume modes and, per mode, access modes the pool can serve.
  std::vector<VolumeMode> modes;
  std::vector<AccessMode> block_access_modes;
  std::vector<AccessMode> filesystem_access_modes;
  // Volume modes attach() can serve on a node (the kernel attachment); empty: every mode in
  // `modes`. A mode outside it is usable only through a user-space attachment (the CSI layer's
  // attach: vhost-user), and `attach_note` says why.
  std::vector<VolumeMode> attach_modes;
  std::string attach_note;
  // Sizes are rounded up to a multiple of this (bytes).
  uint64_t size_granularity = 1 << 20;
  uint64_t max_volume_bytes = 0;  // 0 = no limit beyond capacity
  // Offloads the pool does itself; where false, clone/ falls back to a host copy.
  bool snapshots = false;               // create_snapshot works
  bool clone_from_snapshot = false;     // create_volume with source.kind == kSnapshot
  bool clone_from_volume = false;       // create_volume with source.kind == kVolume
  bool changed_extents = false;         // changed_extents() works
  bool online_expand = true;
  // Node-local pools put their volumes on one node: CSI reports accessible_topology.
  bool node_local = false;
  // Cheap and O(1) clones/snapshots (reflink, RBD clone) rather than copies.
  bool fast_clone = false;
  // The backend admits nodes one by one (an iSCSI ACL): publish() / unpublish() do it, and the
  // CSI driver offers ControllerPublishVolume when a configured pool says so.
  bool controller_publish = false;
  // watch_write_holds() / hold_writes() work: a process taking a group snapshot can ask every
  // process that serves one of the volumes to hold its write acknowledgements (RBD: RADOS
  // watch/notify on a per-image object). See snapshot/group_snapshot.h.
  bool write_holds = false;
  // set_mutable_params() works: the pool stores a volume's mutable parameters (QoS) and applies
  // what its backend can enforce itself (RBD: librbd image QoS).
  bool mutable_params = false;
};

struct VolumeSource {
  enum class Kind { kNone, kSnapshot, kVolume };
  Kind kind = Kind::kNone;
  std::string id;  // pool-local snapshot or volume id
  bool operator==(const VolumeSource&) const = default;
};

struct VolumeRequest {
  std::string name;        // unique within the pool (the CSI name)
  uint64_t size_bytes = 0;  // already rounded to size_granularity by the caller
  VolumeMode mode = VolumeMode::kBlock;
  std::vector<AccessMode> access_modes;
  Params params;           // StorageClass parameters (validated by the pool)
  VolumeSource source;
  // Create the volume as "pending": allocated and writable through open_volume(), but not
  // ready and not returned as a finished volume until complete_volume(). Used for host copies.
  // With a source, a pending create only checks and records the source (Volume.source); the
  // data is the caller's to copy.
  bool pending = false;
};

struct Volume {
  std::string id;  // pool-local, stable, [A-Za-z0-9._-] only
  std::string name;
  uint64_t size_bytes = 0;
  VolumeMode mode = VolumeMode::kBlock;
  std::vector<AccessMode> access_modes;
  Params params;
  VolumeSource source;
  bool pending = false;
  int64_t created_unix_ns = 0;
  // Published to CSI as volume_context.
  Params context;
  // Mutable parameters (CSI mutable_parameters: QoS, blockdev/qos/qos_limits.h) as last set;
  // empty for pools without capabilities().mutable_params.
  Params mutable_params;
  // Health: empty when fine, else a message (e.g. "thin: pool cannot hold the full size").
  std::string condition;
};

struct Snapshot {
  std::string id;  // pool-local, [A-Za-z0-9._-] only
  std::string name;
  std::string source_volume_id;
  uint64_t size_bytes = 0;  // size of the source at snapshot time
  int64_t created_unix_ns = 0;
  bool ready = true;
};

// Snapshots of several volumes of one pool meant as one point in time (a VolumeGroupSnapshot),
// made by snapshot/group_snapshot.h. Members are ordinary snapshots: each can be restored,
// cloned or deleted alone.
struct GroupSnapshot {
  std::string id;  // pool-local, [A-Za-z0-9._-] only
  std::string name;
  std::vector<Snapshot> snapshots;  // in the order of the request's volume ids
  int64_t created_unix_ns = 0;
  bool ready = true;
};

struct Capacity {
  uint64_t available_bytes = 0;
  uint64_t total_bytes = 0;
  uint64_t max_volume_bytes = 0;
};

// What a node sees after attach(): a block device or a directory holding disk.img.
struct Attachment {
  std::string path;
  bool is_block_device = false;
};

// Where requests to hold a volume's write acknowledgements arrive, in a process that serves the
// volume (csi/volume_gates.cc: the volume's IoGate). Thread-safe.
class WriteHoldSink {
 public:
  virtual ~WriteHoldSink() = default;
  // Holds acknowledgements of writes to the volume until the returned object is destroyed.
  virtual StatusOr<std::shared_ptr<void>> HoldWrites() = 0;
};

// The result of Pool::hold_writes().
struct WriteHold {
  std::shared_ptr<void> release;   // destroying it lets the writers go on
  bool every_writer_held = false;  // every writer of every volume acknowledged the hold
  std::string detail;              // why not (for logs)
};

class Pool;
// UNIMPLEMENTED naming the pool and the optional ability it lacks.
Status UnsupportedError(const Pool& pool, std::string_view what);

class Pool {
 public:
  virtual ~Pool() = default;

  virtual std::string name() const = 0;  // the configured pool name
  virtual std::string kind() const = 0;  // "local", "rbd", ...
  virtual Capabilities capabilities() const = 0;
  // Validates StorageClass parameters without creating anything (INVALID_ARGUMENT).
  virtual Status validate_params(const Params& params) const = 0;
  virtual StatusOr<Capacity> capacity(const Params& params) = 0;
  // Whether the backing store answers right now: OK, or why not (UNAVAILABLE: cluster or file
  // system gone, FAILED_PRECONDITION: it changed under the pool). May block while the backend
  // does; the driver calls it from a background monitor (csi/pool_health.h), never on a request
  // path. Default: capacity() succeeds.
  virtual Status health() {
    auto c = capacity({});
    return c.ok() ? Status() : c.status();
  }

  // --- volumes ---
  virtual StatusOr<Volume> create_volume(const VolumeRequest& req) = 0;
  // Marks a pending volume ready (after a host copy into it). Idempotent.
  virtual Status complete_volume(const std::string& id) = 0;
  // Idempotent: OK if the id is unknown. Removes pending volumes too.
  virtual Status delete_volume(const std::string& id) = 0;
  virtual StatusOr<Volume> get_volume(const std::string& id) = 0;
  // nullopt if no volume has this name (a pending one is returned, with pending=true).
  virtual StatusOr<std::optional<Volume>> find_volume_by_name(const std::string& name) = 0;
  // All volumes, ordered by id (stable for paging). Includes pending ones.
  virtual StatusOr<std::vector<Volume>> list_volumes() = 0;
  // Grows the volume to new_size_bytes (rounded by the caller); OUT_OF_RANGE on shrink, i.e.
  // when new_size_bytes is below the current size. Returns the new size. Idempotent: asking for
  // the current size again returns it.
  virtual StatusOr<uint64_t> expand_volume(const std::string& id, uint64_t new_size_bytes) = 0;

  // --- snapshots (UNIMPLEMENTED when !capabilities().snapshots) ---
  virtual StatusOr<Snapshot> create_snapshot(const std::string& volume_id,
                                             const std::string& name) = 0;
  virtual Status delete_snapshot(const std::string& id) = 0;  // idempotent
  virtual StatusOr<Snapshot> get_snapshot(const std::string& id) = 0;
  virtual StatusOr<std::optional<Snapshot>> find_snapshot_by_name(const std::string& name) = 0;
  virtual StatusOr<std::vector<Snapshot>> list_snapshots() = 0;  // ordered by id

  // --- write holds (UNIMPLEMENTED unless capabilities().write_holds) ---
  // Serving side: while the returned object lives, hold requests for the volume from any
  // process reach `sink`. NOT_FOUND for an unknown volume.
  virtual StatusOr<std::shared_ptr<void>> watch_write_holds(const std::string& volume_id,
                                                            std::shared_ptr<WriteHoldSink> sink) {
    return Unsupported("write holds");
  }
  // Snapshotting side: asks every process that watches one of the volumes to hold its write
  // acknowledgements (each hold ends after `lease` at the latest), and says whether that covers
  // every writer of every volume. NOT_FOUND for an unknown volume.
  virtual StatusOr<WriteHold> hold_writes(const std::vector<std::string>& volume_ids,
                                          std::chrono::milliseconds lease) {
    return Unsupported("write holds");
  }

  // --- mutable parameters (UNIMPLEMENTED unless capabilities().mutable_params) ---
  // Replaces the volume's mutable parameters (already validated by the caller) and applies what
  // the backend enforces itself. Idempotent; NOT_FOUND for an unknown volume.
  virtual Status set_mutable_params(const std::string& id, const Params& params) {
    return Unsupported("mutable parameters");
  }

  // --- data path ---
  virtual StatusOr<std::unique_ptr<Device>> open_volume(const std::string& id, bool read_only) = 0;
  virtual StatusOr<std::unique_ptr<Device>> open_snapshot(const std::string& id) = 0;
  // Extents that differ between snapshot `base_id` and snapshot `id` of the same volume
  // (base_id empty: extents allocated in `id`). UNIMPLEMENTED when !changed_extents; callers
  // then fall back to reading and hashing.
  virtual StatusOr<ExtentList> changed_extents(const std::string& base_id,
                                               const std::string& id) = 0;

  // --- node side ---
  // Makes the volume usable on this node: Block mode gives a block device path, Filesystem
  // mode a directory containing disk.img. Idempotent for the same (id, read_only).
  // `secrets` are the CSI node-stage secrets (never logged).
  virtual StatusOr<Attachment> attach(const std::string& id, bool read_only,
                                      const Params& secrets) = 0;
  // Undoes attach(). Idempotent.
  virtual Status detach(const std::string& id, const Attachment& attachment) = 0;
  // After expand_volume(): makes an attached volume show its new size on this node.
  virtual Status node_expand(const std::string& id, const Attachment& attachment) = 0;

  // --- controller publish (Capabilities::controller_publish) ---
  // Admits node `node_id` (a CSI node id) to the volume at the backend; returns what the node
  // needs to know (CSI publish_context). Idempotent. NOT_FOUND unknown or pending volume.
  // Default: nothing to do.
  virtual StatusOr<Params> publish(const std::string& id, const std::string& node_id, bool read_only) {
    return Params{};
  }
  // Undoes publish(); an empty node_id means every node. Idempotent (OK for an unknown volume).
  virtual Status unpublish(const std::string& id, const std::string& node_id) { return Status(); }

 protected:
  Status Unsupported(std::string_view what) const { return UnsupportedError(*this, what); }
};

std::string_view ToString(VolumeMode mode);
std::string_view ToString(AccessMode mode);
// The inverse of ToString ("block", "SINGLE_NODE_WRITER", ...), for stored records.
// INVALID_ARGUMENT for an unknown name.
StatusOr<VolumeMode> ParseVolumeMode(const std::string& s);
StatusOr<AccessMode> ParseAccessMode(const std::string& s);
// "none", "snapshot", "volume" and back.
std::string_view ToString(VolumeSource::Kind kind);
StatusOr<VolumeSource::Kind> ParseSourceKind(const std::string& s);

}  // namespace vdisk::blockdev
