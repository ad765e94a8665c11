// Mutable parameters (per-volume QoS, blockdev/qos/qos_limits.h): CreateVolume's
// mutable_parameters and ControllerModifyVolume (Kubernetes VolumeAttributesClass).
//
// Keys are merged into what the volume has (the spec: absent keys change nothing; "0" lifts a
// limit), validated as a whole, stored by the pool (capabilities().mutable_params; RBD also
// sets the image's librbd QoS) and applied at once to this process's vhost-user exports of the
// volume (their IoGate). Exports in other node plugins pick the change up from the pool within
// their refresh interval (csi/qos_refresh.h). Kernel-attached volumes (loop, krbd) are not
// limited by vdisk (docs/csi.md).
//
// Codes: INVALID_ARGUMENT (missing volume_id, unknown or malformed key, a pool that cannot store
// mutable parameters), NOT_FOUND (volume), ABORTED (another operation on the volume).
// Thread-safe.
#pragma once

#include <string>

#include "blockdev/pool.h"
#include "common/status.h"
#include "csi/csi.pb.h"
#include "csi/driver.h"

namespace vdisk::csi {

// INVALID_ARGUMENT unless `params` are well-formed mutable parameters (alone).
Status ValidateMutableParameters(const blockdev::Params& params);
// INVALID_ARGUMENT if `params` is not empty and the pool cannot store mutable parameters.
Status CheckPoolTakesMutableParameters(const blockdev::Pool& pool, const blockdev::Params& params);

// Merges `params` into the volume's, stores and applies them (see above). `csi_id` names the
// volume's gate. A no-op for empty `params`.
Status ApplyMutableParameters(DriverContext& ctx, blockdev::Pool& pool, const std::string& csi_id,
                              const blockdev::Volume& volume, const blockdev::Params& params);

Status ModifyVolume(DriverContext& ctx, const ::csi::v1::ControllerModifyVolumeRequest& req);

}  // namespace vdisk::csi
