// CSI SnapshotMetadata service (changed-block tracking, KEP-3314): the allocated ranges of one
// snapshot (GetMetadataAllocated) and the ranges that differ between two snapshots of one
// volume (GetMetadataDelta), streamed as VARIABLE_LENGTH extents.
//
// Both read their maps through snapshot/changed_blocks.h, the path incremental backup uses:
// the pool's own change tracking where it has one (local reflink pool: FIEMAP of shared
// extents; RBD: rbd_diff_iterate2, whole objects with a valid fast-diff map), else both
// snapshots are read and compared (local pool without reflinks: exact, costs the reads). A map
// never misses a changed byte; it may over-report where the backend is coarse (docs/cbt.md).
//
// Paging: ranges ending at or before `starting_offset` are skipped, the first one is clipped to
// start at starting_offset rounded down to 4 KiB; each message holds at most `max_results`
// ranges (0: 1024). Every stream has at least one message (so the client learns the capacity).
// Codes: INVALID_ARGUMENT (missing id, negative offset or max_results, snapshots of different
// volumes or pools, base newer than target), NOT_FOUND (unknown, foreign or deleted snapshot),
// OUT_OF_RANGE (starting_offset past the snapshot's size), UNAVAILABLE (snapshot not ready),
// ABORTED (the snapshot is being deleted), CANCELLED (the client went away; the work stops).
// Thread-safe: calls run concurrently; each holds shared locks on its snapshots.
#pragma once

#include <memory>

#include "csi/csi.grpc.pb.h"
#include "csi/driver.h"

namespace vdisk::csi {

inline constexpr int32_t kDefaultMetadataResults = 1024;

class SnapshotMetadataService final : public ::csi::v1::SnapshotMetadata::Service {
 public:
  explicit SnapshotMetadataService(std::shared_ptr<DriverContext> ctx) : ctx_(std::move(ctx)) {}

  grpc::Status GetMetadataAllocated(
      grpc::ServerContext* context, const ::csi::v1::GetMetadataAllocatedRequest* req,
      grpc::ServerWriter<::csi::v1::GetMetadataAllocatedResponse>* writer) override;
  grpc::Status GetMetadataDelta(grpc::ServerContext* context, const ::csi::v1::GetMetadataDeltaRequest* req,
                                grpc::ServerWriter<::csi::v1::GetMetadataDeltaResponse>* writer) override;

 private:
  std::shared_ptr<DriverContext> ctx_;
};

}  // namespace vdisk::csi
