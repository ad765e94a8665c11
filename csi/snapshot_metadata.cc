#include "csi/snapshot_metadata.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "csi/ids.h"
#include "csi/rpc.h"
#include "csi/validation.h"
#include "snapshot/changed_blocks.h"
#include "spdlog/spdlog.h"

namespace vdisk::csi {

namespace v1 = ::csi::v1;
using blockdev::Pool;

namespace {

constexpr uint64_t kUnit = 4096;  // the maps' granularity; resume points round down to it

// The same key the Controller's snapshot operations take: a DeleteSnapshot while a map of the
// snapshot is being streamed is ABORTED (the CO retries it later).
std::string SnapshotLockKey(const std::string& csi_id) { return "snapshot " + csi_id; }

Status CheckPaging(int64_t starting_offset, int32_t max_results) {
  if (starting_offset < 0)
    return absl::InvalidArgumentError(absl::StrCat("starting_offset ", starting_offset, " is negative"));
  if (max_results < 0)
    return absl::InvalidArgumentError(absl::StrCat("max_results ", max_results, " is negative"));
  return Status();
}

// A snapshot named by a request, resolved in its pool.
struct Resolved {
  ObjectId oid;
  std::shared_ptr<Pool> pool;
  blockdev::Snapshot snap;
};

StatusOr<Resolved> Resolve(DriverContext& ctx, const std::string& csi_id, const std::string& what,
                           const blockdev::Params& secrets) {
  Resolved r;
  ASSIGN_OR_RETURN(r.oid, DecodeSnapshotId(csi_id, what));
  ASSIGN_OR_RETURN(r.pool, ctx.PoolForId(r.oid.pool, secrets));
  auto snap = r.pool->get_snapshot(r.oid.local_id);
  if (absl::IsUnimplemented(snap.status()))
    return absl::NotFoundError(absl::StrCat(what, " ", csi_id, ": the pool keeps no snapshots"));
  if (!snap.ok()) return snap.status();
  r.snap = std::move(*snap);
  if (!r.snap.ready) return absl::UnavailableError(absl::StrCat("snapshot ", csi_id, " is not ready yet"));
  return r;
}

Status CheckStart(int64_t starting_offset, uint64_t size) {
  if (static_cast<uint64_t>(starting_offset) > size)
    return absl::OutOfRangeError(absl::StrCat("starting_offset ", starting_offset,
                                              " is past the end of the snapshot (", size, " bytes)"));
  return Status();
}

snapshot::ChangedBlocksOptions MapOptions(grpc::ServerContext* context) {
  snapshot::ChangedBlocksOptions o;
  o.granularity = kUnit;
  o.allow_read_compare = true;  // a pool without change tracking: exact, by reading both
  o.is_cancelled = [context] { return context->IsCancelled(); };
  return o;
}

// Change tracking the pool cannot offer is the spec's "not enabled" case.
Status MapError(const Status& s) {
  if (absl::IsUnimplemented(s)) return absl::FailedPreconditionError(s.message());
  return s;
}

// Streams `map` from `starting_offset` in messages of at most `max_results` ranges.
template <typename Response>
Status StreamMap(const snapshot::ChangeMap& map, int64_t starting_offset, int32_t max_results,
                 grpc::ServerContext* context, grpc::ServerWriter<Response>* writer) {
  const size_t per_message = max_results > 0 ? static_cast<size_t>(max_results) : kDefaultMetadataResults;
  const uint64_t from = static_cast<uint64_t>(starting_offset) / kUnit * kUnit;
  Response msg;
  auto reset = [&] {
    msg.Clear();
    msg.set_block_metadata_type(v1::VARIABLE_LENGTH);
    msg.set_volume_capacity_bytes(static_cast<int64_t>(map.size_bytes));
  };
  reset();
  bool sent = false;
  auto flush = [&]() -> Status {
    if (context->IsCancelled() || !writer->Write(msg))
      return absl::CancelledError("the client closed the stream");
    sent = true;
    reset();
    return Status();
  };
  for (const auto& e : map.extents) {
    if (e.end() <= static_cast<uint64_t>(starting_offset)) continue;
    const uint64_t begin = std::max(e.offset, from);
    auto* b = msg.add_block_metadata();
    b->set_byte_offset(static_cast<int64_t>(begin));
    b->set_size_bytes(static_cast<int64_t>(e.end() - begin));
    if (static_cast<size_t>(msg.block_metadata_size()) == per_message) RETURN_IF_ERROR(flush());
  }
  if (msg.block_metadata_size() > 0 || !sent) RETURN_IF_ERROR(flush());
  return Status();
}

uint64_t Bytes(const snapshot::ChangeMap& map) {
  uint64_t n = 0;
  for (const auto& e : map.extents) n += e.length;
  return n;
}

}  // namespace

grpc::Status SnapshotMetadataService::GetMetadataAllocated(
    grpc::ServerContext* context, const v1::GetMetadataAllocatedRequest* req,
    grpc::ServerWriter<v1::GetMetadataAllocatedResponse>* writer) {
  return ServeStreamRpc("GetMetadataAllocated", *req, [&]() -> Status {
    RETURN_IF_ERROR(CheckPaging(req->starting_offset(), req->max_results()));
    ASSIGN_OR_RETURN(Resolved snap, Resolve(*ctx_, req->snapshot_id(), "snapshot_id", ToParams(req->secrets())));
    RETURN_IF_ERROR(CheckStart(req->starting_offset(), snap.snap.size_bytes));
    ASSIGN_OR_RETURN(OpLocks::Guard guard, ctx_->locks().Acquire({}, {SnapshotLockKey(req->snapshot_id())}));
    auto map = snapshot::AllocatedBlocks(*snap.pool, snap.oid.local_id, MapOptions(context));
    if (!map.ok()) return MapError(map.status());
    spdlog::debug("GetMetadataAllocated {}: {} extents, {} bytes ({})", req->snapshot_id(), map->extents.size(),
                  Bytes(*map), snapshot::ToString(map->source));
    return StreamMap(*map, req->starting_offset(), req->max_results(), context, writer);
  });
}

grpc::Status SnapshotMetadataService::GetMetadataDelta(grpc::ServerContext* context,
                                                       const v1::GetMetadataDeltaRequest* req,
                                                       grpc::ServerWriter<v1::GetMetadataDeltaResponse>* writer) {
  return ServeStreamRpc("GetMetadataDelta", *req, [&]() -> Status {
    if (req->base_snapshot_id().empty()) return absl::InvalidArgumentError("base_snapshot_id is required");
    if (req->target_snapshot_id().empty()) return absl::InvalidArgumentError("target_snapshot_id is required");
    RETURN_IF_ERROR(CheckPaging(req->starting_offset(), req->max_results()));
    const blockdev::Params secrets = ToParams(req->secrets());
    ASSIGN_OR_RETURN(ObjectId base_oid, DecodeSnapshotId(req->base_snapshot_id(), "base_snapshot_id"));
    ASSIGN_OR_RETURN(ObjectId target_oid, DecodeSnapshotId(req->target_snapshot_id(), "target_snapshot_id"));
    if (base_oid.pool != target_oid.pool)
      return absl::InvalidArgumentError(absl::StrCat("base snapshot (pool ", base_oid.pool, ") and target snapshot (pool ",
                                                     target_oid.pool, ") are not of the same volume"));
    ASSIGN_OR_RETURN(Resolved base, Resolve(*ctx_, req->base_snapshot_id(), "base_snapshot_id", secrets));
    ASSIGN_OR_RETURN(Resolved target, Resolve(*ctx_, req->target_snapshot_id(), "target_snapshot_id", secrets));
    if (base.snap.source_volume_id != target.snap.source_volume_id)
      return absl::InvalidArgumentError(absl::StrCat("base snapshot ", req->base_snapshot_id(), " and target snapshot ",
                                                     req->target_snapshot_id(), " are not of the same volume"));
    if (base.snap.created_unix_ns > target.snap.created_unix_ns)
      return absl::InvalidArgumentError(absl::StrCat("base snapshot ", req->base_snapshot_id(),
                                                     " is newer than target snapshot ", req->target_snapshot_id()));
    RETURN_IF_ERROR(CheckStart(req->starting_offset(), target.snap.size_bytes));
    ASSIGN_OR_RETURN(OpLocks::Guard guard,
                     ctx_->locks().Acquire({}, {SnapshotLockKey(req->base_snapshot_id()),
                                                SnapshotLockKey(req->target_snapshot_id())}));
    auto map = snapshot::ChangedBlocks(*target.pool, base.oid.local_id, target.oid.local_id, MapOptions(context));
    if (!map.ok()) return MapError(map.status());
    spdlog::debug("GetMetadataDelta {} -> {}: {} extents, {} bytes ({})", req->base_snapshot_id(),
                  req->target_snapshot_id(), map->extents.size(), Bytes(*map), snapshot::ToString(map->source));
    return StreamMap(*map, req->starting_offset(), req->max_results(), context, writer);
  });
}

}  // namespace vdisk::csi
