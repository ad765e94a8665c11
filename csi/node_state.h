// Node-side state that must survive a driver restart: for each volume staged on this node, where
// it is staged, how the pool attached it, and every target path it is published at.
//
// One JSON file per volume under <dir>/volumes/, written atomically (temp + fsync + rename), so
// a crash leaves either the old record or the new one. The node service writes a record BEFORE
// it mounts anything (intent first), so after a crash or a restart every mount vdisk may have
// made is known and NodeUnstage/NodeUnpublish can undo it. Records hold no secrets (mount flags
// are kept only as a fingerprint).
//
// Thread-safety: calls on different volumes may run concurrently; the node service serialises
// calls on one volume with its operation locks.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "blockdev/pool.h"
#include "common/status.h"

namespace vdisk::csi {

struct PublishRecord {
  std::string target_path;
  bool readonly = false;
  // Fingerprint (hex SHA-256) of the capability's mount flags, to tell a compatible repeat
  // from an incompatible one without storing the flags themselves.
  std::string flags_fingerprint;
  // Set when a read-only publish of a read-write staged Block volume needed its own read-only
  // attachment (a read-only bind mount does not stop writes to a device node).
  std::optional<blockdev::Attachment> own_attachment;
  // attach: vhost-user: the export directory bind-mounted at the target (vhost_publish.h).
  std::string vhost_dir;
  // The access mode of the publish request (absent in records written before it was kept).
  std::optional<blockdev::AccessMode> access;
};

struct VolumeRecord {
  std::string volume_id;  // the CSI id
  std::string staging_path;
  blockdev::VolumeMode mode = blockdev::VolumeMode::kBlock;
  blockdev::AccessMode access = blockdev::AccessMode::kSingleNodeWriter;
  bool readonly = false;  // attached read-only (reader-only access mode)
  std::string flags_fingerprint;
  blockdev::Attachment attachment;  // what the pool's attach() returned (empty for vhost-user)
  // attach: vhost-user (node_attach.h): every publish is a vhost-user-blk socket served by the
  // plugin with this many queues; 0 for the kernel attachment.
  unsigned vhost_queues = 0;
  std::vector<PublishRecord> publishes;

  PublishRecord* FindPublish(const std::string& target_path);
};

class NodeStateStore {
 public:
  // `dir` is created on Init() (mode 0700).
  explicit NodeStateStore(std::string dir);
  Status Init();
  const std::string& dir() const { return dir_; }

  // nullopt if the volume has no record. INTERNAL (DATA_LOSS) for an unreadable record.
  StatusOr<std::optional<VolumeRecord>> Load(const std::string& volume_id) const;
  Status Save(const VolumeRecord& record);
  // OK if there is no record.
  Status Remove(const std::string& volume_id);
  // Every record, ordered by volume id.
  StatusOr<std::vector<VolumeRecord>> LoadAll() const;

  // Serialisation, exposed for tests.
  static std::string Serialize(const VolumeRecord& record);
  static StatusOr<VolumeRecord> Parse(const std::string& json);

 private:
  StatusOr<std::string> PathFor(const std::string& volume_id) const;
  std::string dir_;
};

// Hex SHA-256 of the mount flags (order-insensitive); "" for no flags.
std::string FlagsFingerprint(std::vector<std::string> flags);

}  // namespace vdisk::csi
