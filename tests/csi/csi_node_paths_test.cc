// Staging and target paths with symlinks planted in them, on the real driver with real loop
// devices and bind mounts: a kubelet path is resolved beneath --allowed-target-root without
// following symlinks, so no mount lands and no file is created outside it (INVALID_ARGUMENT),
// while the same calls on plain paths work.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "common/mountinfo.h"
#include "tests/csi/csi_fixture.h"

namespace vdisk::csi::testing {
namespace {

namespace stdfs = std::filesystem;

class NodePathTest : public CsiDriverTest {
 protected:
  // Anything mounted at or below `dir`, as the kernel's mount table says.
  static int MountsUnder(const std::string& dir) {
    auto mounts = ReadMountInfo();
    int n = 0;
    if (mounts.ok())
      for (const auto& m : *mounts) n += m.mountpoint == dir || m.mountpoint.starts_with(dir + "/");
    return n;
  }
};

TEST_F(NodePathTest, SymlinksPlantedInStagingAndTargetPathsAreNeverFollowed) {
  const std::string outside = *scratch_ / "outside";
  ASSERT_TRUE(fs::MakeDirs(outside + "/dir").ok());
  std::ofstream(outside + "/file") << "someone else's file";
  auto fsvol = MustCreate(CreateReq("pvc-paths-fs", 16 * kMiB, /*block=*/false));
  auto blkvol = MustCreate(CreateReq("pvc-paths-blk", 16 * kMiB, /*block=*/true));

  // 1. A staging path through a symlinked directory: the Filesystem stage would bind-mount the
  //    volume outside the kubelet directory.
  ASSERT_TRUE(fs::MakeDirs(kubelet_ + "/plugins").ok());
  stdfs::create_directory_symlink(outside, kubelet_ + "/plugins/evil");
  EXPECT_EQ(Stage(fsvol.volume_id(), kubelet_ + "/plugins/evil/dir", false).code(),
            absl::StatusCode::kInvalidArgument);
  // The staging path itself a symlink.
  stdfs::create_directory_symlink(outside + "/dir", kubelet_ + "/plugins/staging-link");
  EXPECT_EQ(Stage(fsvol.volume_id(), kubelet_ + "/plugins/staging-link", false).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(MountsUnder(outside), 0) << "a stage mounted outside the allowed root";

  // 2. Targets: through a symlinked pod directory; a symlink to an existing file; a dangling
  //    symlink (the target file would be created outside).
  const std::string fs_staging = StagingDir("fs");
  const std::string blk_staging = StagingDir("blk");
  ASSERT_TRUE(Stage(fsvol.volume_id(), fs_staging, false).ok());
  ASSERT_TRUE(Stage(blkvol.volume_id(), blk_staging, true).ok());
  ASSERT_TRUE(fs::MakeDirs(kubelet_ + "/pods").ok());
  stdfs::create_directory_symlink(outside, kubelet_ + "/pods/evil-pod");
  EXPECT_EQ(Publish(fsvol.volume_id(), fs_staging, kubelet_ + "/pods/evil-pod/dir", false).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Publish(blkvol.volume_id(), blk_staging, kubelet_ + "/pods/evil-pod/newdev", true).code(),
            absl::StatusCode::kInvalidArgument);
  const std::string pod = TargetPath("pod-links");  // its parent exists; the target does not
  stdfs::create_symlink(outside + "/file", pod);
  EXPECT_EQ(Publish(blkvol.volume_id(), blk_staging, pod, true).code(), absl::StatusCode::kInvalidArgument);
  stdfs::remove(pod);
  stdfs::create_symlink(outside + "/created-by-driver", pod);
  EXPECT_EQ(Publish(blkvol.volume_id(), blk_staging, pod, true).code(), absl::StatusCode::kInvalidArgument);
  stdfs::remove(pod);
  stdfs::create_directory_symlink(outside + "/dir", pod);
  EXPECT_EQ(Publish(fsvol.volume_id(), fs_staging, pod, false).code(), absl::StatusCode::kInvalidArgument);

  EXPECT_EQ(MountsUnder(outside), 0) << "a publish mounted outside the allowed root";
  EXPECT_FALSE(Exists(outside + "/newdev"));
  EXPECT_FALSE(Exists(outside + "/created-by-driver"));
  EXPECT_FALSE(Exists(outside + "/dir/disk.img"));
  std::ifstream f(outside + "/file");
  std::string content((std::istreambuf_iterator<char>(f)), {});
  EXPECT_EQ(content, "someone else's file");
  // An unpublish of such a target leaves the planted link and what it points to alone.
  EXPECT_TRUE(Unpublish(fsvol.volume_id(), pod).ok());
  EXPECT_TRUE(stdfs::is_symlink(pod));
  EXPECT_TRUE(Exists(outside + "/dir"));

  // 3. Plain paths still work, and a symlink planted after the publish (the pod directory
  //    swapped for a link) does not make unpublish unmount something else.
  stdfs::remove(pod);
  const std::string target = TargetPath("pod-ok") ;
  ASSERT_TRUE(Publish(fsvol.volume_id(), fs_staging, target, false).ok());
  ASSERT_TRUE(Publish(blkvol.volume_id(), blk_staging, target + "-blk", true).ok());
  struct stat st;
  ASSERT_EQ(::stat((target + "/disk.img").c_str(), &st), 0);
  ASSERT_EQ(::stat((target + "-blk").c_str(), &st), 0);
  EXPECT_TRUE(S_ISBLK(st.st_mode));
  const std::string pod_dir = kubelet_ + "/pods/pod-ok";
  stdfs::rename(pod_dir, pod_dir + "-moved");
  stdfs::create_directory_symlink(outside, pod_dir);
  EXPECT_FALSE(Unpublish(fsvol.volume_id(), target).ok()) << "unpublish went through the planted link";
  stdfs::remove(pod_dir);
  stdfs::rename(pod_dir + "-moved", pod_dir);
  EXPECT_TRUE(Unpublish(fsvol.volume_id(), target).ok());
  EXPECT_TRUE(Unpublish(blkvol.volume_id(), target + "-blk").ok());
  EXPECT_FALSE(Exists(target));
  EXPECT_TRUE(Unstage(fsvol.volume_id(), fs_staging).ok());
  EXPECT_TRUE(Unstage(blkvol.volume_id(), blk_staging).ok());
}

// kubelet sees the node plugin's mounts through mount propagation (the plugin's kubelet
// directory is a Bidirectional mount): a bind made through /proc/self/fd/N must propagate like
// one made by name. The kubelet directory is made a shared mount here, and a peer mount
// namespace (standing in for kubelet's) must see the publish and then its removal.
TEST_F(NodePathTest, MountsThroughDescriptorsPropagateToKubeletsNamespace) {
  ASSERT_EQ(::system(("mount --bind '" + kubelet_ + "' '" + kubelet_ + "' && mount --make-shared '" + kubelet_ + "'").c_str()), 0);
  struct Cleanup {
    std::string dir;
    ~Cleanup() { (void)!::system(("umount -R '" + dir + "' 2>/dev/null").c_str()); }
  } cleanup{kubelet_};
  FILE* peer = ::popen("exec unshare -m --propagation unchanged sh -c 'echo $$; exec sleep 120'", "r");
  ASSERT_NE(peer, nullptr);
  int pid = 0;
  ASSERT_EQ(std::fscanf(peer, "%d", &pid), 1);
  auto peer_sees = [&](const std::string& path) {
    return ::system(("nsenter -t " + std::to_string(pid) + " -m grep -q ' " + path + " ' /proc/self/mountinfo").c_str()) == 0;
  };
  auto vol = MustCreate(CreateReq("pvc-paths-prop", 16 * kMiB, /*block=*/false));
  const std::string staging = StagingDir("prop");
  const std::string target = TargetPath("pod-prop");
  ASSERT_TRUE(Stage(vol.volume_id(), staging, false).ok());
  ASSERT_TRUE(Publish(vol.volume_id(), staging, target, false, /*readonly=*/true).ok());
  EXPECT_TRUE(peer_sees(target)) << "the publish did not propagate to the peer namespace";
  EXPECT_TRUE(Unpublish(vol.volume_id(), target).ok());
  EXPECT_FALSE(peer_sees(target)) << "the unpublish did not propagate";
  EXPECT_TRUE(Unstage(vol.volume_id(), staging).ok());
  ::kill(pid, SIGKILL);
  ::pclose(peer);
}

}  // namespace
}  // namespace vdisk::csi::testing
