#include "csi/client.h"

#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>

#include "absl/strings/str_cat.h"
#include "csi/status_mapping.h"

namespace vdisk::csi {

namespace v1 = ::csi::v1;

namespace {

// Reads a server stream to its end; `on_message` false cancels it.
template <typename Resp>
Status ReadStream(grpc::ClientContext& ctx, grpc::ClientReader<Resp>& reader,
                  const std::function<bool(const Resp&)>& on_message) {
  Resp msg;
  bool cancelled = false;
  while (reader.Read(&msg)) {
    if (!on_message(msg)) {
      ctx.TryCancel();
      cancelled = true;
      break;
    }
  }
  grpc::Status s = reader.Finish();
  if (cancelled) return absl::CancelledError("stream cancelled by the client");
  return FromGrpcStatus(s);
}

template <typename Stub, typename Req, typename Resp>
StatusOr<Resp> Call(Stub* stub, grpc::Status (Stub::*method)(grpc::ClientContext*, const Req&, Resp*),
                    const Req& req, std::chrono::milliseconds timeout) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + timeout);
  Resp resp;
  grpc::Status s = (stub->*method)(&ctx, req, &resp);
  if (!s.ok()) return FromGrpcStatus(s);
  return resp;
}

}  // namespace

StatusOr<std::unique_ptr<CsiClient>> CsiClient::Create(const std::string& endpoint,
                                                       std::chrono::milliseconds timeout) {
  std::string target;
  if (endpoint.starts_with("unix://")) target = "unix:" + endpoint.substr(7);
  else if (endpoint.starts_with("unix:")) target = endpoint;
  else if (endpoint.starts_with("/")) target = "unix:" + endpoint;
  else
    return absl::InvalidArgumentError(absl::StrCat("endpoint '", endpoint, "' is not unix:///path/to/csi.sock"));
  std::unique_ptr<CsiClient> c(new CsiClient());
  c->channel_ = grpc::CreateChannel(target, grpc::InsecureChannelCredentials());
  c->identity_ = v1::Identity::NewStub(c->channel_);
  c->controller_ = v1::Controller::NewStub(c->channel_);
  c->node_ = v1::Node::NewStub(c->channel_);
  c->group_controller_ = v1::GroupController::NewStub(c->channel_);
  c->snapshot_metadata_ = v1::SnapshotMetadata::NewStub(c->channel_);
  c->timeout_ = timeout;
  return c;
}

Status CsiClient::WaitReady(std::chrono::milliseconds wait) {
  if (channel_->WaitForConnected(std::chrono::system_clock::now() + wait)) return Status();
  return absl::UnavailableError("CSI endpoint did not become ready");
}

#define VDISK_CSI_CALL(stub, Method, Req, Resp)                          \
  StatusOr<v1::Resp> CsiClient::Method(const v1::Req& r) {               \
    return Call(stub.get(), &std::remove_reference_t<decltype(*stub)>::Method, r, timeout_); \
  }
#define VDISK_CSI_CALL0(stub, Method, Req, Resp)                                                 \
  StatusOr<v1::Resp> CsiClient::Method() {                                                       \
    return Call(stub.get(), &std::remove_reference_t<decltype(*stub)>::Method, v1::Req(), timeout_); \
  }

VDISK_CSI_CALL0(identity_, GetPluginInfo, GetPluginInfoRequest, GetPluginInfoResponse)
VDISK_CSI_CALL0(identity_, GetPluginCapabilities, GetPluginCapabilitiesRequest, GetPluginCapabilitiesResponse)
VDISK_CSI_CALL0(identity_, Probe, ProbeRequest, ProbeResponse)
VDISK_CSI_CALL(controller_, CreateVolume, CreateVolumeRequest, CreateVolumeResponse)
VDISK_CSI_CALL(controller_, DeleteVolume, DeleteVolumeRequest, DeleteVolumeResponse)
VDISK_CSI_CALL(controller_, ValidateVolumeCapabilities, ValidateVolumeCapabilitiesRequest,
               ValidateVolumeCapabilitiesResponse)
VDISK_CSI_CALL(controller_, ListVolumes, ListVolumesRequest, ListVolumesResponse)
VDISK_CSI_CALL(controller_, GetCapacity, GetCapacityRequest, GetCapacityResponse)
VDISK_CSI_CALL0(controller_, ControllerGetCapabilities, ControllerGetCapabilitiesRequest,
                ControllerGetCapabilitiesResponse)
VDISK_CSI_CALL(controller_, CreateSnapshot, CreateSnapshotRequest, CreateSnapshotResponse)
VDISK_CSI_CALL(controller_, DeleteSnapshot, DeleteSnapshotRequest, DeleteSnapshotResponse)
VDISK_CSI_CALL(controller_, ListSnapshots, ListSnapshotsRequest, ListSnapshotsResponse)
VDISK_CSI_CALL(controller_, GetSnapshot, GetSnapshotRequest, GetSnapshotResponse)
VDISK_CSI_CALL(controller_, ControllerExpandVolume, ControllerExpandVolumeRequest, ControllerExpandVolumeResponse)
VDISK_CSI_CALL(controller_, ControllerGetVolume, ControllerGetVolumeRequest, ControllerGetVolumeResponse)
VDISK_CSI_CALL(controller_, ControllerPublishVolume, ControllerPublishVolumeRequest, ControllerPublishVolumeResponse)
VDISK_CSI_CALL(controller_, ControllerUnpublishVolume, ControllerUnpublishVolumeRequest,
               ControllerUnpublishVolumeResponse)
VDISK_CSI_CALL(controller_, ControllerModifyVolume, ControllerModifyVolumeRequest, ControllerModifyVolumeResponse)
VDISK_CSI_CALL0(group_controller_, GroupControllerGetCapabilities, GroupControllerGetCapabilitiesRequest,
                GroupControllerGetCapabilitiesResponse)
VDISK_CSI_CALL(group_controller_, CreateVolumeGroupSnapshot, CreateVolumeGroupSnapshotRequest,
               CreateVolumeGroupSnapshotResponse)
VDISK_CSI_CALL(group_controller_, DeleteVolumeGroupSnapshot, DeleteVolumeGroupSnapshotRequest,
               DeleteVolumeGroupSnapshotResponse)
VDISK_CSI_CALL(group_controller_, GetVolumeGroupSnapshot, GetVolumeGroupSnapshotRequest,
               GetVolumeGroupSnapshotResponse)
VDISK_CSI_CALL(node_, NodeStageVolume, NodeStageVolumeRequest, NodeStageVolumeResponse)
VDISK_CSI_CALL(node_, NodeUnstageVolume, NodeUnstageVolumeRequest, NodeUnstageVolumeResponse)
VDISK_CSI_CALL(node_, NodePublishVolume, NodePublishVolumeRequest, NodePublishVolumeResponse)
VDISK_CSI_CALL(node_, NodeUnpublishVolume, NodeUnpublishVolumeRequest, NodeUnpublishVolumeResponse)
VDISK_CSI_CALL(node_, NodeGetVolumeStats, NodeGetVolumeStatsRequest, NodeGetVolumeStatsResponse)
VDISK_CSI_CALL(node_, NodeExpandVolume, NodeExpandVolumeRequest, NodeExpandVolumeResponse)
VDISK_CSI_CALL0(node_, NodeGetCapabilities, NodeGetCapabilitiesRequest, NodeGetCapabilitiesResponse)
VDISK_CSI_CALL0(node_, NodeGetInfo, NodeGetInfoRequest, NodeGetInfoResponse)

#undef VDISK_CSI_CALL
#undef VDISK_CSI_CALL0

Status CsiClient::GetMetadataAllocated(const v1::GetMetadataAllocatedRequest& r,
                                       const std::function<bool(const v1::GetMetadataAllocatedResponse&)>& on_message) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + timeout_);
  auto reader = snapshot_metadata_->GetMetadataAllocated(&ctx, r);
  return ReadStream(ctx, *reader, on_message);
}

Status CsiClient::GetMetadataDelta(const v1::GetMetadataDeltaRequest& r,
                                   const std::function<bool(const v1::GetMetadataDeltaResponse&)>& on_message) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + timeout_);
  auto reader = snapshot_metadata_->GetMetadataDelta(&ctx, r);
  return ReadStream(ctx, *reader, on_message);
}

}  // namespace vdisk::csi
