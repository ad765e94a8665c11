// How the node hands a volume to its consumer, chosen per StorageClass and carried to the node
// in the volume context:
//   attach: kernel      (default) a block device (loop / krbd) or a bind-mounted directory;
//   attach: vhost-user  volumeMode: Filesystem only: the target directory holds a
//                       vhost-user-blk socket (and its description) served by this plugin from
//                       user space (io_uring / librbd), for QEMU/KVM (csi/vhost_publish.h).
//   vhostQueues: N      virtqueues the vhost-user export offers (1..64, default 1).
// Pure functions, thread-safe; INVALID_ARGUMENT for a bad value.
#pragma once

#include <string>

#include <google/protobuf/map.h>

#include "blockdev/pool.h"
#include "common/status.h"

namespace vdisk::csi {

inline constexpr char kAttachParam[] = "attach";
inline constexpr char kVhostQueuesParam[] = "vhostQueues";
inline constexpr char kAttachVhostUser[] = "vhost-user";

struct AttachSpec {
  bool vhost_user = false;
  unsigned vhost_queues = 1;
};

// True for the keys above: node parameters, never passed to a pool.
bool IsAttachParam(const std::string& key);

// Reads the keys above from StorageClass parameters or a volume context.
StatusOr<AttachSpec> ParseAttachSpec(const blockdev::Params& params);

// INVALID_ARGUMENT if `spec` cannot serve a volume of `mode` (vhost-user needs Filesystem).
Status CheckAttachMode(const AttachSpec& spec, blockdev::VolumeMode mode);

// Writes the spec back as volume context keys (nothing for the default).
void AddAttachContext(const AttachSpec& spec, google::protobuf::Map<std::string, std::string>* context);

}  // namespace vdisk::csi
