// vdisk_csi_client: a thin synchronous C++ client for a CSI endpoint (any CSI driver, vdisk-csi
// in particular), used by the `vdisk` CLI and the tests.
//
// Each call is one CSI RPC with a deadline; the gRPC status comes back as a vdisk::Status with
// the same code (csi/status_mapping). Thread-safe: stubs may be used from several threads.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include <grpcpp/channel.h>

#include "common/status.h"
#include "csi/csi.grpc.pb.h"

namespace vdisk::csi {

class CsiClient {
 public:
  // `endpoint`: unix:///path/to/csi.sock (or a bare absolute path). Does not connect yet.
  static StatusOr<std::unique_ptr<CsiClient>> Create(const std::string& endpoint,
                                                     std::chrono::milliseconds timeout = std::chrono::minutes(5));

  // Waits until the channel is connected (UNAVAILABLE after `wait`).
  Status WaitReady(std::chrono::milliseconds wait);

  void set_timeout(std::chrono::milliseconds t) { timeout_ = t; }

  // Identity
  StatusOr<::csi::v1::GetPluginInfoResponse> GetPluginInfo();
  StatusOr<::csi::v1::GetPluginCapabilitiesResponse> GetPluginCapabilities();
  StatusOr<::csi::v1::ProbeResponse> Probe();

  // Controller
  StatusOr<::csi::v1::CreateVolumeResponse> CreateVolume(const ::csi::v1::CreateVolumeRequest& r);
  StatusOr<::csi::v1::DeleteVolumeResponse> DeleteVolume(const ::csi::v1::DeleteVolumeRequest& r);
  StatusOr<::csi::v1::ValidateVolumeCapabilitiesResponse> ValidateVolumeCapabilities(
      const ::csi::v1::ValidateVolumeCapabilitiesRequest& r);
  StatusOr<::csi::v1::ListVolumesResponse> ListVolumes(const ::csi::v1::ListVolumesRequest& r);
  StatusOr<::csi::v1::GetCapacityResponse> GetCapacity(const ::csi::v1::GetCapacityRequest& r);
  StatusOr<::csi::v1::ControllerGetCapabilitiesResponse> ControllerGetCapabilities();
  StatusOr<::csi::v1::CreateSnapshotResponse> CreateSnapshot(const ::csi::v1::CreateSnapshotRequest& r);
  StatusOr<::csi::v1::DeleteSnapshotResponse> DeleteSnapshot(const ::csi::v1::DeleteSnapshotRequest& r);
  StatusOr<::csi::v1::ListSnapshotsResponse> ListSnapshots(const ::csi::v1::ListSnapshotsRequest& r);
  StatusOr<::csi::v1::GetSnapshotResponse> GetSnapshot(const ::csi::v1::GetSnapshotRequest& r);
  StatusOr<::csi::v1::ControllerExpandVolumeResponse> ControllerExpandVolume(
      const ::csi::v1::ControllerExpandVolumeRequest& r);
  StatusOr<::csi::v1::ControllerGetVolumeResponse> ControllerGetVolume(
      const ::csi::v1::ControllerGetVolumeRequest& r);
  StatusOr<::csi::v1::ControllerPublishVolumeResponse> ControllerPublishVolume(
      const ::csi::v1::ControllerPublishVolumeRequest& r);
  StatusOr<::csi::v1::ControllerUnpublishVolumeResponse> ControllerUnpublishVolume(
      const ::csi::v1::ControllerUnpublishVolumeRequest& r);
  StatusOr<::csi::v1::ControllerModifyVolumeResponse> ControllerModifyVolume(
      const ::csi::v1::ControllerModifyVolumeRequest& r);

  // GroupController
  StatusOr<::csi::v1::GroupControllerGetCapabilitiesResponse> GroupControllerGetCapabilities();
  StatusOr<::csi::v1::CreateVolumeGroupSnapshotResponse> CreateVolumeGroupSnapshot(
      const ::csi::v1::CreateVolumeGroupSnapshotRequest& r);
  StatusOr<::csi::v1::DeleteVolumeGroupSnapshotResponse> DeleteVolumeGroupSnapshot(
      const ::csi::v1::DeleteVolumeGroupSnapshotRequest& r);
  StatusOr<::csi::v1::GetVolumeGroupSnapshotResponse> GetVolumeGroupSnapshot(
      const ::csi::v1::GetVolumeGroupSnapshotRequest& r);

  // SnapshotMetadata (server-streaming): `on_message` is called for each message in order;
  // returning false cancels the stream (the call then returns CANCELLED).
  Status GetMetadataAllocated(const ::csi::v1::GetMetadataAllocatedRequest& r,
                              const std::function<bool(const ::csi::v1::GetMetadataAllocatedResponse&)>& on_message);
  Status GetMetadataDelta(const ::csi::v1::GetMetadataDeltaRequest& r,
                          const std::function<bool(const ::csi::v1::GetMetadataDeltaResponse&)>& on_message);

  // Node
  StatusOr<::csi::v1::NodeStageVolumeResponse> NodeStageVolume(const ::csi::v1::NodeStageVolumeRequest& r);
  StatusOr<::csi::v1::NodeUnstageVolumeResponse> NodeUnstageVolume(const ::csi::v1::NodeUnstageVolumeRequest& r);
  StatusOr<::csi::v1::NodePublishVolumeResponse> NodePublishVolume(const ::csi::v1::NodePublishVolumeRequest& r);
  StatusOr<::csi::v1::NodeUnpublishVolumeResponse> NodeUnpublishVolume(
      const ::csi::v1::NodeUnpublishVolumeRequest& r);
  StatusOr<::csi::v1::NodeGetVolumeStatsResponse> NodeGetVolumeStats(const ::csi::v1::NodeGetVolumeStatsRequest& r);
  StatusOr<::csi::v1::NodeExpandVolumeResponse> NodeExpandVolume(const ::csi::v1::NodeExpandVolumeRequest& r);
  StatusOr<::csi::v1::NodeGetCapabilitiesResponse> NodeGetCapabilities();
  StatusOr<::csi::v1::NodeGetInfoResponse> NodeGetInfo();

 private:
  CsiClient() = default;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<::csi::v1::Identity::Stub> identity_;
  std::unique_ptr<::csi::v1::Controller::Stub> controller_;
  std::unique_ptr<::csi::v1::GroupController::Stub> group_controller_;
  std::unique_ptr<::csi::v1::SnapshotMetadata::Stub> snapshot_metadata_;
  std::unique_ptr<::csi::v1::Node::Stub> node_;
  std::chrono::milliseconds timeout_{std::chrono::minutes(5)};
};

}  // namespace vdisk::csi
