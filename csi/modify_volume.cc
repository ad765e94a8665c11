#include "csi/modify_volume.h"

#include "absl/strings/str_cat.h"
#include "blockdev/qos/qos_limits.h"
#include "csi/ids.h"
#include "csi/validation.h"
#include "spdlog/spdlog.h"

namespace vdisk::csi {

using blockdev::Params;

namespace {

// Without the CO's own (namespaced) keys.
Params OwnKeys(const Params& params) {
  Params out;
  for (const auto& [k, v] : params)
    if (k.find('/') == std::string::npos) out[k] = v;
  return out;
}

// `base` with `update` applied; keys set to "0" are dropped (no limit is the default).
Params Merge(const Params& base, const Params& update) {
  Params out = base;
  for (const auto& [k, v] : OwnKeys(update)) {
    if (v == "0") out.erase(k);
    else out[k] = v;
  }
  return out;
}

}  // namespace

Status ValidateMutableParameters(const Params& params) {
  return blockdev::qos::ParseQosParams(params).status();
}

Status CheckPoolTakesMutableParameters(const blockdev::Pool& pool, const Params& params) {
  if (OwnKeys(params).empty() || pool.capabilities().mutable_params) return Status();
  return absl::InvalidArgumentError(absl::StrCat("pool '", pool.name(), "' (", pool.kind(),
                                                 ") does not support mutable parameters"));
}

Status ApplyMutableParameters(DriverContext& ctx, blockdev::Pool& pool, const std::string& csi_id,
                              const blockdev::Volume& volume, const Params& params) {
  if (OwnKeys(params).empty()) return Status();
  RETURN_IF_ERROR(CheckPoolTakesMutableParameters(pool, params));
  const Params merged = Merge(volume.mutable_params, params);
  ASSIGN_OR_RETURN(blockdev::qos::QosLimits limits, blockdev::qos::ParseQosParams(merged));
  if (merged != volume.mutable_params) RETURN_IF_ERROR(pool.set_mutable_params(volume.id, merged));
  if (auto gate = ctx.io_gates().Find(csi_id)) gate->SetLimits(limits);
  spdlog::info("volume {}: mutable parameters set, QoS {}", csi_id, blockdev::qos::Describe(limits));
  return Status();
}

Status ModifyVolume(DriverContext& ctx, const ::csi::v1::ControllerModifyVolumeRequest& req) {
  if (req.volume_id().empty()) return absl::InvalidArgumentError("volume_id is required");
  const Params params = ToParams(req.mutable_parameters());
  RETURN_IF_ERROR(ValidateMutableParameters(params));
  ASSIGN_OR_RETURN(ObjectId oid, DecodeVolumeId(req.volume_id()));
  ASSIGN_OR_RETURN(std::shared_ptr<blockdev::Pool> pool, ctx.PoolForId(oid.pool, ToParams(req.secrets())));
  ASSIGN_OR_RETURN(OpLocks::Guard guard, ctx.locks().Acquire({"volume " + req.volume_id()}));
  ASSIGN_OR_RETURN(blockdev::Volume vol, pool->get_volume(oid.local_id));
  if (vol.pending) return absl::NotFoundError(absl::StrCat("volume ", req.volume_id(), " is still being populated"));
  return ApplyMutableParameters(ctx, *pool, req.volume_id(), vol, params);
}

}  // namespace vdisk::csi
