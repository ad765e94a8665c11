#include "csi/controller.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "clone/create.h"
#include "csi/attachability.h"
#include "csi/ids.h"
#include "csi/modify_volume.h"
#include "csi/node_attach.h"
#include "csi/objects.h"
#include "csi/paging.h"
#include "csi/rpc.h"
#include "csi/validation.h"
#include "snapshot/snapshot_policy.h"
#include "spdlog/spdlog.h"

namespace vdisk::csi {

namespace v1 = ::csi::v1;
using blockdev::Params;
using blockdev::Pool;
using blockdev::VolumeMode;
using blockdev::VolumeSource;

namespace {

constexpr char kContextPool[] = "vdisk.csi.io/pool";
constexpr char kContextMode[] = "vdisk.csi.io/mode";

std::string VolumeLockKey(const std::string& csi_id) { return "volume " + csi_id; }
std::string SnapshotLockKey(const std::string& csi_id) { return "snapshot " + csi_id; }
std::string NameLockKey(const std::string& pool, const std::string& name) {
  return absl::StrCat("volume name ", pool, "/", name);
}
std::string SnapshotNameLockKey(const std::string& pool, const std::string& name) {
  return absl::StrCat("snapshot name ", pool, "/", name);
}

// A decoded and resolved content source of CreateVolume.
struct ResolvedSource {
  VolumeSource::Kind kind = VolumeSource::Kind::kNone;
  std::string csi_id;
  std::string pool_name;
  std::shared_ptr<Pool> pool;
  std::string local_id;
  uint64_t size_bytes = 0;
  VolumeSource local() const { return {kind, local_id}; }
};

// Copies the request's content source into a response (the external-provisioner requires it).
void EchoSource(const v1::CreateVolumeRequest& req, v1::Volume* out) {
  if (req.has_volume_content_source()) *out->mutable_content_source() = req.volume_content_source();
}

}  // namespace

// ------------------------------------------------------------------------------------------------
// Conversions

static Status FillVolume(DriverContext& ctx, const std::string& pool_name, const Pool& pool,
                         const blockdev::Volume& vol, v1::Volume* out) {
  ASSIGN_OR_RETURN(std::string id, EncodeVolumeId(pool_name, vol.id));
  out->set_volume_id(id);
  out->set_capacity_bytes(static_cast<int64_t>(vol.size_bytes));
  auto& context = *out->mutable_volume_context();
  for (const auto& [k, v] : vol.context) context[k] = v;
  context[kContextPool] = pool_name;
  context[kContextMode] = std::string(blockdev::ToString(vol.mode));
  if (vol.source.kind != VolumeSource::Kind::kNone) {
    if (vol.source.kind == VolumeSource::Kind::kSnapshot) {
      auto sid = EncodeSnapshotId(pool_name, vol.source.id);
      if (sid.ok()) out->mutable_content_source()->mutable_snapshot()->set_snapshot_id(*sid);
    } else {
      auto vid = EncodeVolumeId(pool_name, vol.source.id);
      if (vid.ok()) out->mutable_content_source()->mutable_volume()->set_volume_id(*vid);
    }
  }
  if (pool.capabilities().node_local) *out->add_accessible_topology() = ctx.NodeTopology();
  return Status();
}

// Whether a node can attach the volume as ValidateVolumeCapabilities describes it: the attach
// method is the one in its volume context (or, failing that, in the parameters).
static Status CheckAttachableFromContext(const blockdev::Capabilities& caps, VolumeMode mode,
                                         const v1::ValidateVolumeCapabilitiesRequest& req) {
  Params where = ToParams(req.volume_context());
  if (!where.contains(kAttachParam)) where = ToParams(req.parameters());
  ASSIGN_OR_RETURN(AttachSpec attach, ParseAttachSpec(where));
  RETURN_IF_ERROR(CheckAttachMode(attach, mode));
  return CheckNodeAttachable(caps, mode, attach);
}

// True if the node-local volume can satisfy the request's topology requirement.
static bool TopologyAllows(DriverContext& ctx, const v1::TopologyRequirement& req) {
  if (req.requisite().empty()) return true;  // preferred alone is a hint
  const auto here = ctx.NodeTopology().segments();
  for (const auto& topo : req.requisite()) {
    bool match = true;
    for (const auto& [k, v] : topo.segments()) {
      auto it = here.find(k);
      if (it == here.end() || it->second != v) match = false;
    }
    if (match) return true;
  }
  return false;
}

// ------------------------------------------------------------------------------------------------
// CreateVolume

Status ControllerService::DoCreateVolume(const v1::CreateVolumeRequest& req, v1::CreateVolumeResponse* resp) {
  // 1. Validate the request on its own.
  RETURN_IF_ERROR(ValidateName(req.name(), "name"));
  ASSIGN_OR_RETURN(CapabilitySet caps, ParseCapabilities(req.volume_capabilities()));
  const Params params = ToParams(req.parameters());
  const Params secrets = ToParams(req.secrets());
  ASSIGN_OR_RETURN(std::string pool_name, PoolFromParams(params, ctx_->pools().default_pool()));
  if (!ctx_->pools().contains(pool_name))
    return absl::InvalidArgumentError(absl::StrCat("parameter pool='", pool_name, "' is not a configured pool"));
  if (req.has_volume_content_source() &&
      req.volume_content_source().type_case() == v1::VolumeContentSource::TYPE_NOT_SET)
    return absl::InvalidArgumentError("volume_content_source names neither a snapshot nor a volume");
  ASSIGN_OR_RETURN(AttachSpec attach, ParseAttachSpec(params));
  RETURN_IF_ERROR(CheckAttachMode(attach, caps.mode));
  const Params mutable_params = ToParams(req.mutable_parameters());
  RETURN_IF_ERROR(ValidateMutableParameters(mutable_params));

  // 2. Validate it against the pool.
  ASSIGN_OR_RETURN(std::shared_ptr<Pool> pool, ctx_->pools().Get(pool_name, secrets));
  const blockdev::Capabilities pool_caps = pool->capabilities();
  RETURN_IF_ERROR(CheckSupported(pool_caps, caps.mode, caps.access_modes));
  RETURN_IF_ERROR(CheckNodeAttachable(pool_caps, caps.mode, attach));
  const Params pool_params = PoolParams(params);
  RETURN_IF_ERROR(pool->validate_params(pool_params));
  RETURN_IF_ERROR(CheckPoolTakesMutableParameters(*pool, mutable_params));
  if (pool_caps.node_local && req.has_accessibility_requirements() &&
      !TopologyAllows(*ctx_, req.accessibility_requirements()))
    return absl::ResourceExhaustedError(absl::StrCat("pool '", pool_name, "' is local to node ",
                                                     ctx_->options().node_id,
                                                     ", which the accessibility requirements exclude"));

  // 3. Resolve the content source (NOT_FOUND when it does not exist).
  ResolvedSource src;
  std::vector<std::string> shared_keys;
  if (req.has_volume_content_source()) {
    const auto& cs = req.volume_content_source();
    if (cs.has_snapshot()) {
      src.kind = VolumeSource::Kind::kSnapshot;
      src.csi_id = cs.snapshot().snapshot_id();
      ASSIGN_OR_RETURN(ObjectId oid, DecodeSnapshotId(src.csi_id, "volume_content_source.snapshot.snapshot_id"));
      src.pool_name = oid.pool;
      src.local_id = oid.local_id;
      shared_keys.push_back(SnapshotLockKey(src.csi_id));
    } else {
      src.kind = VolumeSource::Kind::kVolume;
      src.csi_id = cs.volume().volume_id();
      ASSIGN_OR_RETURN(ObjectId oid, DecodeVolumeId(src.csi_id, "volume_content_source.volume.volume_id"));
      src.pool_name = oid.pool;
      src.local_id = oid.local_id;
      shared_keys.push_back(VolumeLockKey(src.csi_id));
    }
    if (src.pool_name == pool_name) {
      src.pool = pool;
    } else {
      ASSIGN_OR_RETURN(src.pool, ctx_->PoolForId(src.pool_name, secrets));
    }
  }

  // 4. Serialise with other operations on this name and on the source.
  ASSIGN_OR_RETURN(OpLocks::Guard guard,
                   ctx_->locks().Acquire({NameLockKey(pool_name, req.name())}, shared_keys));

  if (src.kind != VolumeSource::Kind::kNone) {
    ASSIGN_OR_RETURN(src.size_bytes, clone::SourceSize(*src.pool, src.local()));
  }

  ASSIGN_OR_RETURN(uint64_t size,
                   ChooseCapacity(req.has_capacity_range() ? &req.capacity_range() : nullptr,
                                  pool_caps.size_granularity, kDefaultVolumeBytes,
                                  pool_caps.max_volume_bytes, src.size_bytes));

  // 5. Create it, or return the same volume of an earlier identical request (clone/create.h:
  //    idempotency by name, resuming an interrupted copy): empty, or from the source by offload
  //    or host copy. A new volume must fit the pool's over-provisioning limit; one already under
  //    this name (a repeat, an interrupted copy) is counted already.
  ASSIGN_OR_RETURN(std::optional<blockdev::Volume> named, pool->find_volume_by_name(req.name()));
  ProvisioningLimits::Reservation promise;
  if (!named) {
    ASSIGN_OR_RETURN(promise, ctx_->ReserveCapacity(pool_name, *pool, pool_params, size));
  }
  blockdev::VolumeRequest vreq;
  vreq.name = req.name();
  vreq.size_bytes = size;
  vreq.mode = caps.mode;
  vreq.access_modes = caps.access_modes;
  vreq.params = pool_params;
  vreq.source = src.local();
  clone::CreateOptions copts;
  copts.accept_sizes = clone::SizeRange{
      static_cast<uint64_t>(std::max<int64_t>(req.capacity_range().required_bytes(), 0)),
      static_cast<uint64_t>(std::max<int64_t>(req.capacity_range().limit_bytes(), 0))};
  copts.clone.source_pool = src.pool.get();
  copts.clone.checkpoint_dir = ctx_->checkpoint_dir();
  copts.clone.cancel = ctx_->cancel_flag();
  clone::CloneReport report;
  ASSIGN_OR_RETURN(blockdev::Volume vol, clone::CreateVolume(*pool, vreq, copts, &report));
  if (!report.already_done)
    spdlog::info("CreateVolume name={} pool={} id={} size={} mode={} source={} by={}{}", req.name(), pool_name,
                 vol.id, vol.size_bytes, blockdev::ToString(vol.mode), src.csi_id.empty() ? "-" : src.csi_id,
                 src.csi_id.empty() ? std::string_view("create") : clone::ToString(report.strategy),
                 report.resumed ? " (resumed)" : "");
  // Mutable parameters (QoS) of a new volume; a repeat whose earlier attempt stopped before
  // setting them sets them now.
  if (!report.already_done || vol.mutable_params.empty()) {
    ASSIGN_OR_RETURN(std::string csi_id, EncodeVolumeId(pool_name, vol.id));
    RETURN_IF_ERROR(ApplyMutableParameters(*ctx_, *pool, csi_id, vol, mutable_params));
  }
  RETURN_IF_ERROR(FillVolume(*ctx_, pool_name, *pool, vol, resp->mutable_volume()));
  resp->mutable_volume()->clear_content_source();
  EchoSource(req, resp->mutable_volume());
  AddAttachContext(attach, resp->mutable_volume()->mutable_volume_context());
  return Status();
}

grpc::Status ControllerService::CreateVolume(grpc::ServerContext*, const v1::CreateVolumeRequest* req,
                                             v1::CreateVolumeResponse* resp) {
  return ServeRpc("CreateVolume", *req, resp, [&] { return DoCreateVolume(*req, resp); });
}

// ------------------------------------------------------------------------------------------------
// DeleteVolume

Status ControllerService::DoDeleteVolume(const v1::DeleteVolumeRequest& req) {
  auto oid = DecodeVolumeId(req.volume_id());
  if (absl::IsInvalidArgument(oid.status())) return oid.status();
  if (!oid.ok()) return Status();  // not an id of ours: nothing to delete
  auto pool = ctx_->PoolForId(oid->pool, ToParams(req.secrets()));
  if (absl::IsNotFound(pool.status())) {
    spdlog::warn("DeleteVolume {}: pool '{}' is not configured; nothing deleted", req.volume_id(), oid->pool);
    return Status();
  }
  if (!pool.ok()) return pool.status();
  ASSIGN_OR_RETURN(OpLocks::Guard guard, ctx_->locks().Acquire({VolumeLockKey(req.volume_id())}));
  return (*pool)->delete_volume(oid->local_id);
}

grpc::Status ControllerService::DeleteVolume(grpc::ServerContext*, const v1::DeleteVolumeRequest* req,
                                             v1::DeleteVolumeResponse* resp) {
  return ServeRpc("DeleteVolume", *req, resp, [&] { return DoDeleteVolume(*req); });
}

// ------------------------------------------------------------------------------------------------
// ControllerPublish / Unpublish: offered only when a configured pool admits nodes one by one
// (an iSCSI ACL, Capabilities::controller_publish); for the other pools of such a driver they do
// nothing. Without such a pool they are UNIMPLEMENTED and the node attaches in NodeStageVolume.

Status ControllerService::DoPublish(const v1::ControllerPublishVolumeRequest& req,
                                    v1::ControllerPublishVolumeResponse* resp) {
  if (!ctx_->AnyPublishingPool())
    return absl::UnimplementedError("vdisk attaches volumes in NodeStageVolume; ControllerPublishVolume is not offered");
  if (req.volume_id().empty()) return absl::InvalidArgumentError("volume_id is required");
  if (req.node_id().empty()) return absl::InvalidArgumentError("node_id is required");
  if (!req.has_volume_capability()) return absl::InvalidArgumentError("volume_capability is required");
  ASSIGN_OR_RETURN(Capability cap, ParseCapability(req.volume_capability()));
  ASSIGN_OR_RETURN(ObjectId oid, DecodeVolumeId(req.volume_id()));
  ASSIGN_OR_RETURN(std::shared_ptr<Pool> pool, ctx_->PoolForId(oid.pool, ToParams(req.secrets())));
  ASSIGN_OR_RETURN(OpLocks::Guard guard, ctx_->locks().Acquire({VolumeLockKey(req.volume_id())}));
  ASSIGN_OR_RETURN(blockdev::Volume vol, pool->get_volume(oid.local_id));
  if (vol.pending) return absl::NotFoundError(absl::StrCat("volume ", req.volume_id(), " is still being populated"));
  if (cap.mode != vol.mode)
    return absl::InvalidArgumentError(
        absl::StrCat("volume_capability does not match the ", std::string(blockdev::ToString(vol.mode)), " volume"));
  if (!pool->capabilities().controller_publish) return Status();
  ASSIGN_OR_RETURN(Params context,
                   pool->publish(oid.local_id, req.node_id(), req.readonly() || IsReadOnlyAccess(cap.access)));
  for (const auto& [k, v] : context) (*resp->mutable_publish_context())[k] = v;
  return Status();
}
// ControllerModifyVolume: csi/modify_volume.h.

grpc::Status ControllerService::ControllerPublishVolume(grpc::ServerContext*,
                                                        const v1::ControllerPublishVolumeRequest* req,
                                                        v1::ControllerPublishVolumeResponse* resp) {
  return ServeRpc("ControllerPublishVolume", *req, resp, [&] { return DoPublish(*req, resp); });
}

Status ControllerService::DoUnpublish(const v1::ControllerUnpublishVolumeRequest& req) {
  if (!ctx_->AnyPublishingPool())
    return absl::UnimplementedError("vdisk detaches volumes in NodeUnstageVolume; ControllerUnpublishVolume is not offered");
  if (req.volume_id().empty()) return absl::InvalidArgumentError("volume_id is required");
  auto oid = DecodeVolumeId(req.volume_id());
  if (absl::IsInvalidArgument(oid.status())) return oid.status();
  if (!oid.ok()) return Status();  // not an id of ours: nothing is published
  auto pool = ctx_->PoolForId(oid->pool, ToParams(req.secrets()));
  if (absl::IsNotFound(pool.status())) return Status();
  if (!pool.ok()) return pool.status();
  if (!(*pool)->capabilities().controller_publish) return Status();
  ASSIGN_OR_RETURN(OpLocks::Guard guard, ctx_->locks().Acquire({VolumeLockKey(req.volume_id())}));
  // An empty node_id unpublishes the volume from every node (CSI spec).
  return (*pool)->unpublish(oid->local_id, req.node_id());
}

grpc::Status ControllerService::ControllerUnpublishVolume(grpc::ServerContext*,
                                                          const v1::ControllerUnpublishVolumeRequest* req,
                                                          v1::ControllerUnpublishVolumeResponse* resp) {
  return ServeRpc("ControllerUnpublishVolume", *req, resp, [&] { return DoUnpublish(*req); });
}

grpc::Status ControllerService::ControllerModifyVolume(grpc::ServerContext*,
                                                       const v1::ControllerModifyVolumeRequest* req,
                                                       v1::ControllerModifyVolumeResponse* resp) {
  return ServeRpc("ControllerModifyVolume", *req, resp, [&] { return ModifyVolume(*ctx_, *req); });
}

// ------------------------------------------------------------------------------------------------
// ValidateVolumeCapabilities

Status ControllerService::DoValidate(const v1::ValidateVolumeCapabilitiesRequest& req,
                                     v1::ValidateVolumeCapabilitiesResponse* resp) {
  ASSIGN_OR_RETURN(ObjectId oid, DecodeVolumeId(req.volume_id()));
  ASSIGN_OR_RETURN(CapabilitySet caps, ParseCapabilities(req.volume_capabilities()));
  ASSIGN_OR_RETURN(std::shared_ptr<Pool> pool, ctx_->PoolForId(oid.pool, ToParams(req.secrets())));
  ASSIGN_OR_RETURN(blockdev::Volume vol, pool->get_volume(oid.local_id));
  if (vol.pending) return absl::NotFoundError(absl::StrCat("volume ", req.volume_id(), " is still being populated"));

  std::string why;
  if (caps.mode != vol.mode) {
    why = absl::StrCat("the volume is a ", std::string(blockdev::ToString(vol.mode)), " volume");
  } else if (!IsSupported(pool->capabilities(), caps.mode, caps.access_modes, &why)) {
    // why is set
  } else if (Status s = CheckAttachableFromContext(pool->capabilities(), caps.mode, req); !s.ok()) {
    why = std::string(s.message());
  } else {
    const Params want = PoolParams(ToParams(req.parameters()));
    for (const auto& [k, v] : want) {
      auto it = vol.params.find(k);
      if (it == vol.params.end() || it->second != v)
        why = absl::StrCat("parameter '", k, "' differs from the volume's");
    }
  }
  if (!why.empty()) {
    resp->set_message(why);
    return Status();
  }
  auto* confirmed = resp->mutable_confirmed();
  *confirmed->mutable_volume_context() = req.volume_context();
  *confirmed->mutable_volume_capabilities() = req.volume_capabilities();
  *confirmed->mutable_parameters() = req.parameters();
  *confirmed->mutable_mutable_parameters() = req.mutable_parameters();
  return Status();
}

grpc::Status ControllerService::ValidateVolumeCapabilities(grpc::ServerContext*,
                                                           const v1::ValidateVolumeCapabilitiesRequest* req,
                                                           v1::ValidateVolumeCapabilitiesResponse* resp) {
  return ServeRpc("ValidateVolumeCapabilities", *req, resp, [&] { return DoValidate(*req, resp); });
}

// ------------------------------------------------------------------------------------------------
// ListVolumes / ControllerGetVolume

Status ControllerService::DoListVolumes(const v1::ListVolumesRequest& req, v1::ListVolumesResponse* resp) {
  struct Item {
    ListKey key;
    std::shared_ptr<Pool> pool;
    blockdev::Volume vol;
  };
  std::vector<Item> items;
  for (const auto& name : ctx_->pools().names()) {
    // ListVolumes carries no secrets: a pool whose credentials come only from them is not listed.
    auto opened = ctx_->pools().Get(name, kNoCallSecrets);
    if (absl::IsUnauthenticated(opened.status())) continue;
    ASSIGN_OR_RETURN(std::shared_ptr<Pool> pool, std::move(opened));
    ASSIGN_OR_RETURN(std::vector<blockdev::Volume> vols, pool->list_volumes());
    for (auto& v : vols) {
      if (v.pending) continue;  // half-made volumes are not volumes yet
      items.push_back({{name, v.id}, pool, std::move(v)});
    }
  }
  std::sort(items.begin(), items.end(), [](const Item& a, const Item& b) { return a.key < b.key; });
  std::vector<ListKey> keys;
  for (const auto& it : items) keys.push_back(it.key);
  ASSIGN_OR_RETURN(PageWindow w, SelectPage("volumes", keys, req.max_entries(), req.starting_token()));
  for (size_t i = w.begin; i < w.end; ++i) {
    auto* entry = resp->add_entries();
    RETURN_IF_ERROR(FillVolume(*ctx_, items[i].key.pool, *items[i].pool, items[i].vol, entry->mutable_volume()));
    FillCondition(items[i].vol.condition, entry->mutable_status()->mutable_volume_condition());
  }
  resp->set_next_token(w.next_token);
  return Status();
}

grpc::Status ControllerService::ListVolumes(grpc::ServerContext*, const v1::ListVolumesRequest* req,
                                            v1::ListVolumesResponse* resp) {
  return ServeRpc("ListVolumes", *req, resp, [&] { return DoListVolumes(*req, resp); });
}

Status ControllerService::DoGetVolume(const v1::ControllerGetVolumeRequest& req,
                                      v1::ControllerGetVolumeResponse* resp) {
  ASSIGN_OR_RETURN(ObjectId oid, DecodeVolumeId(req.volume_id()));
  ASSIGN_OR_RETURN(std::shared_ptr<Pool> pool, ctx_->PoolForId(oid.pool, kNoCallSecrets));
  ASSIGN_OR_RETURN(blockdev::Volume vol, pool->get_volume(oid.local_id));
  if (vol.pending) return absl::NotFoundError(absl::StrCat("volume ", req.volume_id(), " is still being populated"));
  RETURN_IF_ERROR(FillVolume(*ctx_, oid.pool, *pool, vol, resp->mutable_volume()));
  FillCondition(vol.condition, resp->mutable_status()->mutable_volume_condition());
  return Status();
}

grpc::Status ControllerService::ControllerGetVolume(grpc::ServerContext*, const v1::ControllerGetVolumeRequest* req,
                                                    v1::ControllerGetVolumeResponse* resp) {
  return ServeRpc("ControllerGetVolume", *req, resp, [&] { return DoGetVolume(*req, resp); });
}

// ------------------------------------------------------------------------------------------------
// GetCapacity / ControllerGetCapabilities

Status ControllerService::DoGetCapacity(const v1::GetCapacityRequest& req, v1::GetCapacityResponse* resp) {
  const Params params = ToParams(req.parameters());
  ASSIGN_OR_RETURN(std::string pool_name, PoolFromParams(params, ctx_->pools().default_pool()));
  if (!ctx_->pools().contains(pool_name))
    return absl::InvalidArgumentError(absl::StrCat("parameter pool='", pool_name, "' is not a configured pool"));
  ASSIGN_OR_RETURN(std::shared_ptr<Pool> pool, ctx_->pools().Get(pool_name, kNoCallSecrets));
  const blockdev::Capabilities caps = pool->capabilities();
  if (!req.volume_capabilities().empty()) {
    ASSIGN_OR_RETURN(CapabilitySet set, ParseCapabilities(req.volume_capabilities()));
    ASSIGN_OR_RETURN(AttachSpec attach, ParseAttachSpec(params));
    if (!IsSupported(caps, set.mode, set.access_modes, nullptr) || !CheckAttachMode(attach, set.mode).ok() ||
        !CheckNodeAttachable(caps, set.mode, attach).ok()) {
      resp->set_available_capacity(0);  // nothing of that kind can be provisioned here
      return Status();
    }
  }
  if (caps.node_local && req.has_accessible_topology()) {
    v1::TopologyRequirement r;
    *r.add_requisite() = req.accessible_topology();
    if (!TopologyAllows(*ctx_, r)) {
      resp->set_available_capacity(0);
      return Status();
    }
  }
  const Params pool_params = PoolParams(params);
  RETURN_IF_ERROR(pool->validate_params(pool_params));
  ASSIGN_OR_RETURN(blockdev::Capacity cap, pool->capacity(pool_params));
  // What can still be promised under the over-provisioning limit (without one: what is free).
  ASSIGN_OR_RETURN(uint64_t promisable, ctx_->PromisableCapacity(pool_name, *pool, cap));
  const uint64_t available = promisable == UINT64_MAX ? cap.available_bytes : promisable;
  resp->set_available_capacity(static_cast<int64_t>(std::min<uint64_t>(available, INT64_MAX)));
  uint64_t max = cap.max_volume_bytes ? cap.max_volume_bytes : caps.max_volume_bytes;
  // Under a limit, the largest volume that can be made now; without one, thin volumes larger
  // than the free space are allowed, so only the backend's largest volume bounds it.
  if (promisable != UINT64_MAX && (max == 0 || max > promisable)) max = promisable;
  if (max > 0) resp->mutable_maximum_volume_size()->set_value(static_cast<int64_t>(std::min<uint64_t>(max, INT64_MAX)));
  return Status();
}

grpc::Status ControllerService::GetCapacity(grpc::ServerContext*, const v1::GetCapacityRequest* req,
                                            v1::GetCapacityResponse* resp) {
  return ServeRpc("GetCapacity", *req, resp, [&] { return DoGetCapacity(*req, resp); });
}

grpc::Status ControllerService::ControllerGetCapabilities(grpc::ServerContext*,
                                                          const v1::ControllerGetCapabilitiesRequest* req,
                                                          v1::ControllerGetCapabilitiesResponse* resp) {
  return ServeRpc("ControllerGetCapabilities", *req, resp, [&]() -> Status {
    using T = v1::ControllerServiceCapability::RPC;
    // Deliberately not offered: PUBLISH_UNPUBLISH_VOLUME unless a pool needs it (below),
    // PUBLISH_READONLY (the node attaches read-only itself),
    // LIST_VOLUMES_PUBLISHED_NODES (the controller does not track nodes). GET_SNAPSHOT is offered
    // because GetSnapshot is served (csi-sanity v5.5 knows it and runs its GetSnapshot specs only
    // when it is advertised); MODIFY_VOLUME for the mutable parameters (QoS, modify_volume.h).
    for (T::Type t : {T::CREATE_DELETE_VOLUME, T::LIST_VOLUMES, T::GET_CAPACITY, T::CREATE_DELETE_SNAPSHOT,
                      T::LIST_SNAPSHOTS, T::CLONE_VOLUME, T::EXPAND_VOLUME, T::GET_VOLUME, T::VOLUME_CONDITION,
                      T::SINGLE_NODE_MULTI_WRITER, T::GET_SNAPSHOT, T::MODIFY_VOLUME})
      resp->add_capabilities()->mutable_rpc()->set_type(t);
    // A pool that admits nodes one by one (iSCSI ACLs) needs ControllerPublishVolume.
    if (ctx_->AnyPublishingPool()) resp->add_capabilities()->mutable_rpc()->set_type(T::PUBLISH_UNPUBLISH_VOLUME);
    return Status();
  });
}

// ------------------------------------------------------------------------------------------------
// Snapshots

Status ControllerService::DoCreateSnapshot(const v1::CreateSnapshotRequest& req, v1::CreateSnapshotResponse* resp) {
  RETURN_IF_ERROR(ValidateName(req.name(), "name"));
  if (req.source_volume_id().empty()) return absl::InvalidArgumentError("source_volume_id is required");
  const Params extra = PoolParams(ToParams(req.parameters()));
  if (!extra.empty())
    return absl::InvalidArgumentError(
        absl::StrCat("snapshot parameter '", extra.begin()->first, "' is not supported"));
  ASSIGN_OR_RETURN(ObjectId src, DecodeVolumeId(req.source_volume_id(), "source_volume_id"));
  ASSIGN_OR_RETURN(std::shared_ptr<Pool> pool, ctx_->PoolForId(src.pool, ToParams(req.secrets())));

  ASSIGN_OR_RETURN(OpLocks::Guard guard, ctx_->locks().Acquire({SnapshotNameLockKey(src.pool, req.name())},
                                                               {VolumeLockKey(req.source_volume_id())}));
  // snapshot/: idempotent by name, taken by the pool, never a host copy.
  ASSIGN_OR_RETURN(blockdev::Snapshot snap, snapshot::CreateSnapshot(*pool, src.local_id, req.name()));
  spdlog::info("CreateSnapshot name={} pool={} id={} source={} size={}", req.name(), src.pool, snap.id,
               src.local_id, snap.size_bytes);
  return FillSnapshot(src.pool, snap, resp->mutable_snapshot());
}

grpc::Status ControllerService::CreateSnapshot(grpc::ServerContext*, const v1::CreateSnapshotRequest* req,
                                               v1::CreateSnapshotResponse* resp) {
  return ServeRpc("CreateSnapshot", *req, resp, [&] { return DoCreateSnapshot(*req, resp); });
}

Status ControllerService::DoDeleteSnapshot(const v1::DeleteSnapshotRequest& req) {
  auto oid = DecodeSnapshotId(req.snapshot_id());
  if (absl::IsInvalidArgument(oid.status())) return oid.status();
  if (!oid.ok()) return Status();  // not an id of ours: nothing to delete
  auto pool = ctx_->PoolForId(oid->pool, ToParams(req.secrets()));
  if (absl::IsNotFound(pool.status())) {
    spdlog::warn("DeleteSnapshot {}: pool '{}' is not configured; nothing deleted", req.snapshot_id(), oid->pool);
    return Status();
  }
  if (!pool.ok()) return pool.status();
  ASSIGN_OR_RETURN(OpLocks::Guard guard, ctx_->locks().Acquire({SnapshotLockKey(req.snapshot_id())}));
  return (*pool)->delete_snapshot(oid->local_id);
}

grpc::Status ControllerService::DeleteSnapshot(grpc::ServerContext*, const v1::DeleteSnapshotRequest* req,
                                               v1::DeleteSnapshotResponse* resp) {
  return ServeRpc("DeleteSnapshot", *req, resp, [&] { return DoDeleteSnapshot(*req); });
}

Status ControllerService::DoListSnapshots(const v1::ListSnapshotsRequest& req, v1::ListSnapshotsResponse* resp) {
  const Params secrets = ToParams(req.secrets());
  struct Item {
    ListKey key;
    blockdev::Snapshot snap;
  };
  std::vector<Item> items;
  std::optional<ObjectId> by_source;
  if (!req.source_volume_id().empty()) {
    auto oid = DecodeVolumeId(req.source_volume_id(), "source_volume_id");
    if (!oid.ok() || !ctx_->pools().contains(oid->pool)) {
      resp->set_next_token("");
      return Status();  // no such volume: no snapshots of it
    }
    by_source = *oid;
  }
  if (!req.snapshot_id().empty()) {
    auto oid = DecodeSnapshotId(req.snapshot_id());
    if (!oid.ok() || !ctx_->pools().contains(oid->pool)) return Status();
    ASSIGN_OR_RETURN(std::shared_ptr<Pool> pool, ctx_->pools().Get(oid->pool, secrets));
    auto snap = pool->get_snapshot(oid->local_id);
    if (absl::IsNotFound(snap.status())) return Status();
    if (!snap.ok()) return snap.status();
    if (!by_source || (by_source->pool == oid->pool && by_source->local_id == snap->source_volume_id))
      items.push_back({{oid->pool, snap->id}, std::move(*snap)});
  } else {
    std::vector<std::string> pools = by_source ? std::vector<std::string>{by_source->pool} : ctx_->pools().names();
    for (const auto& name : pools) {
      auto opened = ctx_->pools().Get(name, secrets);
      if (!by_source && absl::IsUnauthenticated(opened.status())) continue;  // no credentials for it
      ASSIGN_OR_RETURN(std::shared_ptr<Pool> pool, std::move(opened));
      auto snaps = pool->list_snapshots();
      if (absl::IsUnimplemented(snaps.status())) continue;  // a pool without snapshots has none
      if (!snaps.ok()) return snaps.status();
      for (auto& s : *snaps) {
        if (by_source && s.source_volume_id != by_source->local_id) continue;
        items.push_back({{name, s.id}, std::move(s)});
      }
    }
  }
  std::sort(items.begin(), items.end(), [](const Item& a, const Item& b) { return a.key < b.key; });
  std::vector<ListKey> keys;
  for (const auto& it : items) keys.push_back(it.key);
  ASSIGN_OR_RETURN(PageWindow w, SelectPage("snapshots", keys, req.max_entries(), req.starting_token()));
  for (size_t i = w.begin; i < w.end; ++i)
    RETURN_IF_ERROR(FillSnapshot(items[i].key.pool, items[i].snap, resp->add_entries()->mutable_snapshot()));
  resp->set_next_token(w.next_token);
  return Status();
}

grpc::Status ControllerService::ListSnapshots(grpc::ServerContext*, const v1::ListSnapshotsRequest* req,
                                              v1::ListSnapshotsResponse* resp) {
  return ServeRpc("ListSnapshots", *req, resp, [&] { return DoListSnapshots(*req, resp); });
}

Status ControllerService::DoGetSnapshot(const v1::GetSnapshotRequest& req, v1::GetSnapshotResponse* resp) {
  ASSIGN_OR_RETURN(ObjectId oid, DecodeSnapshotId(req.snapshot_id()));
  ASSIGN_OR_RETURN(std::shared_ptr<Pool> pool, ctx_->PoolForId(oid.pool, ToParams(req.secrets())));
  ASSIGN_OR_RETURN(blockdev::Snapshot snap, pool->get_snapshot(oid.local_id));
  return FillSnapshot(oid.pool, snap, resp->mutable_snapshot());
}

grpc::Status ControllerService::GetSnapshot(grpc::ServerContext*, const v1::GetSnapshotRequest* req,
                                            v1::GetSnapshotResponse* resp) {
  return ServeRpc("GetSnapshot", *req, resp, [&] { return DoGetSnapshot(*req, resp); });
}

// ------------------------------------------------------------------------------------------------
// ControllerExpandVolume

Status ControllerService::DoExpand(const v1::ControllerExpandVolumeRequest& req,
                                   v1::ControllerExpandVolumeResponse* resp) {
  if (req.volume_id().empty()) return absl::InvalidArgumentError("volume_id is required");
  if (!req.has_capacity_range()) return absl::InvalidArgumentError("capacity_range is required");
  ASSIGN_OR_RETURN(ObjectId oid, DecodeVolumeId(req.volume_id()));
  std::optional<Capability> cap;
  if (req.has_volume_capability()) {
    ASSIGN_OR_RETURN(Capability c, ParseCapability(req.volume_capability()));
    cap = c;
  }
  ASSIGN_OR_RETURN(std::shared_ptr<Pool> pool, ctx_->PoolForId(oid.pool, ToParams(req.secrets())));
  ASSIGN_OR_RETURN(OpLocks::Guard guard, ctx_->locks().Acquire({VolumeLockKey(req.volume_id())}));
  ASSIGN_OR_RETURN(blockdev::Volume vol, pool->get_volume(oid.local_id));
  if (vol.pending) return absl::NotFoundError(absl::StrCat("volume ", req.volume_id(), " is still being populated"));
  if (cap && cap->mode != vol.mode)
    return absl::InvalidArgumentError(
        absl::StrCat("volume_capability does not match the ", std::string(blockdev::ToString(vol.mode)), " volume"));

  const blockdev::Capabilities caps = pool->capabilities();
  const auto& range = req.capacity_range();
  uint64_t target = vol.size_bytes;
  if (range.required_bytes() > 0 || range.limit_bytes() < 0) {
    ASSIGN_OR_RETURN(target, ChooseCapacity(&range, caps.size_granularity, kDefaultVolumeBytes,
                                            caps.max_volume_bytes));
  } else if (range.limit_bytes() > 0 && vol.size_bytes > static_cast<uint64_t>(range.limit_bytes())) {
    return absl::OutOfRangeError(absl::StrCat("the volume is already ", vol.size_bytes,
                                              " bytes, more than limit_bytes ", range.limit_bytes()));
  }
  uint64_t size = vol.size_bytes;
  if (target > vol.size_bytes) {
    ASSIGN_OR_RETURN(ProvisioningLimits::Reservation promise,
                     ctx_->ReserveCapacity(oid.pool, *pool, vol.params, target - vol.size_bytes));
    ASSIGN_OR_RETURN(size, pool->expand_volume(oid.local_id, target));
    spdlog::info("ControllerExpandVolume id={} from={} to={}", req.volume_id(), vol.size_bytes, size);
  } else if (range.limit_bytes() > 0 && vol.size_bytes > static_cast<uint64_t>(range.limit_bytes())) {
    return absl::OutOfRangeError("shrinking a volume is not supported");
  }
  resp->set_capacity_bytes(static_cast<int64_t>(size));
  // A loop device shows the new size only after the node refreshes it; so does a vhost-user export,
  // the only way a volume whose mode the pool's kernel attachment does not serve is attached.
  const bool kernel_attached = caps.attach_modes.empty() ||
                               std::find(caps.attach_modes.begin(), caps.attach_modes.end(), vol.mode) !=
                                   caps.attach_modes.end();
  resp->set_node_expansion_required(vol.mode == VolumeMode::kBlock || !kernel_attached);
  return Status();
}

grpc::Status ControllerService::ControllerExpandVolume(grpc::ServerContext*,
                                                       const v1::ControllerExpandVolumeRequest* req,
                                                       v1::ControllerExpandVolumeResponse* resp) {
  return ServeRpc("ControllerExpandVolume", *req, resp, [&] { return DoExpand(*req, resp); });
}

}  // namespace vdisk::csi
