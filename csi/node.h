// CSI Node service: stage / unstage, publish / unpublish, volume stats, node expansion, node
// info and capabilities, on the node this process runs on.
//
// Staging asks the pool to attach the volume (Block: a block device such as a loop device;
// Filesystem: the directory holding disk.img) and, for Filesystem volumes, bind-mounts that
// directory at the staging path. Publishing bind-mounts the block device onto a file at the
// target path (Block) or the staging directory onto the target directory (Filesystem);
// read-only is honoured (a read-only remount, plus a read-only attachment for Block because a
// read-only bind mount does not stop writes through a device node). Every step is recorded in
// the NodeStateStore before it is taken, so repeats are idempotent and a restarted driver
// knows what to undo. Paths outside the allowed roots are INVALID_ARGUMENT.
//
// A Filesystem volume whose volume context says `attach: vhost-user` (node_attach.h) is staged
// without a kernel attachment; each publish serves it from this process as a vhost-user-blk
// export whose socket directory is bind-mounted at the target path (vhost_publish.h), for
// QEMU/KVM to attach; the exports are restored when the plugin restarts.
//
// Credentials: each call opens the volume's pool with its own secrets when kubelet passed some
// (NodeStage, NodePublish, NodeExpand), else with the stage secrets the node kept for the volume
// (node_credentials.h), else with the pool's own identity; never with an empty set that would
// fall back to a default identity.
#pragma once

#include <memory>

#include "csi/csi.grpc.pb.h"
#include "csi/driver.h"

namespace vdisk::csi {

class NodeService final : public ::csi::v1::Node::Service {
 public:
  explicit NodeService(std::shared_ptr<DriverContext> ctx) : ctx_(std::move(ctx)) {}

  // Starts again the vhost-user exports the node records say are published (after a plugin
  // restart). Failures are logged; the volumes stay recorded so NodeUnpublish still works.
  void RestoreVhostExports();
  // Drops the stage secrets kept for volumes no longer staged (node_credentials.h).
  void ForgetStaleCredentials();

  grpc::Status NodeStageVolume(grpc::ServerContext*, const ::csi::v1::NodeStageVolumeRequest*,
                               ::csi::v1::NodeStageVolumeResponse*) override;
  grpc::Status NodeUnstageVolume(grpc::ServerContext*, const ::csi::v1::NodeUnstageVolumeRequest*,
                                 ::csi::v1::NodeUnstageVolumeResponse*) override;
  grpc::Status NodePublishVolume(grpc::ServerContext*, const ::csi::v1::NodePublishVolumeRequest*,
                                 ::csi::v1::NodePublishVolumeResponse*) override;
  grpc::Status NodeUnpublishVolume(grpc::ServerContext*, const ::csi::v1::NodeUnpublishVolumeRequest*,
                                   ::csi::v1::NodeUnpublishVolumeResponse*) override;
  grpc::Status NodeGetVolumeStats(grpc::ServerContext*, const ::csi::v1::NodeGetVolumeStatsRequest*,
                                  ::csi::v1::NodeGetVolumeStatsResponse*) override;
  grpc::Status NodeExpandVolume(grpc::ServerContext*, const ::csi::v1::NodeExpandVolumeRequest*,
                                ::csi::v1::NodeExpandVolumeResponse*) override;
  grpc::Status NodeGetCapabilities(grpc::ServerContext*, const ::csi::v1::NodeGetCapabilitiesRequest*,
                                   ::csi::v1::NodeGetCapabilitiesResponse*) override;
  grpc::Status NodeGetInfo(grpc::ServerContext*, const ::csi::v1::NodeGetInfoRequest*,
                           ::csi::v1::NodeGetInfoResponse*) override;

 private:
  // attach: vhost-user (vhost_publish.h). Starts the export of `pub` in its export directory,
  // describes it there and mounts the directory at the target; idempotent (a restored or
  // repeated publish finds what is already in place).
  Status StartVhostExport(const std::string& csi_id, const std::shared_ptr<blockdev::Pool>& pool,
                          const std::string& local_id, const PublishRecord& pub, unsigned queues);
  // Rewrites vhost-user-blk.json of `pub` from its running export (size, block size, ...).
  Status DescribeVhostExport(const std::string& csi_id, const PublishRecord& pub, unsigned queues);
  // Unmounts the target, stops the export (in-flight requests complete) and removes its directory.
  Status StopVhostExport(const PublishRecord& pub);
  // The secrets to open a volume's pool with: `given` (the request's) when it has some, else
  // those kept when the volume was staged (node_credentials.h).
  StatusOr<blockdev::Params> NodeSecrets(const std::string& volume_id, const blockdev::Params& given);
  Status DoStage(const ::csi::v1::NodeStageVolumeRequest& req);
  Status DoUnstage(const ::csi::v1::NodeUnstageVolumeRequest& req);
  Status DoPublish(const ::csi::v1::NodePublishVolumeRequest& req);
  Status DoUnpublish(const ::csi::v1::NodeUnpublishVolumeRequest& req);
  Status DoStats(const ::csi::v1::NodeGetVolumeStatsRequest& req, ::csi::v1::NodeGetVolumeStatsResponse* resp);
  Status DoExpand(const ::csi::v1::NodeExpandVolumeRequest& req, ::csi::v1::NodeExpandVolumeResponse* resp);

  std::shared_ptr<DriverContext> ctx_;
};

}  // namespace vdisk::csi
