#include "csi/group_controller.h"

#include <set>

#include "absl/strings/str_cat.h"
#include "csi/ids.h"
#include "csi/objects.h"
#include "csi/rpc.h"
#include "csi/validation.h"
#include "snapshot/group_snapshot.h"
#include "spdlog/spdlog.h"

namespace vdisk::csi {

namespace v1 = ::csi::v1;
using blockdev::Params;
using blockdev::Pool;

namespace {

std::string GroupNameLockKey(const std::string& pool, const std::string& name) {
  return absl::StrCat("group snapshot name ", pool, "/", name);
}
std::string GroupLockKey(const std::string& csi_id) { return "group snapshot " + csi_id; }

Status FillGroup(const std::string& pool_name, const blockdev::GroupSnapshot& g, v1::VolumeGroupSnapshot* out) {
  ASSIGN_OR_RETURN(std::string id, EncodeGroupSnapshotId(pool_name, g.id));
  out->set_group_snapshot_id(id);
  *out->mutable_creation_time() = ToTimestamp(g.created_unix_ns);
  out->set_ready_to_use(g.ready);
  for (const auto& s : g.snapshots) {
    v1::Snapshot* m = out->add_snapshots();
    RETURN_IF_ERROR(FillSnapshot(pool_name, s, m));
    m->set_group_snapshot_id(id);
  }
  return Status();
}

// Holds acknowledgements of writes to the members this process exports (see the header).
snapshot::GroupOptions HoldOptions(DriverContext& ctx, const std::string& pool_name) {
  snapshot::GroupOptions o;
  o.hold = [&ctx, pool_name](const std::vector<std::string>& volume_ids,
                             bool* all_held) -> StatusOr<std::shared_ptr<void>> {
    auto holds = std::make_shared<std::vector<std::shared_ptr<void>>>();
    size_t held = 0;
    for (const auto& local : volume_ids) {
      ASSIGN_OR_RETURN(std::string csi_id, EncodeVolumeId(pool_name, local));
      auto gate = ctx.io_gates().Find(csi_id);
      if (!gate) continue;
      auto h = gate->Hold();
      if (!h.ok()) return absl::UnavailableError(absl::StrCat("cannot quiesce ", csi_id, ": ", h.status().message()));
      holds->push_back(std::move(*h));
      ++held;
    }
    *all_held = held == volume_ids.size();
    return std::shared_ptr<void>(holds);
  };
  return o;
}

}  // namespace

grpc::Status GroupControllerService::GroupControllerGetCapabilities(
    grpc::ServerContext*, const v1::GroupControllerGetCapabilitiesRequest* req,
    v1::GroupControllerGetCapabilitiesResponse* resp) {
  return ServeRpc("GroupControllerGetCapabilities", *req, resp, [&]() -> Status {
    resp->add_capabilities()->mutable_rpc()->set_type(
        v1::GroupControllerServiceCapability::RPC::CREATE_DELETE_GET_VOLUME_GROUP_SNAPSHOT);
    return Status();
  });
}

Status GroupControllerService::DoCreate(const v1::CreateVolumeGroupSnapshotRequest& req,
                                        v1::CreateVolumeGroupSnapshotResponse* resp) {
  RETURN_IF_ERROR(ValidateName(req.name(), "name"));
  if (req.source_volume_ids().empty()) return absl::InvalidArgumentError("source_volume_ids is required");
  const Params extra = PoolParams(ToParams(req.parameters()));
  if (!extra.empty())
    return absl::InvalidArgumentError(
        absl::StrCat("group snapshot parameter '", extra.begin()->first, "' is not supported"));
  std::string pool_name;
  std::vector<std::string> locals, shared_keys;
  for (const auto& id : req.source_volume_ids()) {
    ASSIGN_OR_RETURN(ObjectId oid, DecodeVolumeId(id, "source_volume_ids"));
    if (!pool_name.empty() && oid.pool != pool_name)
      return absl::InvalidArgumentError(absl::StrCat("the volumes of a group snapshot must be in one pool (",
                                                     pool_name, " and ", oid.pool, ")"));
    pool_name = oid.pool;
    locals.push_back(oid.local_id);
    shared_keys.push_back("volume " + id);
  }
  ASSIGN_OR_RETURN(std::shared_ptr<Pool> pool, ctx_->PoolForId(pool_name, ToParams(req.secrets())));
  ASSIGN_OR_RETURN(OpLocks::Guard guard,
                   ctx_->locks().Acquire({GroupNameLockKey(pool_name, req.name())}, shared_keys));
  ASSIGN_OR_RETURN(snapshot::GroupResult r,
                   snapshot::CreateGroupSnapshot(*pool, req.name(), locals, HoldOptions(*ctx_, pool_name)));
  if (!r.existed)
    spdlog::info("CreateVolumeGroupSnapshot name={} pool={} id={} members={} consistency={}", req.name(), pool_name,
                 r.group.id, r.group.snapshots.size(), snapshot::ToString(r.consistency));
  return FillGroup(pool_name, r.group, resp->mutable_group_snapshot());
}

Status GroupControllerService::DoDelete(const v1::DeleteVolumeGroupSnapshotRequest& req) {
  auto oid = DecodeGroupSnapshotId(req.group_snapshot_id());
  if (absl::IsInvalidArgument(oid.status())) return oid.status();
  if (!oid.ok()) return Status();  // not an id of ours: nothing to delete
  auto pool = ctx_->PoolForId(oid->pool, ToParams(req.secrets()));
  if (absl::IsNotFound(pool.status())) return Status();
  if (!pool.ok()) return pool.status();
  std::vector<std::string> keys = {GroupLockKey(req.group_snapshot_id())};
  for (const auto& s : req.snapshot_ids()) keys.push_back("snapshot " + s);
  ASSIGN_OR_RETURN(OpLocks::Guard guard, ctx_->locks().Acquire(keys));
  // Snapshots the CO lists must be the group's; those already gone are fine.
  for (const auto& s : req.snapshot_ids()) {
    auto sid = DecodeSnapshotId(s, "snapshot_ids");
    if (!sid.ok() || sid->pool != oid->pool) continue;
    auto snap = (*pool)->get_snapshot(sid->local_id);
    if (snap.ok() && snapshot::GroupIdOf(*snap) != oid->local_id)
      return absl::InvalidArgumentError(
          absl::StrCat("snapshot ", s, " is not a member of group snapshot ", req.group_snapshot_id()));
  }
  RETURN_IF_ERROR(snapshot::DeleteGroupSnapshot(**pool, oid->local_id));
  spdlog::info("DeleteVolumeGroupSnapshot id={}", req.group_snapshot_id());
  return Status();
}

Status GroupControllerService::DoGet(const v1::GetVolumeGroupSnapshotRequest& req,
                                     v1::GetVolumeGroupSnapshotResponse* resp) {
  ASSIGN_OR_RETURN(ObjectId oid, DecodeGroupSnapshotId(req.group_snapshot_id()));
  ASSIGN_OR_RETURN(std::shared_ptr<Pool> pool, ctx_->PoolForId(oid.pool, ToParams(req.secrets())));
  ASSIGN_OR_RETURN(blockdev::GroupSnapshot g, snapshot::GetGroupSnapshot(*pool, oid.local_id));
  RETURN_IF_ERROR(FillGroup(oid.pool, g, resp->mutable_group_snapshot()));
  if (!req.snapshot_ids().empty()) {
    std::set<std::string> want(req.snapshot_ids().begin(), req.snapshot_ids().end()), have;
    for (const auto& s : resp->group_snapshot().snapshots()) have.insert(s.snapshot_id());
    if (want != have)
      return absl::InvalidArgumentError(
          absl::StrCat("snapshot_ids do not match the members of group snapshot ", req.group_snapshot_id()));
  }
  return Status();
}

grpc::Status GroupControllerService::CreateVolumeGroupSnapshot(grpc::ServerContext*,
                                                               const v1::CreateVolumeGroupSnapshotRequest* req,
                                                               v1::CreateVolumeGroupSnapshotResponse* resp) {
  return ServeRpc("CreateVolumeGroupSnapshot", *req, resp, [&] { return DoCreate(*req, resp); });
}

grpc::Status GroupControllerService::DeleteVolumeGroupSnapshot(grpc::ServerContext*,
                                                               const v1::DeleteVolumeGroupSnapshotRequest* req,
                                                               v1::DeleteVolumeGroupSnapshotResponse* resp) {
  return ServeRpc("DeleteVolumeGroupSnapshot", *req, resp, [&] { return DoDelete(*req); });
}

grpc::Status GroupControllerService::GetVolumeGroupSnapshot(grpc::ServerContext*,
                                                            const v1::GetVolumeGroupSnapshotRequest* req,
                                                            v1::GetVolumeGroupSnapshotResponse* resp) {
  return ServeRpc("GetVolumeGroupSnapshot", *req, resp, [&] { return DoGet(*req, resp); });
}

}  // namespace vdisk::csi
