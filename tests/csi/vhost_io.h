// Talking to a volume published with `attach: vhost-user` from a CSI test: stage / publish with
// the volume context (where the attach kind travels), and single virtio-blk requests through a
// test front end (tests/vhost/vhost_client.h) playing QEMU and the guest driver.
#pragma once

#include <atomic>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>

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
                                 const std::string& target, const ::csi::v1::VolumeCapability& cap,
                                 bool readonly = false) {
  ::csi::v1::NodePublishVolumeRequest req;
  req.set_volume_id(vol.volume_id());
  req.set_staging_target_path(staging);
  req.set_target_path(target);
  req.set_readonly(readonly);
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

// One writer that writes sequence number n to block 0 of volume A, waits for it, then writes n
// to block 0 of volume B, waits, and goes on with n+1 until stopped: the workload that tells
// whether a group snapshot of A and B is one point in time (a snapshot pair holding A's a and
// B's b is consistent iff b <= a <= b + 1).
class AlternatingWriter {
 public:
  AlternatingWriter(blockdev::vhost::testing::VhostClient& a, blockdev::vhost::testing::VhostClient& b)
      : thread_([this, &a, &b] {
          for (uint64_t n = 1; !stop_.load(); ++n) {
            for (auto* vc : {&a, &b}) {
              std::string block(4096, '\0');
              std::memcpy(block.data(), &n, sizeof n);
              if (VhostRequest(*vc, blockdev::vhost::kBlkTOut, 0, &block) != blockdev::vhost::kBlkSOk) failures_++;
            }
            written_ = n;
          }
        }) {}
  ~AlternatingWriter() { Stop(); }
  void WaitFor(uint64_t n) const {
    while (written_.load() < n && !stop_.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  int failures() const { return failures_.load(); }

  // The sequence number in block 0 of a volume this writer wrote.
  static uint64_t SequenceOf(const void* block0) {
    uint64_t n = 0;
    std::memcpy(&n, block0, sizeof n);
    return n;
  }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> written_{0};
  std::atomic<int> failures_{0};
  std::thread thread_;  // last: starts once the counters exist
};

}  // namespace vdisk::csi::testing
