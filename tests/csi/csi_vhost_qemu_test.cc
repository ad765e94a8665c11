// A real QEMU guest (TCG, the `guest` fixture) whose disk is a volume published by the real
// vdisk-csi with `attach: vhost-user`: the socket kubelet would hand to the VMM is the CSI target
// path. The guest writes a pattern; the host then reads it back through CSI alone (snapshot,
// restore into a kernel-attached volume, publish, read), so the bytes went guest -> export ->
// pool -> snapshot with nothing else in between.
#include <fcntl.h>
#include <unistd.h>

#include <filesystem>

#include "tests/csi/csi_fixture.h"
#include "tests/vhost/pattern.h"
#include "tests/vhost/qemu_guest.h"

namespace vdisk::csi::testing {
namespace {

constexpr int64_t M = 1 << 20;

class CsiVhostQemuTest : public CsiDriverTest {};

TEST_F(CsiVhostQemuTest, GuestWritesThroughThePublishedSocket) {
  ASSERT_TRUE(std::filesystem::exists(vdisk::testing::GuestDir() + "/vmlinuz"))
      << "guest not built: the `guest` fixture (tests/env/guest.sh build) must run first";
  auto req = CreateReq("pvc-vm-root", 32 * M, /*block=*/true);
  (*req.mutable_parameters())["attach"] = "vhost-user";
  auto vol = MustCreate(req);
  const std::string staging = StagingDir("qemu");
  const std::string target = TargetPath("qemu");

  v1::NodeStageVolumeRequest stage;
  stage.set_volume_id(vol.volume_id());
  stage.set_staging_target_path(staging);
  *stage.mutable_volume_capability() = Cap(true);
  *stage.mutable_volume_context() = vol.volume_context();
  ASSERT_TRUE(c().NodeStageVolume(stage).ok());
  v1::NodePublishVolumeRequest pub;
  pub.set_volume_id(vol.volume_id());
  pub.set_staging_target_path(staging);
  pub.set_target_path(target);
  *pub.mutable_volume_capability() = Cap(true);
  *pub.mutable_volume_context() = vol.volume_context();
  ASSERT_TRUE(c().NodePublishVolume(pub).ok());

  {
    vdisk::testing::QemuGuest g;
    vdisk::testing::QemuGuest::Options o;
    o.script = vdisk::testing::SourceDir() + "/tests/vhost/guest/csi_attach.sh";
    o.socket = target;
    o.work_dir = scratch_->path();
    ASSERT_EQ(g.Start(o), "");
    EXPECT_EQ(g.Wait(240), 0) << g.output();
    EXPECT_EQ(g.Value("size"), std::to_string(32 * M)) << g.output();
    EXPECT_EQ(g.Value("write"), "ok") << g.output();
    EXPECT_EQ(g.Value("check"), "ok") << g.output();
    EXPECT_FALSE(g.Value("serial").empty()) << g.output();
  }

  auto snap = MustSnapshot("snap-vm-root", vol.volume_id());
  auto rreq = CreateReq("pvc-vm-root-copy", 32 * M, true);
  rreq.mutable_volume_content_source()->mutable_snapshot()->set_snapshot_id(snap.snapshot_id());
  auto copy = MustCreate(rreq);
  const std::string cs = StagingDir("copy"), ct = TargetPath("copy");
  ASSERT_TRUE(Stage(copy.volume_id(), cs, true).ok());
  ASSERT_TRUE(Publish(copy.volume_id(), cs, ct, true).ok());
  std::string got(4 * M, '\0');
  int fd = ::open(ct.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(::pread(fd, got.data(), got.size(), 2 * M), static_cast<ssize_t>(got.size()));
  ::close(fd);
  EXPECT_TRUE(got == vdisk::testing::Pattern(7, 2 * M, 4 * M)) << "the guest's bytes did not reach the volume";

  ASSERT_TRUE(Unpublish(copy.volume_id(), ct).ok());
  ASSERT_TRUE(Unstage(copy.volume_id(), cs).ok());
  ASSERT_TRUE(Unpublish(vol.volume_id(), target).ok());
  EXPECT_FALSE(Exists(target));
  ASSERT_TRUE(Unstage(vol.volume_id(), staging).ok());
}

}  // namespace
}  // namespace vdisk::csi::testing
