// Backup and restore of NFS volumes (against the ganesha of the `nfs` fixture) into a file://
// repository: a full backup from a pool snapshot, an incremental one (with server-side reflinks
// the pool's FIEMAP change map names exactly what changed; without them every chunk is read and
// hashed and only new ones stored), and a restore into a new NFS volume that is byte-identical
// and sparse on the server.
#include <gtest/gtest.h>

#include <filesystem>

#include "backup/pipeline/backup.h"
#include "backup/pipeline/restore.h"
#include "backup/store/file_store.h"
#include "blockdev/registry.h"
#include "blockdev/sync_io.h"
#include "tests/backup/backup_test_util.h"
#include "tests/nfs/nfs_fixture.h"
#include "tests/pool/pool_test_util.h"

namespace vdisk::backup {
namespace {

using namespace vdisk::backup::testing;
constexpr uint64_t MiB = 1ull << 20;

class NfsBackupTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    blockdev::RegisterBuiltinBackends();
    fixture_ = std::make_unique<pooltest::NfsPoolFixture>(GetParam());
    ASSERT_TRUE(fixture_->SetUp().ok());
    auto p = fixture_->Open();
    ASSERT_TRUE(p.ok()) << p.status();
    pool_ = *p;
    dir_ = ScratchDir("nfs-backup");
  }
  void TearDown() override {
    pool_.reset();
    if (fixture_) fixture_->TearDown();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }
  std::unique_ptr<pooltest::NfsPoolFixture> fixture_;
  std::shared_ptr<blockdev::Pool> pool_;
  std::string dir_;
};

TEST_P(NfsBackupTest, FullIncrementalAndRestoreIntoANewVolume) {
  blockdev::VolumeRequest req;
  req.name = "vm-root";
  req.size_bytes = 128 * MiB;
  auto vol = pool_->create_volume(req);
  ASSERT_TRUE(vol.ok()) << vol.status();
  {
    auto dev = pool_->open_volume(vol->id, false);
    ASSERT_TRUE(dev.ok());
    ASSERT_TRUE(pooltest::WritePattern(**dev, 0, 32 * MiB, 1).ok());
    ASSERT_TRUE(blockdev::Flush(**dev).ok());
  }
  auto repo = Repository::Init(OpenFileStore(dir_ + "/repo").value(), Password("pw"), [] {
                InitOptions o = SmallRepo();
                o.create_root = true;
                return o;
              }());
  ASSERT_TRUE(repo.ok()) << repo.status();
  auto s1 = pool_->create_snapshot(vol->id, "s1");
  ASSERT_TRUE(s1.ok()) << s1.status();
  const blockdev::PoolConfig cfg = fixture_->config();
  BackupOptions o;
  o.disks.push_back({.name = "rootdisk", .pool = cfg, .pool_snapshot = s1->id});
  o.parent = "auto";
  auto full = CreateBackup(**repo, o);
  ASSERT_TRUE(full.ok()) << full.status();
  const DiskBackup& f = full->manifest.disks[0];
  EXPECT_EQ(f.stats.chunks_new, 32u);  // the data; zero chunks are never stored
  if (GetParam()) {  // allocation from the server's fs
    EXPECT_EQ(f.stats.bytes_read, 32 * MiB);
  }

  {
    auto dev = pool_->open_volume(vol->id, false);
    ASSERT_TRUE(pooltest::WritePattern(**dev, 10 * MiB, 2 * MiB, 7).ok());
    ASSERT_TRUE(pooltest::WritePattern(**dev, 100 * MiB, MiB, 9).ok());
    ASSERT_TRUE(blockdev::Flush(**dev).ok());
  }
  auto s2 = pool_->create_snapshot(vol->id, "s2");
  ASSERT_TRUE(s2.ok()) << s2.status();
  o.disks[0].pool_snapshot = s2->id;
  auto inc = CreateBackup(**repo, o);
  ASSERT_TRUE(inc.ok()) << inc.status();
  const DiskBackup& d = inc->manifest.disks[0];
  EXPECT_EQ(d.stats.chunks_new, 3u) << d.change_map;
  if (GetParam()) {
    EXPECT_NE(d.change_map.find("pool change map since snapshot " + s1->id), std::string::npos)
        << d.change_map;
    EXPECT_EQ(d.stats.bytes_read, 3 * MiB);
  }

  // Restore the incremental into a new NFS volume: identical to snapshot 2, and sparse.
  RestoreOptions ro;
  ro.backup = inc->manifest.id;
  ro.pool = cfg;
  ro.volume_name = "vm-root-restored";
  auto r = Restore(**repo, ro);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->created);
  auto restored = pool_->find_volume_by_name("vm-root-restored");
  ASSERT_TRUE(restored.ok() && restored->has_value());
  EXPECT_FALSE((*restored)->pending);
  auto a = pool_->open_snapshot(s2->id);
  auto b = pool_->open_volume((*restored)->id, true);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(*pooltest::Digest(**a), *pooltest::Digest(**b));
  EXPECT_LE(AllocatedBytes(fixture_->local_root() + "/volumes/" + (*restored)->id + "/disk.img"),
            48 * MiB);
}

INSTANTIATE_TEST_SUITE_P(Nfs, NfsBackupTest, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& i) {
                           return std::string(i.param ? "Reflink" : "Copy");
                         });

}  // namespace
}  // namespace vdisk::backup
