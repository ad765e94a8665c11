// vdisk-csi with an iSCSI pool on the real tgtd of the `tgt` fixture, spoken to as the Kubernetes
// sidecars and kubelet do: provisioning with CHAP secrets, idempotent repeats and driver restarts
// between calls, ControllerPublishVolume admitting nodes to the target, the node side through
// the vhost-user export over libiscsi (no kernel initiator), snapshots / restore / clone / expand,
// RWX Block through two node plugins (two exports of one LUN), and a real QEMU guest on the
// export. Bytes are checked through QEMU's own iscsi driver, an independent client.
#include <fcntl.h>
#include <unistd.h>

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "blockdev/iscsi/iscsi_options.h"
#include "blockdev/vhost/protocol.h"
#include "common/subprocess.h"
#include "tests/csi/csi_fixture.h"
#include "tests/iscsi/tgt_env.h"
#include "tests/vhost/pattern.h"
#include "tests/vhost/qemu_guest.h"
#include "tests/vhost/vhost_client.h"

namespace vdisk::csi::testing {
namespace {

using blockdev::vhost::testing::VhostClient;
namespace vh = blockdev::vhost;

using blockdev::vhost::testing::BlkCapacityBytes;
using blockdev::vhost::testing::BlkIo;

// 64 KiB .. 512 KiB of a per-seed pattern (tests/vhost/pattern.h).
std::string Pattern(size_t len, uint32_t seed) { return vdisk::testing::Pattern(seed, 0, len); }

class IscsiCsiTest : public CsiDriverTest {
 protected:
  void SetUp() override {
    auto env = vdisk::testing::LoadTgtEnv();
    ASSERT_TRUE(env.ok()) << env.status();
    env_ = *env;
    token_ = vdisk::testing::UniqueToken();
    user_ = "vdisk-" + token_;
    password_ = "chap-" + token_ + "-pw";
    CsiDriverTest::SetUp();
  }
  void TearDown() override {
    node_b_.reset();
    if (driver_) {
      if (auto snaps = c().ListSnapshots({}); snaps.ok())
        for (const auto& e : snaps->entries()) {
          v1::DeleteSnapshotRequest d;
          d.set_snapshot_id(e.snapshot().snapshot_id());
          (void)c().DeleteSnapshot(d);
        }
      if (auto vols = c().ListVolumes({}); vols.ok())
        for (const auto& e : vols->entries()) {
          v1::ControllerUnpublishVolumeRequest u;
          u.set_volume_id(e.volume().volume_id());
          (void)c().ControllerUnpublishVolume(u);
          v1::DeleteVolumeRequest d;
          d.set_volume_id(e.volume().volume_id());
          (void)c().DeleteVolume(d);
        }
    }
    CsiDriverTest::TearDown();
    std::error_code ec;
    std::filesystem::remove_all(env_.backing + "/" + token_, ec);
  }

  std::string IqnPrefix() const { return "iqn.2024-01.io.vdisk." + token_; }
  std::string PoolFlag(bool controller) const {
    std::string f = absl::StrCat("name=iscsi,kind=iscsi,portal=", env_.portal, ",iqn_prefix=", IqnPrefix());
    if (controller)
      absl::StrAppend(&f, ",backing_dir=", env_.backing, "/", token_, ",tgt_control=", env_.control, ",export_check=0");
    else
      absl::StrAppend(&f, ",target_host=none");
    return f;
  }
  std::vector<std::string> DriverArgs() override {
    return {"--endpoint", endpoint_, "--node-id", "node-a", "--pool", PoolFlag(true), "--state-dir",
            *scratch_ / "state", "--allowed-target-root", kubelet_, "--vhost-dir", *sockdir_ / "vhost", "-vv"};
  }
  // A second node: a node plugin only, with no access to the target host.
  void StartNodeB() {
    node_b_sock_ = std::make_unique<ScratchDir>("vdisk-iscsi-b", "/tmp");
    node_b_endpoint_ = "unix://" + (*node_b_sock_ / "csi.sock");
    node_b_ = std::make_unique<DriverProcess>(
        std::vector<std::string>{"--endpoint", node_b_endpoint_, "--role", "node", "--node-id", "node-b", "--pool",
                                 PoolFlag(false), "--state-dir", *scratch_ / "state-b", "--allowed-target-root",
                                 kubelet_, "--vhost-dir", *node_b_sock_ / "vhost", "-vv"},
        *scratch_ / "driver-b.log", node_b_endpoint_);
    std::string error;
    ASSERT_TRUE(node_b_->Start(&error)) << error;
  }

  google::protobuf::Map<std::string, std::string> Secrets(const std::string& password = "") const {
    google::protobuf::Map<std::string, std::string> s;
    s[blockdev::iscsi::kChapUserKey] = user_;
    s[blockdev::iscsi::kChapPasswordKey] = password.empty() ? password_ : password;
    return s;
  }
  // A VM disk for attach: vhost-user: volumeMode Filesystem (the socket is published in a
  // directory at the target path), RWX allowed (live migration), CHAP secrets.
  v1::CreateVolumeRequest Req(const std::string& name, int64_t size) {
    auto r = CreateReq(name, size, /*block=*/false, {Mode::SINGLE_NODE_WRITER, Mode::MULTI_NODE_MULTI_WRITER});
    (*r.mutable_parameters())["attach"] = "vhost-user";
    *r.mutable_secrets() = Secrets();
    return r;
  }
  Status ControllerPublish(const v1::Volume& vol, const std::string& node) {
    v1::ControllerPublishVolumeRequest p;
    p.set_volume_id(vol.volume_id());
    p.set_node_id(node);
    *p.mutable_volume_capability() = Cap(false, Mode::MULTI_NODE_MULTI_WRITER);
    *p.mutable_secrets() = Secrets();
    return c().ControllerPublishVolume(p).status();
  }
  // NodeStage + NodePublish with CHAP node-stage secrets on the plugin `client`.
  Status Attach(CsiClient& client, const v1::Volume& vol, const std::string& tag, const std::string& password = "") {
    return StageAndPublish(client, vol, tag, Cap(false, Mode::MULTI_NODE_MULTI_WRITER), Secrets(password));
  }
  void Detach(CsiClient& client, const v1::Volume& vol, const std::string& tag) { UnpublishAndUnstage(client, vol, tag); }
  // The vhost-user socket published at the target of `tag` (inside the Filesystem target dir).
  std::string Socket(const std::string& tag) { return TargetPath(tag) + "/vhost-user-blk.sock"; }

  // The LUN's bytes [offset, offset+len) read by QEMU's iscsi driver as node `node`.
  std::string QemuRead(const v1::Volume& vol, const std::string& node, uint64_t offset, size_t len) {
    const std::string out = *scratch_ / ("qemu-" + node + ".raw");
    const std::string opts = absl::StrCat(
        "driver=iscsi,transport=tcp,portal=", env_.portal, ",target=", vol.volume_context().at("iscsi.iqn"),
        ",lun=1,initiator-name=", blockdev::iscsi::NodeInitiator("iqn.2024-01.io.vdisk:node", node), ",user=", user_,
        ",password=", password_);
    auto r = RunProcess({"qemu-img", "convert", "-O", "raw", "--image-opts", opts, out});
    EXPECT_TRUE(r.ok() && r->ok()) << (r.ok() ? r->err : r.status().ToString());
    std::string buf(len, '\0');
    int fd = ::open(out.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return "";
    ssize_t n = ::pread(fd, buf.data(), len, static_cast<off_t>(offset));
    ::close(fd);
    ::unlink(out.c_str());
    return n == static_cast<ssize_t>(len) ? buf : "";
  }

  vdisk::testing::TgtEnv env_;
  std::string token_, user_, password_;
  std::unique_ptr<ScratchDir> node_b_sock_;
  std::string node_b_endpoint_;
  std::unique_ptr<DriverProcess> node_b_;
};

TEST_F(IscsiCsiTest, LifecycleWithPublishRestartsSnapshotsClonesAndExpand) {
  auto caps = c().ControllerGetCapabilities();
  ASSERT_TRUE(caps.ok());
  bool publish = false;
  for (const auto& cap : caps->capabilities())
    publish |= cap.rpc().type() == v1::ControllerServiceCapability::RPC::PUBLISH_UNPUBLISH_VOLUME;
  EXPECT_TRUE(publish) << "an iSCSI pool with ACLs needs ControllerPublishVolume";

  // A Filesystem volume the node would have to attach with a kernel initiator: refused at
  // CreateVolume, with the reason (no kernel path for them: attach: vhost-user serves them).
  auto fs = CreateReq("pvc-fs", 16 * kMiB, /*block=*/false);
  auto refused = c().CreateVolume(fs);
  EXPECT_EQ(Code(refused), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(refused.status().message()).find("vhost-user"), std::string::npos) << refused.status();

  auto vol = MustCreate(Req("pvc-iscsi", 32 * kMiB));
  EXPECT_EQ(vol.volume_context().at("iscsi.lun"), "1");
  EXPECT_EQ(vol.volume_context().at("iscsi.portal"), env_.portal);
  EXPECT_EQ(MustCreate(Req("pvc-iscsi", 32 * kMiB)).volume_id(), vol.volume_id()) << "idempotent";
  RestartDriver();
  EXPECT_EQ(MustCreate(Req("pvc-iscsi", 32 * kMiB)).volume_id(), vol.volume_id()) << "idempotent after a restart";
  EXPECT_EQ(Code(c().CreateVolume(Req("pvc-iscsi", 64 * kMiB))), absl::StatusCode::kAlreadyExists);

  // ControllerPublishVolume admits node-a; the node then attaches through the vhost-user export.
  v1::ControllerPublishVolumeRequest missing;
  missing.set_volume_id(vol.volume_id() + "x");
  missing.set_node_id("node-a");
  *missing.mutable_volume_capability() = Cap(true);
  EXPECT_EQ(Code(c().ControllerPublishVolume(missing)), absl::StatusCode::kNotFound);
  ASSERT_TRUE(ControllerPublish(vol, "node-a").ok());
  ASSERT_TRUE(ControllerPublish(vol, "node-a").ok());
  const std::string data = Pattern(512 * 1024, 11);
  {
    ASSERT_TRUE(Attach(c(), vol, "a").ok());
    EXPECT_EQ(FindUnder(scratch_->path()).loops, 0);
    VhostClient vc;
    ASSERT_TRUE(vc.Connect(Socket("a")).ok());
    ASSERT_TRUE(vc.Setup(1).ok());
    EXPECT_EQ(BlkCapacityBytes(vc), static_cast<uint64_t>(32 * kMiB));
    std::string w = data;
    ASSERT_EQ(BlkIo(vc, vh::kBlkTOut, 4 * kMiB, &w), vh::kBlkSOk);
    ASSERT_EQ(BlkIo(vc, vh::kBlkTFlush, 0, nullptr), vh::kBlkSOk);
  }
  EXPECT_TRUE(QemuRead(vol, "node-a", 4 * kMiB, data.size()) == data) << "QEMU reads other bytes over iscsi://";

  // Snapshot (size, ready), repeat after a restart, restore and clone: bytes checked by QEMU.
  auto snap = MustSnapshot("snap-iscsi", vol.volume_id());
  EXPECT_EQ(snap.size_bytes(), 32 * kMiB);
  EXPECT_TRUE(snap.ready_to_use());
  RestartDriver();
  EXPECT_EQ(MustSnapshot("snap-iscsi", vol.volume_id()).snapshot_id(), snap.snapshot_id());
  auto rreq = Req("pvc-restored", 48 * kMiB);
  rreq.mutable_volume_content_source()->mutable_snapshot()->set_snapshot_id(snap.snapshot_id());
  auto restored = MustCreate(rreq);
  EXPECT_EQ(restored.capacity_bytes(), 48 * kMiB);
  auto creq = Req("pvc-cloned", 0);
  creq.mutable_volume_content_source()->mutable_volume()->set_volume_id(vol.volume_id());
  auto cloned = MustCreate(creq);
  EXPECT_EQ(cloned.capacity_bytes(), 32 * kMiB);
  for (const auto* v : {&restored, &cloned}) {
    ASSERT_TRUE(ControllerPublish(*v, "node-a").ok());
    EXPECT_TRUE(QemuRead(*v, "node-a", 4 * kMiB, data.size()) == data) << v->volume_id();
  }

  // Expand online: controller (tgt re-creates the LUN), then node (the export grows).
  v1::ControllerExpandVolumeRequest ereq;
  ereq.set_volume_id(vol.volume_id());
  ereq.mutable_capacity_range()->set_required_bytes(64 * kMiB);
  *ereq.mutable_secrets() = Secrets();
  auto er = c().ControllerExpandVolume(ereq);
  ASSERT_TRUE(er.ok()) << er.status();
  EXPECT_EQ(er->capacity_bytes(), 64 * kMiB);
  EXPECT_TRUE(er->node_expansion_required());
  v1::NodeExpandVolumeRequest nreq;
  nreq.set_volume_id(vol.volume_id());
  nreq.set_volume_path(TargetPath("a"));
  auto nr = c().NodeExpandVolume(nreq);
  ASSERT_TRUE(nr.ok()) << nr.status();
  {
    VhostClient vc;
    ASSERT_TRUE(vc.Connect(Socket("a")).ok());
    auto setup = vc.Setup(1);
    ASSERT_TRUE(setup.ok()) << setup << *vdisk::testing::Tgtadm(env_, "--op show --mode target");
    EXPECT_EQ(BlkCapacityBytes(vc), static_cast<uint64_t>(64 * kMiB));
    std::string r(data.size(), '\0');
    ASSERT_EQ(BlkIo(vc, vh::kBlkTIn, 4 * kMiB, &r), vh::kBlkSOk);
    EXPECT_TRUE(r == data);
  }

  // Delete: refused while published, then gone; repeats are OK.
  Detach(c(), vol, "a");
  v1::DeleteVolumeRequest del;
  del.set_volume_id(vol.volume_id());
  EXPECT_EQ(Code(c().DeleteVolume(del)), absl::StatusCode::kFailedPrecondition) << "still published";
  v1::ControllerUnpublishVolumeRequest unpub;
  unpub.set_volume_id(vol.volume_id());
  unpub.set_node_id("node-a");
  ASSERT_TRUE(c().ControllerUnpublishVolume(unpub).ok());
  ASSERT_TRUE(c().ControllerUnpublishVolume(unpub).ok());
  ASSERT_TRUE(c().DeleteVolume(del).ok());
  ASSERT_TRUE(c().DeleteVolume(del).ok());
  v1::DeleteSnapshotRequest dsnap;
  dsnap.set_snapshot_id(snap.snapshot_id());
  ASSERT_TRUE(c().DeleteSnapshot(dsnap).ok());
  EXPECT_TRUE(QemuRead(restored, "node-a", 4 * kMiB, data.size()) == data) << "the restore outlives its snapshot";
}

TEST_F(IscsiCsiTest, WrongChapOrAnUnpublishedNodeIsRefused) {
  // node-b runs no controller: what it may open is only what the target admits it to.
  StartNodeB();
  auto vol = MustCreate(Req("pvc-guarded", 16 * kMiB));
  EXPECT_EQ(Attach(node_b_->client(), vol, "np").code(), absl::StatusCode::kNotFound) << "node-b is not published";
  Detach(node_b_->client(), vol, "np");
  ASSERT_TRUE(ControllerPublish(vol, "node-b").ok());
  EXPECT_EQ(Attach(node_b_->client(), vol, "wrong", "not-the-password").code(), absl::StatusCode::kPermissionDenied);
  Detach(node_b_->client(), vol, "wrong");
  ASSERT_TRUE(Attach(node_b_->client(), vol, "right").ok());
  // The node plugin restarts: it restores the export with the stage secrets it kept, and the
  // CHAP-protected LUN serves I/O again without kubelet's help.
  ASSERT_EQ(node_b_->Stop(), 0) << node_b_->Log();
  std::string error;
  ASSERT_TRUE(node_b_->Start(&error)) << error;
  {
    VhostClient vc;
    ASSERT_TRUE(vc.Connect(Socket("right")).ok());
    ASSERT_TRUE(vc.Setup(1).ok());
    std::string w = Pattern(64 * 1024, 31);
    EXPECT_EQ(BlkIo(vc, vh::kBlkTOut, 0, &w), vh::kBlkSOk) << node_b_->Log();
  }
  Detach(node_b_->client(), vol, "right");
  EXPECT_EQ(driver_->Log().find(password_), std::string::npos) << "the CHAP secret reached the controller's log";
  EXPECT_EQ(node_b_->Log().find(password_), std::string::npos) << "the CHAP secret reached the node's log";
}

TEST_F(IscsiCsiTest, RwxBlockThroughTwoExportsOnTwoNodes) {
  StartNodeB();
  auto vol = MustCreate(Req("pvc-rwx", 16 * kMiB));
  ASSERT_TRUE(ControllerPublish(vol, "node-a").ok());
  ASSERT_TRUE(ControllerPublish(vol, "node-b").ok());
  ASSERT_TRUE(Attach(c(), vol, "rwx-a").ok());
  ASSERT_TRUE(Attach(node_b_->client(), vol, "rwx-b").ok());
  VhostClient a, b;
  ASSERT_TRUE(a.Connect(Socket("rwx-a")).ok() && a.Setup(1).ok());
  ASSERT_TRUE(b.Connect(Socket("rwx-b")).ok() && b.Setup(1).ok());
  EXPECT_EQ(blockdev::vhost::testing::CrossWriteCheck(a, b, Pattern(64 * 1024, 21), Pattern(64 * 1024, 22)), "")
      << "node-a, node-b";
  Detach(c(), vol, "rwx-a");
  Detach(node_b_->client(), vol, "rwx-b");
}

TEST_F(IscsiCsiTest, QemuGuestWritesThroughTheExport) {
  if (!std::filesystem::exists(vdisk::testing::GuestDir() + "/vmlinuz"))
    FAIL() << "guest not built: the `guest` fixture (tests/env/guest.sh build) must run first";
  auto vol = MustCreate(Req("pvc-vm-root", 32 * kMiB));
  ASSERT_TRUE(ControllerPublish(vol, "node-a").ok());
  ASSERT_TRUE(Attach(c(), vol, "vm").ok());
  EXPECT_EQ(vdisk::testing::RunCsiAttachGuest(Socket("vm"), scratch_->path(), 32 * kMiB), "");
  Detach(c(), vol, "vm");
  EXPECT_TRUE(QemuRead(vol, "node-a", 2 * kMiB, 4 * kMiB) == vdisk::testing::Pattern(7, 2 * kMiB, 4 * kMiB))
      << "the guest's bytes did not reach the LUN";
}

}  // namespace
}  // namespace vdisk::csi::testing
