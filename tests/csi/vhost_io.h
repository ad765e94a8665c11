// Talking to a volume published with `attach: vhost-user` from a CSI test: stage / publish with
// the volume context (where the attach kind travels), and single virtio-blk requests through a
// test front end (tests/vhost/vhost_client.h) playing QEMU and the guest driver.
#pragma once

#include <cstring>
#include <string>

#include "blockdev/vhost/protocol.h"
#include "csi/client.h"
#include "tests/vhost/vhost_client.h"

namespace vdisk::csi::testing {

inline Status StageWithContext(CsiClient& c, const ::csi::v1::Volume& vol, const std::string& staging,
                               const ::csi::v1::VolumeCapability& cap) {
  ::csi::v1::NodeStageVolumeRequest req;
  req.set_volume_id(vol.volume_id());
  req.set_staging_target_path(staging);
  *req.mutable_volume_capability() = cap;
  *req.mutable_volume_context() = vol.volume_context();
  return c.NodeStageVolume(req).status();
}

inline Status PublishWithContext(CsiClient& c, const ::csi::v1::Volume& vol, const std::string& staging,
                                 const std::string& target, const ::csi::v1::VolumeCapability& cap) {
  ::csi::v1::NodePublishVolumeRequest req;
  req.set_volume_id(vol.volume_id());
  req.set_staging_target_path(staging);
  req.set_target_path(target);
  *req.mutable_volume_capability() = cap;
  *req.mutable_volume_context() = vol.volume_context();
  return c.NodePublishVolume(req).status();
}

// One request through the socket (queue 0); returns the virtio-blk status byte (0xff: no answer
// within `timeout_ms`). Reads land in *data, writes send it.
inline uint8_t VhostRequest(blockdev::vhost::testing::VhostClient& vc, uint32_t type, uint64_t offset,
                            std::string* data, int timeout_ms = 5000) {
  namespace vh = blockdev::vhost;
  using blockdev::vhost::testing::VhostClient;
  const uint64_t scratch = VhostClient::kDataBase;
  const uint32_t len = data ? static_cast<uint32_t>(data->size()) : 0;
  auto layout = vc.Layout(scratch, len);
  if (type == vh::kBlkTOut) std::memcpy(vc.ram().at(layout.data_gpa), data->data(), len);
  vc.Submit(0, type, offset / 512, scratch, len, /*data_writable=*/type == vh::kBlkTIn);
  vc.Kick(0);
  if (vc.WaitUsed(0, 1, timeout_ms).size() != 1) return 0xff;
  if (type == vh::kBlkTIn) std::memcpy(data->data(), vc.ram().at(layout.data_gpa), len);
  return vc.StatusByte(scratch, len);
}

}  // namespace vdisk::csi::testing
