#include "backup/repo/manifest.h"

#include <gtest/gtest.h>

namespace vdisk::backup {
namespace {

Manifest Sample(const RepoKeys& k) {
  Manifest m;
  m.id = NewBackupId(1700000000000);
  m.group = "default/vm1";
  m.parent = "20231114T000000Z-deadbeef";
  m.hostname = "node-a";
  m.started_unix = 1700000000;
  m.finished_unix = 1700000042;
  m.tags = {{"vm", "vm1"}};
  DiskBackup d;
  d.name = "rootdisk";
  d.source = "file:/var/lib/vdisk/vol/disk.img";
  d.source_snapshot = "snap-2";
  d.size_bytes = (8ull << 30) + 4096;
  d.block_size = 4096;
  d.chunk_size = 1 << 20;
  d.change_map = "incremental:pool";
  for (uint32_t i = 0; i < 100; i += 3) d.chunks.push_back({i, ComputeChunkId(k, std::to_string(i))});
  d.unallocated = {{0, 4096}, {1 << 30, 1 << 20}};
  d.stats.bytes_read = 123;
  d.stats.chunks_new = 4;
  m.disks.push_back(d);
  m.kubernetes.push_back({"vm.yaml", "VirtualMachine", "vm1", "default", "kind: VirtualMachine\n"});
  return m;
}

TEST(Manifest, RoundTrip) {
  RepoKeys k = RepoKeys::Generate();
  Manifest m = Sample(k);
  std::string data = EncodeManifest(k, m);
  Manifest back = DecodeManifest(k, m.id, data).value();
  EXPECT_EQ(back, m);
  EXPECT_EQ(back.disk("rootdisk")->chunk_count(), 8193u);
  EXPECT_EQ(back.disk("rootdisk")->data_bytes(), 34ull << 20);
}

TEST(Manifest, BoundToIdAndKey) {
  RepoKeys k = RepoKeys::Generate();
  Manifest m = Sample(k);
  std::string data = EncodeManifest(k, m);
  EXPECT_EQ(DecodeManifest(k, "other-id", data).status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(DecodeManifest(RepoKeys::Generate(), m.id, data).status().code(),
            absl::StatusCode::kDataLoss);
}

TEST(Manifest, SummaryJsonHasNoChunkMapUnlessAsked) {
  RepoKeys k = RepoKeys::Generate();
  Manifest m = Sample(k);
  auto j = ManifestToJson(m, false);
  EXPECT_FALSE(j["disks"][0].contains("chunk_map"));
  EXPECT_EQ(j["disks"][0]["data_chunks"], 34);
  EXPECT_TRUE(ManifestToJson(m, true)["disks"][0].contains("chunk_map"));
}

TEST(Manifest, BackupIdsSortByTime) {
  EXPECT_LT(NewBackupId(1700000000000), NewBackupId(1700000000001));
  EXPECT_LT(NewBackupId(1700000000999), NewBackupId(1700000001000));
  EXPECT_EQ(NewBackupId(1700000000042).substr(0, 21), "20231114T221320.042Z-");
}

}  // namespace
}  // namespace vdisk::backup
