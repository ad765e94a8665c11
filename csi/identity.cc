#include "csi/identity.h"

#include "absl/strings/str_join.h"
#include "csi/rpc.h"

namespace vdisk::csi {

using ::csi::v1::PluginCapability;

grpc::Status IdentityService::GetPluginInfo(grpc::ServerContext*,
                                            const ::csi::v1::GetPluginInfoRequest* req,
                                            ::csi::v1::GetPluginInfoResponse* resp) {
  return ServeRpc("GetPluginInfo", *req, resp, [&]() -> Status {
    resp->set_name(ctx_->options().driver_name);
    resp->set_vendor_version(kVendorVersion);
    auto& m = *resp->mutable_manifest();
    m["pools"] = absl::StrJoin(ctx_->pools().names(), ",");
    m["roles"] = std::string(ctx_->options().serve_controller ? "controller" : "") +
                 (ctx_->options().serve_controller && ctx_->options().serve_node ? "," : "") +
                 (ctx_->options().serve_node ? "node" : "");
    return Status();
  });
}

grpc::Status IdentityService::GetPluginCapabilities(
    grpc::ServerContext*, const ::csi::v1::GetPluginCapabilitiesRequest* req,
    ::csi::v1::GetPluginCapabilitiesResponse* resp) {
  return ServeRpc("GetPluginCapabilities", *req, resp, [&]() -> Status {
    auto add_service = [&](PluginCapability::Service::Type t) {
      resp->add_capabilities()->mutable_service()->set_type(t);
    };
    if (ctx_->options().serve_controller) {
      add_service(PluginCapability::Service::CONTROLLER_SERVICE);
      add_service(PluginCapability::Service::GROUP_CONTROLLER_SERVICE);
      if (ctx_->options().advertise_snapshot_metadata)
        add_service(PluginCapability::Service::SNAPSHOT_METADATA_SERVICE);
    }
    if (ctx_->AnyNodeLocalPool()) add_service(PluginCapability::Service::VOLUME_ACCESSIBILITY_CONSTRAINTS);
    resp->add_capabilities()->mutable_volume_expansion()->set_type(PluginCapability::VolumeExpansion::ONLINE);
    return Status();
  });
}

grpc::Status IdentityService::Probe(grpc::ServerContext*, const ::csi::v1::ProbeRequest* req,
                                    ::csi::v1::ProbeResponse* resp) {
  return ServeRpc("Probe", *req, resp, [&]() -> Status {
    // Healthy while every pool is (the spec's code for an unhealthy plugin is
    // FAILED_PRECONDITION).
    RETURN_IF_ERROR(ctx_->PoolsReady());
    resp->mutable_ready()->set_value(true);
    return Status();
  });
}

}  // namespace vdisk::csi
