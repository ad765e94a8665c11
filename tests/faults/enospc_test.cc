// Faults from below, part 1: the local pool's file system runs full (ENOSPC) while vdisk-csi
// creates a volume, snapshots one (a copy: the file system has no reflink), clones one (a host
// copy) and restores a snapshot, and while `vdisk backup restore` writes a disk. Each must fail
// with a clear error (RESOURCE_EXHAUSTED, "No space left"), leave nothing behind (no listed
// object, no half-made data, the space given back) and succeed when retried after space is freed.
//
// The pool is a real tmpfs of 192 MiB (room for the source, two snapshots, a clone and a
// restore of 24 MiB each once space is back) (real ENOSPC from the kernel); the over-provisioning limit
// is off so that the file system, not the driver's accounting, is what says no.
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <sys/wait.h>

#include <filesystem>

#include "absl/strings/ascii.h"
#include "csi/ids.h"
#include "tests/csi/csi_fixture.h"

namespace vdisk::csi::testing {
namespace {


class EnospcTest : public CsiDriverTest {
 protected:
  std::vector<std::string> DriverArgs() override {
    if (root_.empty()) {
      fs_ = *scratch_ / "small-fs";
      root_ = fs_ + "/pool";
      EXPECT_TRUE(fs::MakeDirs(fs_).ok());
      EXPECT_EQ(::mount("vdisk-enospc", fs_.c_str(), "tmpfs", 0, "size=192m"), 0) << strerror(errno);
    }
    auto args = CsiDriverTest::DriverArgs();
    for (auto& a : args)
      if (a.starts_with("local:")) a = "name=local,kind=local,root=" + root_ + ",overprovisioning=off";
    return args;
  }

  uint64_t Free() {
    struct statvfs s;
    EXPECT_EQ(::statvfs(fs_.c_str(), &s), 0);
    return static_cast<uint64_t>(s.f_bavail) * s.f_frsize;
  }

  // Takes all but `leave` bytes of free space with a filler file (really allocated).
  void FillLeaving(uint64_t leave) {
    RemoveFiller();
    const uint64_t free = Free();
    ASSERT_GT(free, leave);
    int fd = ::open((fs_ + "/filler").c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::fallocate(fd, 0, 0, static_cast<off_t>(free - leave)), 0) << strerror(errno);
    ::close(fd);
  }
  void RemoveFiller() { ::unlink((fs_ + "/filler").c_str()); }

  std::string Image(const std::string& csi_id) {
    auto oid = DecodeVolumeId(csi_id);
    EXPECT_TRUE(oid.ok());
    return root_ + "/volumes/" + oid->local_id + "/disk.img";
  }

  // Nothing half-made: no staging leftovers, the listings as expected.
  void ExpectClean(size_t volumes, size_t snapshots) {
    EXPECT_TRUE(std::filesystem::is_empty(root_ + "/staging")) << "half-made data left in staging";
    auto vl = c().ListVolumes(v1::ListVolumesRequest());
    ASSERT_TRUE(vl.ok()) << vl.status();
    EXPECT_EQ(static_cast<size_t>(vl->entries_size()), volumes);
    auto sl = c().ListSnapshots(v1::ListSnapshotsRequest());
    ASSERT_TRUE(sl.ok()) << sl.status();
    EXPECT_EQ(static_cast<size_t>(sl->entries_size()), snapshots);
    size_t dirs = 0;
    for (const auto& e : std::filesystem::directory_iterator(root_ + "/volumes")) dirs += e.is_directory();
    EXPECT_EQ(dirs, volumes) << "volume data without a volume";
  }

  static void ExpectNoSpace(const Status& s, const std::string& what) {
    EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << what << ": " << s;
    // The kernel's words ("No space left on device") or the driver's own ("no space to ...").
    EXPECT_NE(absl::AsciiStrToLower(s.message()).find("no space"), std::string::npos) << what << ": " << s;
  }

  std::string fs_, root_;
};

TEST_F(EnospcTest, SnapshotCloneRestoreAndCreateFailCleanlyWhenFullAndWorkOnceSpaceIsBack) {
  // A 32 MiB volume holding 24 MiB of data (written where the loop device would read it).
  auto vol = MustCreate(CreateReq("pvc-src", 32 * kMiB, true));
  const std::string sum = WritePattern(Image(vol.volume_id()), 0, 24 * kMiB, 7);
  auto snap = MustSnapshot("snap-ok", vol.volume_id());  // room for it now
  ExpectClean(1, 1);

  // Full: 8 MiB left, every copy below needs 24 MiB.
  FillLeaving(8 * kMiB);
  const uint64_t before = Free();

  v1::CreateSnapshotRequest sreq;
  sreq.set_name("snap-full");
  sreq.set_source_volume_id(vol.volume_id());
  ExpectNoSpace(c().CreateSnapshot(sreq).status(), "CreateSnapshot (a copy)");
  ExpectClean(1, 1);
  EXPECT_GE(Free() + kMiB, before) << "the failed snapshot's space was not given back";

  auto clone = CreateReq("pvc-clone", 32 * kMiB, true);
  clone.mutable_volume_content_source()->mutable_volume()->set_volume_id(vol.volume_id());
  ExpectNoSpace(c().CreateVolume(clone).status(), "CreateVolume from a volume (host copy)");
  ExpectClean(1, 1);
  EXPECT_GE(Free() + kMiB, before);

  auto restore = CreateReq("pvc-restore", 32 * kMiB, true);
  restore.mutable_volume_content_source()->mutable_snapshot()->set_snapshot_id(snap.snapshot_id());
  ExpectNoSpace(c().CreateVolume(restore).status(), "CreateVolume from a snapshot");
  ExpectClean(1, 1);
  EXPECT_GE(Free() + kMiB, before);

  auto full = CreateReq("pvc-full", 64 * kMiB, true);
  (*full.mutable_parameters())["preallocation"] = "full";
  ExpectNoSpace(c().CreateVolume(full).status(), "CreateVolume preallocation=full");
  ExpectClean(1, 1);

  // Not even room for a record: a thin create fails the same way and reserves no name.
  FillLeaving(0);
  ExpectNoSpace(c().CreateVolume(CreateReq("pvc-thin", 16 * kMiB, true)).status(),
                "CreateVolume with a full file system");
  ExpectClean(1, 1);

  // Space back: the sidecars' retries succeed, with the right bytes.
  RemoveFiller();
  MustSnapshot("snap-full", vol.volume_id());
  auto c1 = MustCreate(clone);
  auto r1 = MustCreate(restore);
  MustCreate(CreateReq("pvc-thin", 16 * kMiB, true));
  EXPECT_EQ(ReadHash(Image(c1.volume_id()), 0, 24 * kMiB), sum);
  EXPECT_EQ(ReadHash(Image(r1.volume_id()), 0, 24 * kMiB), sum);
  ExpectClean(4, 2);
}

TEST_F(EnospcTest, ABackupRestoreIntoAFullFileSystemFailsClearlyAndLeavesNoDisk) {
  // A backup of 24 MiB of data, restored into the full file system.
  const std::string disk = *scratch_ / "disk.img";
  {
    int fd = ::open(disk.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::ftruncate(fd, 32 * kMiB), 0);
    ::close(fd);
  }
  const std::string sum = WritePattern(disk, 0, 24 * kMiB, 9);
  const std::string vdisk = BinaryPath("cli/vdisk");
  const std::string repo = "file://" + (*scratch_ / "repo");
  const std::string pw = *scratch_ / "pw";
  ASSERT_TRUE(fs::WriteFileAtomic(pw, "enospc\n", 0600).ok());
  auto run = [&](const std::string& args) {
    const std::string cmd = vdisk + " backup " + args + " --repo " + repo + " --password-file " + pw +
                            " --progress none > " + (*scratch_ / "out") + " 2>&1";
    return WEXITSTATUS(std::system(cmd.c_str()));
  };
  ASSERT_EQ(run("init --create"), 0);
  ASSERT_EQ(run("create --disk rootdisk=" + disk), 0);

  FillLeaving(8 * kMiB);
  const std::string target = fs_ + "/restored.img";
  EXPECT_EQ(run("restore latest --to " + target), 1);
  auto out = fs::ReadFile(*scratch_ / "out");
  ASSERT_TRUE(out.ok());
  EXPECT_NE(out->find("No space left"), std::string::npos) << *out;
  EXPECT_FALSE(Exists(target)) << "a half-restored disk was left under the final name";

  RemoveFiller();
  EXPECT_EQ(run("restore latest --to " + target), 0) << *fs::ReadFile(*scratch_ / "out");
  EXPECT_EQ(ReadHash(target, 0, 24 * kMiB), sum);
}

}  // namespace
}  // namespace vdisk::csi::testing
