// CSI Identity service: plugin name and version, capabilities (controller and group controller
// services, snapshot metadata when --snapshot-metadata, topology constraints when a pool is
// node-local, online expansion), readiness.
#pragma once

#include <memory>

#include "csi/csi.grpc.pb.h"
#include "csi/driver.h"

namespace vdisk::csi {

class IdentityService final : public ::csi::v1::Identity::Service {
 public:
  explicit IdentityService(std::shared_ptr<DriverContext> ctx) : ctx_(std::move(ctx)) {}

  grpc::Status GetPluginInfo(grpc::ServerContext*, const ::csi::v1::GetPluginInfoRequest* req,
                             ::csi::v1::GetPluginInfoResponse* resp) override;
  grpc::Status GetPluginCapabilities(grpc::ServerContext*,
                                     const ::csi::v1::GetPluginCapabilitiesRequest* req,
                                     ::csi::v1::GetPluginCapabilitiesResponse* resp) override;
  grpc::Status Probe(grpc::ServerContext*, const ::csi::v1::ProbeRequest* req,
                     ::csi::v1::ProbeResponse* resp) override;

 private:
  std::shared_ptr<DriverContext> ctx_;
};

}  // namespace vdisk::csi
