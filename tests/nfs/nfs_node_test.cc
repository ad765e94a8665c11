// The node side of NFS volumes through vdisk-csi, on the ganesha of the `nfs` fixture: VM disks
// (volumeMode Filesystem, attach: vhost-user) are served by the node plugin as vhost-user-blk
// exports over libnfs -- no kernel NFS client -- by two node plugins at once (RWX, the
// live-migration case: each sees what the other wrote) and to a real QEMU guest; the bytes are
// then read back through libnfs' nfs-cat, an independent client. The kernel paths answer
// exactly: a Filesystem volume without attach: vhost-user needs the kernel NFS client this
// machine lacks, and a Block volume has no node attachment (FAILED_PRECONDITION).
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "tests/csi/csi_fixture.h"
#include "tests/nfs/nfs_env.h"
#include "tests/vhost/pattern.h"
#include "tests/vhost/qemu_guest.h"
#include "tests/vhost/vhost_client.h"

namespace vdisk::csi::testing {
namespace {

using blockdev::vhost::testing::BlkCapacityBytes;
using blockdev::vhost::testing::CrossWriteCheck;
using blockdev::vhost::testing::VhostClient;

class NfsNodeTest : public CsiDriverTest {
 protected:
  void SetUp() override {
    auto env = vdisk::testing::LoadNfsEnv();
    ASSERT_TRUE(env.ok()) << env.status();
    env_ = *env;
    dir_ = absl::StrCat("/node-", ::getpid(), "-", counter_++);
    CsiDriverTest::SetUp();
  }
  void TearDown() override {
    node_b_.reset();
    CsiDriverTest::TearDown();
    std::error_code ec;
    std::filesystem::remove_all(env_.local_path + dir_, ec);
  }

  std::string PoolFlag() const {
    return absl::StrCat("name=nas,kind=nfs,server=", env_.server, ",export=", env_.export_path,
                        ",dir=", dir_, ",nfsport=", env_.nfs_port, ",mountport=", env_.mount_port);
  }
  std::vector<std::string> DriverArgs() override {
    return {"--endpoint", endpoint_, "--node-id", "node-a", "--pool", PoolFlag(), "--state-dir",
            *scratch_ / "state", "--allowed-target-root", kubelet_, "--vhost-dir",
            *sockdir_ / "vhost", "-vv"};
  }
  // A second node: a node plugin only, reaching the same export over its own connections.
  void StartNodeB() {
    node_b_sock_ = std::make_unique<ScratchDir>("vdisk-nfs-b", "/tmp");
    const std::string endpoint = "unix://" + (*node_b_sock_ / "csi.sock");
    node_b_ = std::make_unique<DriverProcess>(
        std::vector<std::string>{"--endpoint", endpoint, "--role", "node", "--node-id", "node-b",
                                 "--pool", PoolFlag(), "--state-dir", *scratch_ / "state-b",
                                 "--allowed-target-root", kubelet_, "--vhost-dir",
                                 *node_b_sock_ / "vhost", "-vv"},
        *scratch_ / "driver-b.log", endpoint);
    std::string error;
    ASSERT_TRUE(node_b_->Start(&error)) << error;
  }

  // A VM disk: volumeMode Filesystem with attach: vhost-user, RWX allowed (live migration).
  v1::CreateVolumeRequest VmDisk(const std::string& name, int64_t size) {
    auto r = CreateReq(name, size, /*block=*/false,
                       {Mode::SINGLE_NODE_WRITER, Mode::MULTI_NODE_MULTI_WRITER});
    (*r.mutable_parameters())["attach"] = "vhost-user";
    return r;
  }
  Status Attach(CsiClient& client, const v1::Volume& vol, const std::string& tag, bool block = false) {
    return StageAndPublish(client, vol, tag, Cap(block, Mode::MULTI_NODE_MULTI_WRITER));
  }
  void Detach(CsiClient& client, const v1::Volume& vol, const std::string& tag) {
    UnpublishAndUnstage(client, vol, tag);
  }
  std::string Socket(const std::string& tag) { return TargetPath(tag) + "/vhost-user-blk.sock"; }

  // Bytes [offset, offset+len) of the volume's image, read by nfs-cat (libnfs' own tool).
  std::string NfsCat(const v1::Volume& vol, uint64_t offset, uint64_t len) {
    auto out = vdisk::testing::RunCommand(absl::StrCat(
        "nfs-cat '", env_.Url(vol.volume_context().at("nfsPath")), "' | tail -c +", offset + 1,
        " | head -c ", len));
    EXPECT_TRUE(out.ok()) << out.status();
    return out.ok() ? *out : "";
  }

  static inline int counter_ = 0;
  vdisk::testing::NfsEnv env_;
  std::string dir_;
  std::unique_ptr<ScratchDir> node_b_sock_;
  std::unique_ptr<DriverProcess> node_b_;
};

TEST_F(NfsNodeTest, RwxThroughTwoExportsOnTwoNodes) {
  StartNodeB();
  auto vol = MustCreate(VmDisk("pvc-rwx", 16 * kMiB));
  ASSERT_TRUE(Attach(c(), vol, "rwx-a").ok()) << driver_->Log();
  ASSERT_TRUE(Attach(node_b_->client(), vol, "rwx-b").ok()) << node_b_->Log();
  VhostClient a, b;
  ASSERT_TRUE(a.Connect(Socket("rwx-a")).ok() && a.Setup(1).ok());
  ASSERT_TRUE(b.Connect(Socket("rwx-b")).ok() && b.Setup(1).ok());
  EXPECT_EQ(BlkCapacityBytes(a), 16 * kMiB);
  const std::string from_a = vdisk::testing::Pattern(21, 0, 64 * 1024);
  const std::string from_b = vdisk::testing::Pattern(22, 0, 64 * 1024);
  EXPECT_EQ(CrossWriteCheck(a, b, from_a, from_b), "") << "node-a, node-b";
  EXPECT_TRUE(NfsCat(vol, kMiB, from_a.size()) == from_a) << "nfs-cat reads other bytes";
  EXPECT_TRUE(NfsCat(vol, 2 * kMiB, from_b.size()) == from_b) << "nfs-cat reads other bytes";
  Detach(c(), vol, "rwx-a");
  Detach(node_b_->client(), vol, "rwx-b");
}

TEST_F(NfsNodeTest, QemuGuestWritesThroughTheExport) {
  if (!std::filesystem::exists(vdisk::testing::GuestDir() + "/vmlinuz"))
    FAIL() << "guest not built: the `guest` fixture (tests/env/guest.sh build) must run first";
  auto vol = MustCreate(VmDisk("pvc-vm-root", 32 * kMiB));
  ASSERT_TRUE(Attach(c(), vol, "vm").ok()) << driver_->Log();
  EXPECT_EQ(vdisk::testing::RunCsiAttachGuest(Socket("vm"), scratch_->path(), 32 * kMiB), "");
  Detach(c(), vol, "vm");
  EXPECT_TRUE(NfsCat(vol, 2 * kMiB, 4 * kMiB) == vdisk::testing::Pattern(7, 2 * kMiB, 4 * kMiB))
      << "the guest's bytes did not reach the image on the server";
}

TEST_F(NfsNodeTest, KernelAttachmentsAreRefusedExactly) {
  // Filesystem mode through the kernel: a mount of the volume directory, which needs an NFS
  // client in the node's kernel (this one has none).
  auto fs = MustCreate(CreateReq("pvc-fs", 8 * kMiB, /*block=*/false, {Mode::SINGLE_NODE_WRITER}));
  Status st = Attach(c(), fs, "fs");
  if (st.ok()) {
    GTEST_SKIP() << "this kernel has an NFS client: the kernel mount path is not what this test checks";
  }
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition) << st;
  EXPECT_NE(st.message().find("NFS client"), std::string::npos) << st;
  // Block mode: no node attaches an NFS image as a block device (no loop device over an NFS
  // mount), so CreateVolume refuses it with the reason instead of making an unusable volume.
  auto blk = c().CreateVolume(CreateReq("pvc-blk", 8 * kMiB, /*block=*/true, {Mode::SINGLE_NODE_WRITER}));
  ASSERT_FALSE(blk.ok());
  EXPECT_EQ(blk.status().code(), absl::StatusCode::kInvalidArgument) << blk.status();
  EXPECT_NE(blk.status().message().find("vhost-user"), std::string::npos) << blk.status();
}

}  // namespace
}  // namespace vdisk::csi::testing
