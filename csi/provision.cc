#include "csi/provision.h"

#include "clone/clone.h"
#include "spdlog/spdlog.h"

namespace vdisk::csi {

using blockdev::VolumeSource;

StatusOr<blockdev::Volume> ProvisionVolume(blockdev::Pool& pool, const blockdev::VolumeRequest& req,
                                           blockdev::Pool* source_pool, const ProvisionOptions& options) {
  if (req.source.kind == VolumeSource::Kind::kNone) return pool.create_volume(req);
  clone::CloneOptions copts;
  copts.source_pool = source_pool == &pool ? nullptr : source_pool;
  copts.checkpoint_dir = options.checkpoint_dir;
  copts.cancel = options.cancel;
  clone::CloneReport report;
  ASSIGN_OR_RETURN(blockdev::Volume vol, clone::CreateVolumeFromSource(pool, req, copts, &report));
  spdlog::info("CreateVolume name={} content copied by {}{}{} ({} bytes written)", req.name,
               clone::ToString(report.strategy), report.resumed ? ", resumed" : "",
               report.already_done ? ", already done" : "", report.copy.bytes_written);
  return vol;
}

}  // namespace vdisk::csi
