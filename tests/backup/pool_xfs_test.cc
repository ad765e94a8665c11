// Pool-aware incremental backups on a local pool over a reflink XFS (tests/env/xfs.sh, a loop
// device): snapshots are reflinks, so the pool's change map (FIEMAP of the two snapshots) names
// exactly the changed chunks and the incremental reads only those. Needs root (loop + mount).
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "backup/pipeline/backup.h"
#include "backup/pipeline/restore.h"
#include "backup/store/file_store.h"
#include "blockdev/aligned_buffer.h"
#include "blockdev/registry.h"
#include "blockdev/sync_io.h"
#include "tests/backup/backup_test_util.h"

namespace vdisk::backup {
namespace {

using namespace vdisk::backup::testing;
constexpr uint64_t MiB = 1ull << 20;

class PoolXfsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root for a loop-mounted XFS";
    blockdev::RegisterBuiltinBackends();
    dir_ = ScratchDir("pool-xfs");
    const char* src = std::getenv("VDISK_SOURCE_DIR");
    script_ = std::string(src ? src : ".") + "/tests/env/xfs.sh";
    mnt_ = dir_ + "/mnt";
    ASSERT_EQ(testing::Run(script_ + " up " + dir_ + "/xfs.img " + mnt_ + " 4G >/dev/null 2>&1"), 0)
        << "tests/env/xfs.sh could not make a reflink XFS";
  }
  void TearDown() override {
    if (!mnt_.empty()) testing::Run(script_ + " down " + mnt_ + " >/dev/null 2>&1");
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }
  std::string dir_, mnt_, script_;
};

void Fill(blockdev::Device& dev, uint64_t offset, uint64_t length, uint8_t seed) {
  blockdev::AlignedBuffer buf(length);
  for (uint64_t i = 0; i < length; ++i)
    buf.data()[i] = std::byte(static_cast<uint8_t>((i * 2654435761u >> 13) + seed));
  ASSERT_TRUE(blockdev::WriteAt(dev, offset, buf.span()).ok());
  ASSERT_TRUE(blockdev::Flush(dev).ok());
}

TEST_F(PoolXfsTest, IncrementalReadsOnlyWhatThePoolSaysChanged) {
  auto cfg = blockdev::ParsePoolFlag("local:" + mnt_ + "/pool").value();
  cfg.options["reflink"] = "on";
  blockdev::PoolSet set;
  ASSERT_TRUE(set.Add(cfg).ok());
  auto pool = set.Get(cfg.name).value();
  ASSERT_TRUE(pool->capabilities().changed_extents);
  blockdev::VolumeRequest req;
  req.name = "vm-root";
  req.size_bytes = 256 * MiB;
  auto vol = pool->create_volume(req).value();
  {
    auto dev = pool->open_volume(vol.id, false).value();
    Fill(*dev, 0, 64 * MiB, 1);
  }
  auto repo = Repository::Init(OpenFileStore(dir_ + "/repo").value(), Password("pw"), [] {
                InitOptions o = SmallRepo();
                o.create_root = true;
                return o;
              }()).value();
  auto s1 = pool->create_snapshot(vol.id, "s1").value();
  BackupOptions o;
  o.disks.push_back(PoolSnapshotDisk("rootdisk", cfg, s1.id));
  o.parent = "auto";
  auto full = CreateBackup(*repo, o);
  ASSERT_TRUE(full.ok()) << full.status();
  EXPECT_EQ(full->manifest.disks[0].stats.bytes_read, 64 * MiB);

  {
    auto dev = pool->open_volume(vol.id, false).value();
    Fill(*dev, 10 * MiB, 2 * MiB, 7);   // rewrite 2 MiB inside the data
    Fill(*dev, 200 * MiB, 1 * MiB, 9);  // and 1 MiB in a hole
  }
  auto s2 = pool->create_snapshot(vol.id, "s2").value();
  o.disks[0].pool_snapshot = s2.id;
  auto inc = CreateBackup(*repo, o);
  ASSERT_TRUE(inc.ok()) << inc.status();
  const DiskBackup& d = inc->manifest.disks[0];
  EXPECT_NE(d.change_map.find("pool change map since snapshot " + s1.id), std::string::npos)
      << d.change_map;
  EXPECT_EQ(d.stats.bytes_read, 3 * MiB);
  EXPECT_EQ(d.stats.chunks_new, 3u);
  EXPECT_EQ(d.stats.chunks_unchanged, 62u);

  // The incremental restores alone, identical to snapshot 2.
  RestoreOptions ro;
  ro.backup = inc->manifest.id;
  ro.target = dir_ + "/restored.img";
  auto r = Restore(*repo, ro);
  ASSERT_TRUE(r.ok()) << r.status();
  auto snap = pool->open_snapshot(s2.id).value();
  auto restored = blockdev::OpenDeviceUri(ro.target, true).value();
  blockdev::AlignedBuffer a(1 * MiB), b(1 * MiB);
  for (uint64_t off = 0; off < 256 * MiB; off += MiB) {
    ASSERT_TRUE(blockdev::ReadAt(*snap, off, a.span()).ok());
    ASSERT_TRUE(blockdev::ReadAt(*restored, off, b.span()).ok());
    ASSERT_EQ(std::memcmp(a.data(), b.data(), MiB), 0) << "differs at " << off;
  }
  EXPECT_LE(AllocatedBytes(ro.target), 68 * MiB);
}

}  // namespace
}  // namespace vdisk::backup
