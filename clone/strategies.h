// Internal to clone/: the strategies behind CreateVolume (create.h) once it has decided that a
// new clone is to be made or an interrupted host copy resumed. Not for use outside clone/.
#pragma once

#include <string>

#include "blockdev/pool.h"
#include "clone/clone.h"
#include "common/status.h"

namespace vdisk::clone::internal {

// The name of the temporary snapshot the snapshot strategy takes for the volume `volume_name`.
std::string TempSnapshotName(const std::string& volume_name);

// Makes the clone `req` (validated, sized, name free) from req.source in `src_pool`; `recorded`
// is what the new volume records as its source (kNone across pools).
StatusOr<blockdev::Volume> CloneNew(blockdev::Pool& pool, blockdev::Pool& src_pool,
                                    const blockdev::VolumeRequest& req,
                                    const blockdev::VolumeSource& recorded, bool same_pool,
                                    const CloneOptions& options, CloneReport* report);

// Continues the host copy of `source` into the pending volume `pending`.
StatusOr<blockdev::Volume> ResumeHostCopy(blockdev::Pool& pool, blockdev::Pool& src_pool,
                                          const blockdev::Volume& pending,
                                          const blockdev::VolumeSource& source,
                                          const CloneOptions& options, CloneReport* report);

}  // namespace vdisk::clone::internal
