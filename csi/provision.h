// Creating a volume for CreateVolume: empty, or pre-populated from a snapshot or a volume.
//
// The target pool creates the volume; a content source is copied by the backend when it can
// (reflink, RBD clone: an offload) and otherwise by clone/'s host-assisted sparse copy into a
// pending volume that only becomes visible when complete. Never leaves a half-made volume
// under the request's name when it fails.
#pragma once

#include "blockdev/pool.h"
#include "common/status.h"

namespace vdisk::csi {

// `source_pool` holds req.source (nullptr when req.source.kind == kNone); it may be `pool`.
StatusOr<blockdev::Volume> ProvisionVolume(blockdev::Pool& pool, const blockdev::VolumeRequest& req,
                                           blockdev::Pool* source_pool);

}  // namespace vdisk::csi
