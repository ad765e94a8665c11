// Backup and restore of an iSCSI volume: the backup reads pool snapshots through their temporary
// read-only exports (libiscsi, sparse by GET LBA STATUS), full then incremental (no pool change
// map on iSCSI: unchanged chunks are found by hashing), and the restore writes into another iSCSI
// volume through an iscsi: device URI. Bytes are compared by QEMU over iscsi://.
#include <gtest/gtest.h>

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "backup/pipeline/backup.h"
#include "backup/pipeline/restore.h"
#include "backup/store/file_store.h"
#include "blockdev/sync_io.h"
#include "common/fs.h"
#include "common/subprocess.h"
#include "tests/backup/backup_test_util.h"
#include "tests/iscsi/tgt_env.h"
#include "tests/pool/pool_test_util.h"

namespace vdisk::backup {
namespace {

constexpr uint64_t MiB = 1ull << 20;

TEST(IscsiBackupTest, FullAndIncrementalBackupRestoreIntoAnotherIscsiVolume) {
  auto env = vdisk::testing::LoadTgtEnv();
  ASSERT_TRUE(env.ok()) << env.status();
  const std::string token = vdisk::testing::UniqueToken();
  // acl: open, so that QEMU and the restore's iscsi: URI reach the LUNs.
  const blockdev::PoolConfig cfg = vdisk::testing::IscsiPoolConfig(*env, "bk", token, {{"acl", "open"}});
  auto opened = vdisk::testing::OpenTestPool(cfg);
  ASSERT_TRUE(opened.ok()) << opened.status();
  auto pool = *opened;
  const std::string dir = testing::ScratchDir("iscsi-backup");
  blockdev::VolumeRequest req;
  req.name = "vm-disk";
  req.size_bytes = 256 * MiB;
  auto vol = pool->create_volume(req);
  ASSERT_TRUE(vol.ok()) << vol.status();
  {
    auto dev = pool->open_volume(vol->id, false).value();
    ASSERT_TRUE(vdisk::pooltest::WritePattern(*dev, 0, 48 * MiB, 1).ok());
    ASSERT_TRUE(vdisk::pooltest::WritePattern(*dev, 100 * MiB, 16 * MiB, 2).ok());
  }
  auto repo = Repository::Init(OpenFileStore(dir + "/repo").value(), testing::Password("pw"), [] {
                InitOptions o = testing::SmallRepo();
                o.create_root = true;
                return o;
              }()).value();
  auto s1 = pool->create_snapshot(vol->id, "s1").value();
  BackupOptions o;
  o.disks.push_back({.name = "rootdisk", .pool = cfg, .pool_snapshot = s1.id});
  o.parent = "auto";
  auto full = CreateBackup(*repo, o);
  ASSERT_TRUE(full.ok()) << full.status();
  EXPECT_EQ(full->manifest.disks[0].stats.bytes_read, 64 * MiB) << "holes are skipped (GET LBA STATUS)";

  {
    auto dev = pool->open_volume(vol->id, false).value();
    ASSERT_TRUE(vdisk::pooltest::WritePattern(*dev, 10 * MiB, 2 * MiB, 7).ok());
    ASSERT_TRUE(vdisk::pooltest::WritePattern(*dev, 200 * MiB, MiB, 9).ok());
  }
  auto s2 = pool->create_snapshot(vol->id, "s2").value();
  o.disks[0].pool_snapshot = s2.id;
  auto inc = CreateBackup(*repo, o);
  ASSERT_TRUE(inc.ok()) << inc.status();
  const DiskBackup& d = inc->manifest.disks[0];
  EXPECT_EQ(d.stats.chunks_new, 3u) << d.change_map;
  EXPECT_GE(d.stats.chunks_reused, 62u) << "unchanged chunks are read, hashed and found in the repository";

  // Restore the incremental into a fresh iSCSI volume through its device URI.
  req.name = "vm-disk-restored";
  auto target = pool->create_volume(req);
  ASSERT_TRUE(target.ok()) << target.status();
  const auto uri = [&](const std::string& iqn) { return absl::StrCat("iscsi://", env->portal, "/", iqn, "/1"); };
  RestoreOptions ro;
  ro.backup = inc->manifest.id;
  ro.target = uri(target->context.at("iscsi.iqn"));
  auto r = Restore(*repo, ro);
  ASSERT_TRUE(r.ok()) << r.status();
  // QEMU compares the restored LUN with snapshot s2 (exported while we hold it open).
  auto snap = pool->open_snapshot(s2.id).value();
  auto cmp = RunProcess({"qemu-img", "compare", "-f", "raw", "-F", "raw",
                         uri(cfg.options.at("iqn_prefix") + ":snapshot." + s2.id), ro.target});
  ASSERT_TRUE(cmp.ok());
  EXPECT_EQ(cmp->exit_code, 0) << cmp->out << cmp->err;
  snap.reset();
  auto restored = pool->open_volume(target->id, true).value();
  auto alloc = restored->allocated(0, restored->size());
  ASSERT_TRUE(alloc.ok());
  EXPECT_LE(blockdev::TotalBytes(*alloc), 68 * MiB) << "the restore writes no holes";
  restored.reset();

  (void)pool->delete_snapshot(s1.id);
  (void)pool->delete_snapshot(s2.id);
  (void)pool->delete_volume(vol->id);
  (void)pool->delete_volume(target->id);
  pool.reset();
  std::filesystem::remove_all(dir);
  (void)fs::RemoveAll(env->backing + "/" + token);
}

}  // namespace
}  // namespace vdisk::backup
