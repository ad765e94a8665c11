#include "csi/provision.h"

#include "absl/strings/str_cat.h"

namespace vdisk::csi {

using blockdev::VolumeSource;

StatusOr<blockdev::Volume> ProvisionVolume(blockdev::Pool& pool, const blockdev::VolumeRequest& req,
                                           blockdev::Pool* source_pool) {
  if (req.source.kind == VolumeSource::Kind::kNone) return pool.create_volume(req);
  const auto caps = pool.capabilities();
  const bool offload = source_pool == &pool && (req.source.kind == VolumeSource::Kind::kSnapshot
                                                    ? caps.clone_from_snapshot
                                                    : caps.clone_from_volume);
  if (offload) return pool.create_volume(req);
  // TODO(csi): host-assisted copy through clone/ once it lands.
  return absl::UnimplementedError(absl::StrCat("pool '", pool.name(), "' cannot copy this content source"));
}

}  // namespace vdisk::csi
