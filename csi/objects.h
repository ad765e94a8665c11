// Pool objects as CSI messages: snapshots (with the group they belong to) and timestamps. Shared
// by the Controller and GroupController services. Pure functions, thread-safe.
#pragma once

#include <cstdint>
#include <string>

#include <google/protobuf/timestamp.pb.h>

#include "blockdev/pool.h"
#include "common/status.h"
#include "csi/csi.pb.h"

namespace vdisk::csi {

google::protobuf::Timestamp ToTimestamp(int64_t unix_ns);

// INVALID_ARGUMENT / OUT_OF_RANGE if the ids cannot be encoded (a misconfigured pool).
Status FillSnapshot(const std::string& pool_name, const blockdev::Snapshot& snap, ::csi::v1::Snapshot* out);

}  // namespace vdisk::csi
