// Where a vhost-user export lives and what its description says (csi/vhost_publish.h).
#include "csi/vhost_publish.h"

#include <gtest/gtest.h>
#include <sys/un.h>

#include "csi/node_state.h"
#include "nlohmann/json.hpp"

namespace vdisk::csi {
namespace {

const std::string kKubeletTarget =
    "/var/lib/kubelet/pods/5f0c7e2a-3b1d-4c8e-9a6f-2d4b8c1e7f90/volumes/kubernetes.io~csi/"
    "pvc-0b6a9c3e-7d2f-4e1a-8b5c-9f3d2e1a6c7b/mount";

TEST(VhostPublishTest, ExportDirsAreShortStableAndDistinct) {
  const std::string dir = VhostExportDir("/var/lib/vdisk-csi/node/vhost", "v1.vol.local.a", kKubeletTarget);
  EXPECT_EQ(dir, VhostExportDir("/var/lib/vdisk-csi/node/vhost", "v1.vol.local.a", kKubeletTarget));
  EXPECT_NE(dir, VhostExportDir("/var/lib/vdisk-csi/node/vhost", "v1.vol.local.b", kKubeletTarget));
  EXPECT_NE(dir, VhostExportDir("/var/lib/vdisk-csi/node/vhost", "v1.vol.local.a", kKubeletTarget + "2"));
  EXPECT_EQ(dir.size(), std::string("/var/lib/vdisk-csi/node/vhost/").size() + 16);
  EXPECT_LT(VhostSocketPath(dir).size(), sizeof(sockaddr_un{}.sun_path));
  EXPECT_GT(kKubeletTarget.size() + 1 + std::string(kVhostSocketName).size(), sizeof(sockaddr_un{}.sun_path))
      << "the point: the socket could not live at kubelet's path";
}

TEST(VhostPublishTest, VhostDirMustBeAbsoluteAndShort) {
  EXPECT_TRUE(CheckVhostDir("/var/lib/vdisk-csi/node/vhost").ok());
  EXPECT_TRUE(CheckVhostDir("/" + std::string(69, 'd')).ok());
  EXPECT_EQ(CheckVhostDir("/" + std::string(70, 'd')).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CheckVhostDir("relative/vhost").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CheckVhostDir("").code(), absl::StatusCode::kInvalidArgument);
}

TEST(VhostPublishTest, DescriptionNamesTheSocketAndTheDisk) {
  VhostExportInfo info{"v1.vol.local.vm1-abc", 32ull << 30, 4096, 4, true, "vm1-abc"};
  auto j = nlohmann::json::parse(VhostExportInfoJson(info));
  EXPECT_EQ(j["format"], 1);
  EXPECT_EQ(j["type"], "vhost-user-blk");
  EXPECT_EQ(j["socket"], "vhost-user-blk.sock");
  EXPECT_EQ(j["volume_id"], "v1.vol.local.vm1-abc");
  EXPECT_EQ(j["size_bytes"], 32ull << 30);
  EXPECT_EQ(j["logical_block_size"], 4096);
  EXPECT_EQ(j["num_queues"], 4);
  EXPECT_EQ(j["read_only"], true);
  EXPECT_EQ(j["serial"], "vm1-abc");
}

TEST(VhostPublishTest, NodeRecordsKeepTheExportDir) {
  VolumeRecord r;
  r.volume_id = "v1.vol.local.vm1-abc";
  r.staging_path = "/var/lib/kubelet/plugins/x/globalmount";
  r.mode = blockdev::VolumeMode::kFilesystem;
  r.vhost_queues = 2;
  PublishRecord p;
  p.target_path = kKubeletTarget;
  p.vhost_dir = VhostExportDir("/var/lib/vdisk-csi/node/vhost", r.volume_id, kKubeletTarget);
  r.publishes.push_back(p);
  auto back = NodeStateStore::Parse(NodeStateStore::Serialize(r));
  ASSERT_TRUE(back.ok()) << back.status();
  ASSERT_EQ(back->publishes.size(), 1u);
  EXPECT_EQ(back->publishes[0].vhost_dir, p.vhost_dir);
  EXPECT_EQ(back->vhost_queues, 2u);
}

}  // namespace
}  // namespace vdisk::csi
