// Backup and restore through a file:// repository on the local file system, with real sparse
// image files (and a real local pool for the pool-aware incremental): full and incremental
// backups of known data, byte-identical and sparse restores, corruption and loss detected by
// verify and reported by restore, wrong key, interrupted backup resumed, prune and GC, locks,
// Kubernetes manifests.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "backup/pipeline/backup.h"
#include "backup/pipeline/kube_manifests.h"
#include "backup/pipeline/prune.h"
#include "backup/pipeline/restore.h"
#include "backup/pipeline/verify.h"
#include "backup/repo/lock.h"
#include "backup/store/file_store.h"
#include "blockdev/aligned_buffer.h"
#include "blockdev/registry.h"
#include "blockdev/sync_io.h"
#include "tests/backup/backup_test_util.h"

namespace vdisk::backup {
namespace {

using namespace vdisk::backup::testing;
constexpr uint64_t MiB = 1ull << 20;

class FileRepoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    blockdev::RegisterBuiltinBackends();
    dir_ = ScratchDir(::testing::UnitTest::GetInstance()->current_test_info()->name());
    repo_ = Repository::Init(OpenFileStore(dir_ + "/repo").value(), Password("pw"),
                             [] {
                               InitOptions o = SmallRepo();
                               o.create_root = true;
                               return o;
                             }())
                .value();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::unique_ptr<Repository> Reopen(const std::string& pw = "pw") {
    auto r = Repository::Open(OpenFileStore(dir_ + "/repo").value(), Password(pw));
    return r.ok() ? std::move(*r) : nullptr;
  }

  BackupResult Backup(const std::string& path, const std::string& parent = "",
                      std::optional<blockdev::ExtentList> changed = std::nullopt) {
    BackupOptions o;
    DiskSource d;
    d.name = "rootdisk";
    d.uri = path;
    d.changed = std::move(changed);
    o.disks.push_back(d);
    o.parent = parent;
    auto r = CreateBackup(*repo_, o);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? std::move(*r) : BackupResult{};
  }

  StatusOr<RestoreResult> RestoreTo(const std::string& id, const std::string& target) {
    RestoreOptions o;
    o.backup = id;
    o.target = target;
    return Restore(*repo_, o);
  }

  std::vector<std::string> Packs() {
    std::vector<std::string> out;
    auto listed = repo_->store().List(kPacksPrefix).value();
    for (const auto& o : listed) out.push_back(o.key);
    return out;
  }

  std::string dir_;
  std::unique_ptr<Repository> repo_;
};

// 64 MiB disk: 8 MiB random, 8 MiB compressible, 4 MiB of written zeroes, scattered 4 KiB
// blocks, holes elsewhere.
std::vector<Region> SampleRegions() {
  std::vector<Region> r = {{1 * MiB, 8 * MiB, Fill::kRandom, 1},
                           {20 * MiB, 8 * MiB, Fill::kCompressible, 2},
                           {40 * MiB, 4 * MiB, Fill::kZero, 0}};
  for (int i = 0; i < 6; ++i) r.push_back({50 * MiB + i * 1300 * 1024ull, 4096, Fill::kRandom, 10ull + i});
  return r;
}

TEST_F(FileRepoTest, FullAndIncrementalRestoreByteIdenticalAndSparse) {
  const std::string disk = dir_ + "/disk.img";
  MakeDisk(disk, 64 * MiB, SampleRegions());
  const std::string sha_v1 = Sha256File(disk);

  BackupResult full = Backup(disk);
  const DiskBackup& d1 = full.manifest.disks.at(0);
  EXPECT_EQ(d1.size_bytes, 64 * MiB);
  EXPECT_EQ(d1.stats.chunks_zero, 4u);  // written zeroes are never stored
  EXPECT_EQ(d1.stats.bytes_read, (8 + 8 + 4 + 6) * MiB);  // only allocated chunks were read
  EXPECT_EQ(d1.chunks.size(), 8u + 8u + 6u);
  EXPECT_LT(d1.stats.bytes_stored_new, d1.stats.bytes_new);  // compression helped
  EXPECT_FALSE(d1.unallocated.empty());

  // Change 2 MiB, back up incrementally with a change map.
  WriteRegions(disk, {{4 * MiB, 1 * MiB, Fill::kRandom, 99}, {22 * MiB, 1 * MiB, Fill::kRandom, 98}});
  const std::string sha_v2 = Sha256File(disk);
  BackupResult inc = Backup(disk, full.manifest.id,
                            blockdev::ExtentList{{4 * MiB, 1 * MiB}, {22 * MiB, 1 * MiB}});
  const DiskBackup& d2 = inc.manifest.disks.at(0);
  EXPECT_EQ(inc.manifest.parent, full.manifest.id);
  EXPECT_EQ(d2.stats.bytes_read, 2 * MiB);
  EXPECT_EQ(d2.stats.chunks_new, 2u);
  EXPECT_EQ(d2.stats.chunks_unchanged, d1.chunks.size() - 2);
  EXPECT_NE(d2.change_map.find("incremental"), std::string::npos) << d2.change_map;

  // Without a change map: read and hash everything, upload nothing new.
  BackupResult rehash = Backup(disk, "auto");
  EXPECT_EQ(rehash.manifest.parent, inc.manifest.id);
  EXPECT_EQ(rehash.manifest.disks[0].stats.chunks_new, 0u);
  EXPECT_EQ(rehash.packs_written, 0u);

  // Each manifest restores on its own (no parent replay), byte-identical and sparse.
  for (const auto& [id, sha] : {std::pair{full.manifest.id, sha_v1}, {inc.manifest.id, sha_v2},
                                {rehash.manifest.id, sha_v2}}) {
    const std::string out = dir_ + "/restored-" + id + ".img";
    auto r = RestoreTo(id, out);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_TRUE(r->created);
    EXPECT_EQ(FileSize(out), 64 * MiB);
    EXPECT_EQ(Sha256File(out), sha) << id;
    EXPECT_LE(AllocatedBytes(out), AllocatedBytes(disk)) << id;
    EXPECT_FALSE(std::filesystem::exists(out + ".vdisk-partial"));
  }
  VerifyOptions vo;
  vo.deep = true;
  auto v = Verify(*repo_, vo);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_TRUE(v->ok()) << v->problems.size() << " problems, first: "
                       << (v->problems.empty() ? "" : v->problems[0].message);
  EXPECT_EQ(v->backups, 3u);
  EXPECT_EQ(v->chunks_read, v->chunks_referenced);
  vo.sample_percent = 50;  // a sampled deep verify reads about half
  auto sampled = Verify(*repo_, vo);
  ASSERT_TRUE(sampled.ok()) << sampled.status();
  EXPECT_EQ(sampled->chunks_read, (v->chunks_referenced + 1) / 2);
}

TEST_F(FileRepoTest, RestoreOverwritesAnExistingFileAndPunchesHoles) {
  const std::string disk = dir_ + "/disk.img";
  MakeDisk(disk, 32 * MiB, {{2 * MiB, 3 * MiB, Fill::kRandom, 5}});
  BackupResult b = Backup(disk);
  const std::string target = dir_ + "/existing.img";
  MakeDisk(target, 40 * MiB, {{0, 40 * MiB, Fill::kRandom, 77}});  // larger and full of junk
  auto r = RestoreTo(b.manifest.id, target);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->created);
  EXPECT_EQ(FileSize(target), 32 * MiB);  // a regular file becomes exactly the disk
  EXPECT_EQ(Sha256File(target), Sha256File(disk));
  EXPECT_LE(AllocatedBytes(target), AllocatedBytes(disk) + 1 * MiB);  // holes punched
}

TEST_F(FileRepoTest, CorruptChunkIsFoundByDeepVerifyAndReportedByRestore) {
  const std::string disk = dir_ + "/disk.img";
  MakeDisk(disk, 16 * MiB, {{0, 6 * MiB, Fill::kRandom, 3}});
  BackupResult b = Backup(disk);
  auto packs = Packs();
  ASSERT_EQ(packs.size(), 1u);
  {
    // Flip one byte inside the third blob (about 2 MiB into the pack).
    std::fstream f(dir_ + "/repo/" + packs[0], std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(2 * MiB + 5000);
    char c;
    f.read(&c, 1);
    c ^= 0x20;
    f.seekp(2 * MiB + 5000);
    f.write(&c, 1);
  }
  VerifyOptions meta;
  EXPECT_TRUE(Verify(*repo_, meta).value().ok());  // metadata alone cannot see it
  VerifyOptions deep;
  deep.deep = true;
  VerifyResult v = Verify(*repo_, deep).value();
  ASSERT_EQ(v.problems.size(), 1u);
  EXPECT_EQ(v.problems[0].backup, b.manifest.id);
  EXPECT_EQ(v.problems[0].disk, "rootdisk");
  // Blobs are packed in the order workers finish them: the damaged one holds some chunk.
  const uint64_t bad_offset = v.problems[0].offset;
  EXPECT_EQ(bad_offset % MiB, 0u);
  EXPECT_LT(bad_offset, 6 * MiB);
  auto r = RestoreTo(b.manifest.id, dir_ + "/out.img");
  ASSERT_EQ(r.status().code(), absl::StatusCode::kDataLoss) << r.status();
  EXPECT_NE(std::string(r.status().message()).find(absl::StrCat("1 chunk(s)")), std::string::npos);
  EXPECT_NE(std::string(r.status().message()).find(absl::StrCat("offset ", bad_offset, ":")),
            std::string::npos)
      << r.status();
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/out.img"));  // never under its final name
}

TEST_F(FileRepoTest, MissingPackIsFoundByVerifyAndReportedByRestore) {
  const std::string disk = dir_ + "/disk.img";
  MakeDisk(disk, 16 * MiB, {{0, 3 * MiB, Fill::kRandom, 3}});
  BackupResult b = Backup(disk);
  for (const auto& p : Packs()) ASSERT_TRUE(repo_->store().Delete(p).ok());
  VerifyResult v = Verify(*repo_, VerifyOptions{}).value();
  EXPECT_FALSE(v.ok());
  bool pack_missing = false;
  for (const auto& p : v.problems) pack_missing |= p.message.find("missing") != std::string::npos;
  EXPECT_TRUE(pack_missing);
  auto r = RestoreTo(b.manifest.id, dir_ + "/out.img");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss) << r.status();
}

TEST_F(FileRepoTest, WrongKeyIsRefusedAndExtraKeySlotsWork) {
  EXPECT_EQ(Reopen("wrong"), nullptr);
  auto r = Repository::Open(OpenFileStore(dir_ + "/repo").value(), Password("wrong"));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_NE(std::string(r.status().message()).find("wrong repository password"), std::string::npos);
  RepoSecret key{RepoSecret::Kind::kKeyFile, std::string(40, 'z'), "test key file"};
  ASSERT_TRUE(repo_->AddKey(key, ScryptParams{1 << 12, 8, 1}).ok());
  auto by_key = Repository::Open(OpenFileStore(dir_ + "/repo").value(), key);
  ASSERT_TRUE(by_key.ok()) << by_key.status();
  EXPECT_EQ((*by_key)->config().id, repo_->config().id);
  EXPECT_NE(Reopen("pw"), nullptr);
  // No repository at all.
  auto none = Repository::Open(OpenFileStore(dir_ + "/nothing").value(), Password("pw"));
  EXPECT_EQ(none.status().code(), absl::StatusCode::kNotFound);
  // Init twice.
  auto again = Repository::Init(OpenFileStore(dir_ + "/repo").value(), Password("pw"), SmallRepo());
  EXPECT_EQ(again.status().code(), absl::StatusCode::kAlreadyExists);
}

TEST_F(FileRepoTest, InterruptedBackupResumesWithUploadedPacks) {
  const std::string disk = dir_ + "/disk.img";
  MakeDisk(disk, 64 * MiB, {{0, 40 * MiB, Fill::kRandom, 8}});
  std::atomic<bool> cancel{false};
  BackupOptions o;
  o.disks.push_back(UriDisk("rootdisk", disk));
  o.cancel = &cancel;
  o.on_pack_committed = [&](const PackRecord&) { cancel = true; };  // "crash" after one pack
  auto first = CreateBackup(*repo_, o);
  ASSERT_EQ(first.status().code(), absl::StatusCode::kCancelled) << first.status();
  EXPECT_TRUE(repo_->ListBackups().value().empty());  // no manifest: nothing half-visible
  const size_t packs_before = Packs().size();
  ASSERT_GE(packs_before, 1u);

  o.cancel = nullptr;
  o.on_pack_committed = nullptr;
  auto second = CreateBackup(*repo_, o);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->packs_resumed, packs_before);
  EXPECT_LT(second->manifest.disks[0].stats.chunks_new, 40u);  // resumed chunks not re-uploaded
  auto r = RestoreTo(second->manifest.id, dir_ + "/out.img");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(Sha256File(dir_ + "/out.img"), Sha256File(disk));
}

TEST_F(FileRepoTest, InterruptedRestoreCanBeRerun) {
  const std::string disk = dir_ + "/disk.img";
  MakeDisk(disk, 32 * MiB, {{0, 20 * MiB, Fill::kRandom, 4}});
  BackupResult b = Backup(disk);
  // An interrupted run leaves "<target>.vdisk-partial" with partial/garbage content.
  MakeDisk(dir_ + "/out.img.vdisk-partial", 32 * MiB, {{0, 32 * MiB, Fill::kRandom, 66}});
  auto r = RestoreTo(b.manifest.id, dir_ + "/out.img");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(Sha256File(dir_ + "/out.img"), Sha256File(disk));
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/out.img.vdisk-partial"));
}

TEST_F(FileRepoTest, PruneKeepsWhatIsReferencedAndCollectsTheRest) {
  const std::string disk = dir_ + "/disk.img";
  MakeDisk(disk, 32 * MiB, {{0, 10 * MiB, Fill::kRandom, 1}});
  std::vector<std::pair<std::string, std::string>> backups;  // id, sha
  for (int i = 0; i < 4; ++i) {
    // Each generation rewrites 10 MiB: old generations own packs nobody else references.
    WriteRegions(disk, {{0, 10 * MiB, Fill::kRandom, 100ull + i}});
    backups.push_back({Backup(disk, "auto").manifest.id, Sha256File(disk)});
  }
  const size_t packs_before = Packs().size();
  PruneOptions dry;
  dry.policy.keep_last = 2;
  dry.dry_run = true;
  PruneResult pd = Prune(*repo_, dry).value();
  EXPECT_EQ(pd.removed.size(), 2u);
  EXPECT_EQ(repo_->ListBackups().value().size(), 4u);  // dry run changes nothing

  PruneOptions po;
  po.policy.keep_last = 2;
  PruneResult pr = Prune(*repo_, po).value();
  EXPECT_EQ(pr.removed, (std::vector<std::string>{backups[0].first, backups[1].first}));
  EXPECT_GT(pr.packs_deleted, 0u);
  EXPECT_LT(Packs().size(), packs_before);
  EXPECT_EQ(repo_->store().List(kIndexPrefix).value().size(), 1u);  // index rewritten
  for (int i = 2; i < 4; ++i) {
    auto r = RestoreTo(backups[i].first, dir_ + "/out" + std::to_string(i) + ".img");
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(Sha256File(dir_ + "/out" + std::to_string(i) + ".img"), backups[i].second);
  }
  VerifyOptions deep;
  deep.deep = true;
  EXPECT_TRUE(Verify(*repo_, deep).value().ok());

  // delete by id, then GC removes everything but the config and keys.
  PruneOptions del;
  del.remove = {backups[2].first, backups[3].first.substr(0, 22)};
  PruneResult dr = Prune(*repo_, del).value();
  EXPECT_EQ(dr.removed.size(), 2u);
  EXPECT_TRUE(Packs().empty());
  EXPECT_TRUE(repo_->ListBackups().value().empty());
  // A policy is required.
  EXPECT_EQ(Prune(*repo_, PruneOptions{}).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(FileRepoTest, PruneNeverRacesABackup) {
  const std::string disk = dir_ + "/disk.img";
  MakeDisk(disk, 8 * MiB, {{0, 2 * MiB, Fill::kRandom, 1}});
  {
    auto shared = RepoLock::Acquire(repo_->store(), RepoLock::Mode::kShared, "a running backup");
    ASSERT_TRUE(shared.ok());
    PruneOptions po;
    po.policy.keep_last = 1;
    auto pr = Prune(*repo_, po);
    EXPECT_EQ(pr.status().code(), absl::StatusCode::kAborted) << pr.status();
    EXPECT_NE(std::string(pr.status().message()).find("a running backup"), std::string::npos);
  }
  {
    auto excl = RepoLock::Acquire(repo_->store(), RepoLock::Mode::kExclusive, "prune");
    ASSERT_TRUE(excl.ok());
    BackupOptions o;
    o.disks.push_back(UriDisk("d", disk));
    EXPECT_EQ(CreateBackup(*repo_, o).status().code(), absl::StatusCode::kAborted);
  }
  // A lock whose holder died long ago is ignored.
  ASSERT_TRUE(repo_->store()
                  .Put("locks/dead", R"({"mode":"exclusive","host":"gone","pid":1,"created":1,"refreshed":1})")
                  .ok());
  Backup(disk);
  EXPECT_EQ(repo_->ListBackups().value().size(), 1u);
}

TEST_F(FileRepoTest, KubernetesManifestsAreStoredBesideTheDisks) {
  const std::string disk = dir_ + "/disk.img";
  MakeDisk(disk, 8 * MiB, {{0, 1 * MiB, Fill::kRandom, 1}});
  const std::string kdir = dir_ + "/k8s";
  std::filesystem::create_directories(kdir);
  const std::string vm =
      "apiVersion: kubevirt.io/v1\nkind: VirtualMachine\nmetadata:\n  name: fedora\n  namespace: vms\n"
      "spec:\n  running: true\n";
  const std::string pvc =
      "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: fedora-root\n  namespace: vms\n";
  std::ofstream(kdir + "/vm.yaml") << vm;
  std::ofstream(kdir + "/pvc.yaml") << pvc;
  std::ofstream(kdir + "/README.txt") << "ignored";
  BackupOptions o;
  o.disks.push_back(UriDisk("rootdisk", disk));
  o.kubernetes = LoadKubeManifests({kdir}).value();
  auto b = CreateBackup(*repo_, o);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->manifest.group, "vms/fedora");
  Manifest m = repo_->ReadManifest(b->manifest.id).value();
  ASSERT_EQ(m.kubernetes.size(), 2u);
  auto written = WriteKubeManifests(m.kubernetes, dir_ + "/out-k8s").value();
  ASSERT_EQ(written.size(), 2u);
  std::ifstream in(dir_ + "/out-k8s/vm.yaml");
  std::string back((std::istreambuf_iterator<char>(in)), {});
  EXPECT_EQ(back, vm);
  EXPECT_EQ(LoadKubeManifests({dir_ + "/missing"}).status().code(), absl::StatusCode::kNotFound);
  std::ofstream(kdir + "/bad.yaml") << "a: [unclosed";
  EXPECT_EQ(LoadKubeManifests({kdir}).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(FileRepoTest, BadOptionsLoseNothing) {
  BackupOptions o;
  EXPECT_EQ(CreateBackup(*repo_, o).status().code(), absl::StatusCode::kInvalidArgument);
  o.disks.push_back(UriDisk("a", dir_ + "/missing.img"));
  EXPECT_EQ(CreateBackup(*repo_, o).status().code(), absl::StatusCode::kNotFound);
  o.disks.push_back(UriDisk("a", dir_ + "/missing.img"));
  EXPECT_EQ(CreateBackup(*repo_, o).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(repo_->ListBackups().value().empty());
  EXPECT_TRUE(repo_->store().List(kLocksPrefix).value().empty());  // locks released
  EXPECT_EQ(RestoreTo("nope", dir_ + "/x.img").status().code(), absl::StatusCode::kNotFound);
}

// A pool-aware incremental: the source is a local-pool snapshot and the change map comes from
// the pool (FIEMAP between snapshots; exact on reflink file systems, conservative elsewhere).
TEST_F(FileRepoTest, PoolSnapshotsIncrementalAndRestoreIntoANewVolume) {
  const std::string pool_spec = "local:" + dir_ + "/pool";
  auto cfg = blockdev::ParsePoolFlag(pool_spec).value();
  blockdev::PoolSet set;
  ASSERT_TRUE(set.Add(cfg).ok());
  auto pool = set.Get(cfg.name).value();
  blockdev::VolumeRequest req;
  req.name = "vm-root";
  req.size_bytes = 32 * MiB;
  auto vol = pool->create_volume(req);
  ASSERT_TRUE(vol.ok()) << vol.status();
  blockdev::AlignedBuffer data(4 * MiB), more(1 * MiB);
  std::memset(data.data(), 'x', data.size());
  std::memset(more.data(), 'y', more.size());
  {
    auto dev = pool->open_volume(vol->id, false).value();
    ASSERT_TRUE(blockdev::WriteAt(*dev, 8 * MiB, data.span()).ok());
    ASSERT_TRUE(blockdev::Flush(*dev).ok());
  }
  auto s1 = pool->create_snapshot(vol->id, "s1").value();
  BackupOptions o;
  o.disks.push_back(PoolSnapshotDisk("rootdisk", cfg, s1.id));
  o.parent = "auto";
  auto b1 = CreateBackup(*repo_, o);
  ASSERT_TRUE(b1.ok()) << b1.status();
  EXPECT_EQ(b1->manifest.disks[0].source_snapshot, s1.id);

  {
    auto dev = pool->open_volume(vol->id, false).value();
    ASSERT_TRUE(blockdev::WriteAt(*dev, 20 * MiB, more.span()).ok());
    ASSERT_TRUE(blockdev::Flush(*dev).ok());
  }
  auto s2 = pool->create_snapshot(vol->id, "s2").value();
  o.disks[0].pool_snapshot = s2.id;
  auto b2 = CreateBackup(*repo_, o);
  ASSERT_TRUE(b2.ok()) << b2.status();
  EXPECT_EQ(b2->manifest.parent, b1->manifest.id);
  const DiskBackup& d2 = b2->manifest.disks[0];
  // With reflinks the pool tells what changed; without, snapshots share no blocks and the
  // backup reads and hashes (dedup still uploads only the new chunk).
  const bool pool_map = pool->capabilities().changed_extents;
  EXPECT_NE(d2.change_map.find(pool_map ? "pool change map" : "read-and-hash"), std::string::npos)
      << d2.change_map;
  if (pool_map) { EXPECT_LE(d2.stats.bytes_read, 4 * MiB); }
  EXPECT_EQ(d2.stats.chunks_new, 1u);

  RestoreOptions ro;
  ro.backup = b2->manifest.id;
  ro.pool = cfg;
  ro.volume_name = "vm-root-restored";
  auto r = Restore(*repo_, ro);
  ASSERT_TRUE(r.ok()) << r.status();
  auto restored = pool->find_volume_by_name("vm-root-restored").value();
  ASSERT_TRUE(restored.has_value());
  EXPECT_FALSE(restored->pending);
  auto dev = pool->open_volume(restored->id, true).value();
  blockdev::AlignedBuffer got(4 * MiB), got2(1 * MiB), hole(1 * MiB);
  std::memset(hole.data(), 1, hole.size());
  ASSERT_TRUE(blockdev::ReadAt(*dev, 8 * MiB, got.span()).ok());
  ASSERT_TRUE(blockdev::ReadAt(*dev, 20 * MiB, got2.span()).ok());
  ASSERT_TRUE(blockdev::ReadAt(*dev, 0, hole.span()).ok());
  EXPECT_EQ(std::memcmp(got.data(), data.data(), data.size()), 0);
  EXPECT_EQ(std::memcmp(got2.data(), more.data(), more.size()), 0);
  EXPECT_TRUE(std::all_of(hole.data(), hole.data() + hole.size(), [](std::byte b) { return b == std::byte{0}; }));
  // The same name again is refused (no silent overwrite of a finished volume).
  EXPECT_EQ(Restore(*repo_, ro).status().code(), absl::StatusCode::kAlreadyExists);
}

}  // namespace
}  // namespace vdisk::backup
