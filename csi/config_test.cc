#include "csi/config.h"

#include <gtest/gtest.h>

namespace vdisk::csi {
namespace {

TEST(Config, YamlWithPools) {
  auto cfg = ParseConfig(R"(
driverName: vdisk.example.com
nodeId: node-7
role: node
allowedPathRoots: [/var/lib/kubelet]
maxVolumesPerNode: 64
metricsAddress: ":9810"
healthInterval: 5
pools:
  - name: local
    kind: local
    root: /var/lib/vdisk
  - kind: local
    name: fast
    options: {root: /mnt/nvme}
)");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_EQ(*cfg->driver_name, "vdisk.example.com");
  EXPECT_EQ(*cfg->node_id, "node-7");
  EXPECT_EQ(*cfg->role, "node");
  EXPECT_EQ(cfg->allowed_path_roots->at(0), "/var/lib/kubelet");
  EXPECT_EQ(*cfg->max_volumes_per_node, 64);
  EXPECT_EQ(*cfg->metrics_address, ":9810");
  EXPECT_EQ(*cfg->health_interval_s, 5);
  ASSERT_EQ(cfg->pools.size(), 2u);
  EXPECT_EQ(cfg->pools[0].options.at("root"), "/var/lib/vdisk");
  EXPECT_EQ(cfg->pools[1].name, "fast");
  EXPECT_EQ(cfg->pools[1].options.at("root"), "/mnt/nvme");
}

TEST(Config, Json) {
  auto cfg = ParseConfig(R"({"pools": [{"kind": "local", "root": "/srv/vdisk"}], "nodeId": "n1"})");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  ASSERT_EQ(cfg->pools.size(), 1u);
  EXPECT_EQ(cfg->pools[0].name, "local");
}

TEST(Config, Errors) {
  EXPECT_EQ(ParseConfig("poolz: []").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseConfig("pools: [{name: x}]").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseConfig("pools: {a: b}").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseConfig("[1, 2").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseConfig("maxVolumesPerNode: -1").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseConfig("healthInterval: 0").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseConfig("healthInterval: soon").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseConfig("metricsAddress: [1]").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(ParseConfig("").ok());
}

}  // namespace
}  // namespace vdisk::csi
