#include "csi/objects.h"

#include "csi/ids.h"
#include "snapshot/group_snapshot.h"

namespace vdisk::csi {

google::protobuf::Timestamp ToTimestamp(int64_t unix_ns) {
  google::protobuf::Timestamp t;
  t.set_seconds(unix_ns / 1000000000);
  t.set_nanos(static_cast<int32_t>(unix_ns % 1000000000));
  return t;
}

Status FillSnapshot(const std::string& pool_name, const blockdev::Snapshot& snap, ::csi::v1::Snapshot* out) {
  ASSIGN_OR_RETURN(std::string id, EncodeSnapshotId(pool_name, snap.id));
  ASSIGN_OR_RETURN(std::string source, EncodeVolumeId(pool_name, snap.source_volume_id));
  out->set_snapshot_id(id);
  out->set_source_volume_id(source);
  out->set_size_bytes(static_cast<int64_t>(snap.size_bytes));
  *out->mutable_creation_time() = ToTimestamp(snap.created_unix_ns);
  out->set_ready_to_use(snap.ready);
  if (const std::string group = snapshot::GroupIdOf(snap); !group.empty()) {
    ASSIGN_OR_RETURN(std::string gid, EncodeGroupSnapshotId(pool_name, group));
    out->set_group_snapshot_id(gid);
  }
  return Status();
}

}  // namespace vdisk::csi
