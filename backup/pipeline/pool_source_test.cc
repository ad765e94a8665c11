#include "backup/pipeline/pool_source.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

namespace vdisk::backup {
namespace {

TEST(PoolSource, SnapshotRefs) {
  auto h = ParseSnapshotRef("v1.snap.fast.snap-01.x").value();
  EXPECT_EQ(h.pool, "fast");
  EXPECT_EQ(h.local_id, "snap-01.x");
  auto p = ParseSnapshotRef("snap-7").value();
  EXPECT_EQ(p.pool, "");
  EXPECT_EQ(p.local_id, "snap-7");
  EXPECT_FALSE(ParseSnapshotRef("").ok());
  EXPECT_FALSE(ParseSnapshotRef("v1.snap.nopool").ok());
}

TEST(PoolSource, ConfigFileAndFlag) {
  std::string path = "/tmp/vdisk-pool-source-" + std::to_string(::getpid()) + ".yaml";
  std::ofstream(path) << "driverName: vdisk.csi.io\npools:\n"
                         "  - name: local\n    kind: local\n    root: /var/lib/vdisk\n"
                         "  - name: fast\n    kind: local\n    options: {root: /mnt/nvme}\n";
  auto first = ResolvePool("", path, "").value();
  EXPECT_EQ(first.name, "local");
  EXPECT_EQ(first.options.at("root"), "/var/lib/vdisk");
  auto fast = ResolvePool("", path, "fast").value();
  EXPECT_EQ(fast.options.at("root"), "/mnt/nvme");
  EXPECT_EQ(ResolvePool("", path, "nope").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ResolvePool("local:/x", "", "").value().options.at("root"), "/x");
  EXPECT_EQ(ResolvePool("local:/x", "", "fast").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ResolvePool("", "", "").status().code(), absl::StatusCode::kInvalidArgument);
  std::remove(path.c_str());
}

}  // namespace
}  // namespace vdisk::backup
