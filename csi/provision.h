// Creating a volume for CreateVolume: empty, or pre-populated from a snapshot or a volume.
//
// An empty volume is the pool's create_volume(). A content source goes through clone/: the
// backend copies it when it can (reflink, RBD clone: an offload), otherwise clone/ host-copies
// it (sparse) into a pending volume that only becomes a volume when complete — a repeat of an
// interrupted CreateVolume resumes that copy (from its checkpoint in `checkpoint_dir`). Never
// leaves a half-made volume under the request's name when it fails.
#pragma once

#include <atomic>
#include <string>

#include "blockdev/pool.h"
#include "common/status.h"

namespace vdisk::csi {

struct ProvisionOptions {
  std::string checkpoint_dir;                 // empty: a retried host copy restarts from 0
  const std::atomic<bool>* cancel = nullptr;  // set on shutdown: the copy stops, resumable
};

// `source_pool` holds req.source (nullptr when req.source.kind == kNone); it may be `pool`.
StatusOr<blockdev::Volume> ProvisionVolume(blockdev::Pool& pool, const blockdev::VolumeRequest& req,
                                           blockdev::Pool* source_pool, const ProvisionOptions& options);

}  // namespace vdisk::csi
