// CSI GroupController service: VolumeGroupSnapshots (create, get, delete), idempotent by name,
// for volumes of one pool (snapshot/group_snapshot.h). Each member is an ordinary snapshot
// (restore or clone it alone) carrying the group's id.
//
// Consistency: the members are taken one after another while the writers of every member hold
// their write acknowledgements: this process's vhost-user exports of the members (IoGate::Hold),
// and on RBD every vdisk export on any node (Pool::hold_writes, RADOS watch/notify). When every
// writer holds, the group is crash-consistent ("held"); when some writer cannot be held (a
// kernel attachment, a librbd client that is not vdisk, a local-pool export in another process)
// the members are sequential points in time (docs/csi.md says so; the log says which).
//
// Codes: INVALID_ARGUMENT (missing name or ids, volumes of different pools, parameters, listed
// snapshot ids that are not the group's), NOT_FOUND (unknown volume; unknown group on Get),
// ALREADY_EXISTS (the name taken for other volumes), ABORTED (concurrent operation on the name
// or a member), UNAVAILABLE (a hold could not be taken). Delete is OK for unknown ids.
#pragma once

#include <memory>

#include "csi/csi.grpc.pb.h"
#include "csi/driver.h"

namespace vdisk::csi {

class GroupControllerService final : public ::csi::v1::GroupController::Service {
 public:
  explicit GroupControllerService(std::shared_ptr<DriverContext> ctx) : ctx_(std::move(ctx)) {}

  grpc::Status GroupControllerGetCapabilities(grpc::ServerContext*,
                                              const ::csi::v1::GroupControllerGetCapabilitiesRequest*,
                                              ::csi::v1::GroupControllerGetCapabilitiesResponse*) override;
  grpc::Status CreateVolumeGroupSnapshot(grpc::ServerContext*, const ::csi::v1::CreateVolumeGroupSnapshotRequest*,
                                         ::csi::v1::CreateVolumeGroupSnapshotResponse*) override;
  grpc::Status DeleteVolumeGroupSnapshot(grpc::ServerContext*, const ::csi::v1::DeleteVolumeGroupSnapshotRequest*,
                                         ::csi::v1::DeleteVolumeGroupSnapshotResponse*) override;
  grpc::Status GetVolumeGroupSnapshot(grpc::ServerContext*, const ::csi::v1::GetVolumeGroupSnapshotRequest*,
                                      ::csi::v1::GetVolumeGroupSnapshotResponse*) override;

 private:
  Status DoCreate(const ::csi::v1::CreateVolumeGroupSnapshotRequest& req,
                  ::csi::v1::CreateVolumeGroupSnapshotResponse* resp);
  Status DoDelete(const ::csi::v1::DeleteVolumeGroupSnapshotRequest& req);
  Status DoGet(const ::csi::v1::GetVolumeGroupSnapshotRequest& req, ::csi::v1::GetVolumeGroupSnapshotResponse* resp);

  std::shared_ptr<DriverContext> ctx_;
};

}  // namespace vdisk::csi
