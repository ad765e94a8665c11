// CSI Controller service: volumes (create from nothing, a snapshot or a volume; delete; list;
// get; expand), snapshots (create, delete, list, get), capacity and capability validation.
//
// Each handler validates its request first, then takes the per-object operation locks
// (ABORTED for a concurrent operation on the same volume, snapshot or name), then maps the
// request to blockdev::Pool calls — through clone/ when a content source must be copied.
// Errors are the CSI spec's codes (see docs/csi.md for the table).
#pragma once

#include <memory>

#include "csi/csi.grpc.pb.h"
#include "csi/driver.h"

namespace vdisk::csi {

class ControllerService final : public ::csi::v1::Controller::Service {
 public:
  explicit ControllerService(std::shared_ptr<DriverContext> ctx) : ctx_(std::move(ctx)) {}

  grpc::Status CreateVolume(grpc::ServerContext*, const ::csi::v1::CreateVolumeRequest*,
                            ::csi::v1::CreateVolumeResponse*) override;
  grpc::Status DeleteVolume(grpc::ServerContext*, const ::csi::v1::DeleteVolumeRequest*,
                            ::csi::v1::DeleteVolumeResponse*) override;
  grpc::Status ControllerPublishVolume(grpc::ServerContext*,
                                       const ::csi::v1::ControllerPublishVolumeRequest*,
                                       ::csi::v1::ControllerPublishVolumeResponse*) override;
  grpc::Status ControllerUnpublishVolume(grpc::ServerContext*,
                                         const ::csi::v1::ControllerUnpublishVolumeRequest*,
                                         ::csi::v1::ControllerUnpublishVolumeResponse*) override;
  grpc::Status ValidateVolumeCapabilities(grpc::ServerContext*,
                                          const ::csi::v1::ValidateVolumeCapabilitiesRequest*,
                                          ::csi::v1::ValidateVolumeCapabilitiesResponse*) override;
  grpc::Status ListVolumes(grpc::ServerContext*, const ::csi::v1::ListVolumesRequest*,
                           ::csi::v1::ListVolumesResponse*) override;
  grpc::Status GetCapacity(grpc::ServerContext*, const ::csi::v1::GetCapacityRequest*,
                           ::csi::v1::GetCapacityResponse*) override;
  grpc::Status ControllerGetCapabilities(grpc::ServerContext*,
                                         const ::csi::v1::ControllerGetCapabilitiesRequest*,
                                         ::csi::v1::ControllerGetCapabilitiesResponse*) override;
  grpc::Status CreateSnapshot(grpc::ServerContext*, const ::csi::v1::CreateSnapshotRequest*,
                              ::csi::v1::CreateSnapshotResponse*) override;
  grpc::Status DeleteSnapshot(grpc::ServerContext*, const ::csi::v1::DeleteSnapshotRequest*,
                              ::csi::v1::DeleteSnapshotResponse*) override;
  grpc::Status ListSnapshots(grpc::ServerContext*, const ::csi::v1::ListSnapshotsRequest*,
                             ::csi::v1::ListSnapshotsResponse*) override;
  grpc::Status GetSnapshot(grpc::ServerContext*, const ::csi::v1::GetSnapshotRequest*,
                           ::csi::v1::GetSnapshotResponse*) override;
  grpc::Status ControllerExpandVolume(grpc::ServerContext*,
                                      const ::csi::v1::ControllerExpandVolumeRequest*,
                                      ::csi::v1::ControllerExpandVolumeResponse*) override;
  grpc::Status ControllerGetVolume(grpc::ServerContext*, const ::csi::v1::ControllerGetVolumeRequest*,
                                   ::csi::v1::ControllerGetVolumeResponse*) override;
  grpc::Status ControllerModifyVolume(grpc::ServerContext*,
                                      const ::csi::v1::ControllerModifyVolumeRequest*,
                                      ::csi::v1::ControllerModifyVolumeResponse*) override;

 private:
  Status DoCreateVolume(const ::csi::v1::CreateVolumeRequest& req, ::csi::v1::CreateVolumeResponse* resp);
  Status DoDeleteVolume(const ::csi::v1::DeleteVolumeRequest& req);
  Status DoPublish(const ::csi::v1::ControllerPublishVolumeRequest& req,
                   ::csi::v1::ControllerPublishVolumeResponse* resp);
  Status DoUnpublish(const ::csi::v1::ControllerUnpublishVolumeRequest& req);
  Status DoValidate(const ::csi::v1::ValidateVolumeCapabilitiesRequest& req,
                    ::csi::v1::ValidateVolumeCapabilitiesResponse* resp);
  Status DoListVolumes(const ::csi::v1::ListVolumesRequest& req, ::csi::v1::ListVolumesResponse* resp);
  Status DoGetCapacity(const ::csi::v1::GetCapacityRequest& req, ::csi::v1::GetCapacityResponse* resp);
  Status DoCreateSnapshot(const ::csi::v1::CreateSnapshotRequest& req, ::csi::v1::CreateSnapshotResponse* resp);
  Status DoDeleteSnapshot(const ::csi::v1::DeleteSnapshotRequest& req);
  Status DoListSnapshots(const ::csi::v1::ListSnapshotsRequest& req, ::csi::v1::ListSnapshotsResponse* resp);
  Status DoGetSnapshot(const ::csi::v1::GetSnapshotRequest& req, ::csi::v1::GetSnapshotResponse* resp);
  Status DoExpand(const ::csi::v1::ControllerExpandVolumeRequest& req,
                  ::csi::v1::ControllerExpandVolumeResponse* resp);
  Status DoGetVolume(const ::csi::v1::ControllerGetVolumeRequest& req,
                     ::csi::v1::ControllerGetVolumeResponse* resp);

  std::shared_ptr<DriverContext> ctx_;
};

}  // namespace vdisk::csi
