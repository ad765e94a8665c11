// The Node service with `attach: vhost-user`: the real vdisk-csi binary serves a Block volume as
// a vhost-user-blk socket at the CSI target path, and a test front end (tests/vhost/
// vhost_client.h, playing QEMU and the guest driver) reads and writes it. Checks: the
// StorageClass parameters reach the volume context, no kernel attachment is made, bytes
// written through the socket land in the volume (and survive snapshot, driver restart and
// online growth), a read-only publish refuses writes, unpublish removes the socket, and bad
// parameters get INVALID_ARGUMENT.
#include <sys/stat.h>

#include <cstring>

#include "blockdev/vhost/protocol.h"
#include "tests/csi/csi_fixture.h"
#include "tests/csi/vhost_io.h"
#include "tests/vhost/vhost_client.h"

namespace vdisk::csi::testing {
namespace {

using blockdev::vhost::BlkConfig;
using blockdev::vhost::testing::VhostClient;
namespace vh = blockdev::vhost;

constexpr gid_t kQemuGroup = 4242;  // --vhost-socket-group: the group an unprivileged QEMU runs in

class VhostAttachTest : public CsiDriverTest {
 protected:
  std::vector<std::string> DriverArgs() override {
    auto args = CsiDriverTest::DriverArgs();
    args.insert(args.end(), {"--vhost-socket-group", std::to_string(kQemuGroup)});
    return args;
  }

  v1::CreateVolumeRequest VhostReq(const std::string& name, int64_t size, const std::string& queues = "2") {
    auto r = CreateReq(name, size, /*block=*/true,
                       {Mode::SINGLE_NODE_WRITER, Mode::MULTI_NODE_MULTI_WRITER});
    (*r.mutable_parameters())["attach"] = "vhost-user";
    (*r.mutable_parameters())["vhostQueues"] = queues;
    return r;
  }

  Status StageCtx(const v1::Volume& vol, const std::string& staging) {
    v1::NodeStageVolumeRequest req;
    req.set_volume_id(vol.volume_id());
    req.set_staging_target_path(staging);
    *req.mutable_volume_capability() = Cap(true);
    *req.mutable_volume_context() = vol.volume_context();
    return c().NodeStageVolume(req).status();
  }

  Status PublishCtx(const v1::Volume& vol, const std::string& staging, const std::string& target,
                    bool readonly = false) {
    v1::NodePublishVolumeRequest req;
    req.set_volume_id(vol.volume_id());
    req.set_staging_target_path(staging);
    req.set_target_path(target);
    req.set_readonly(readonly);
    *req.mutable_volume_capability() = Cap(true);
    *req.mutable_volume_context() = vol.volume_context();
    return c().NodePublishVolume(req).status();
  }

  static std::string Pattern(size_t len, uint32_t seed) {
    std::string s(len, '\0');
    uint32_t x = seed * 2654435761u + 7;
    for (auto& ch : s) {
      x = x * 1664525u + 1013904223u;
      ch = static_cast<char>(x >> 24);
    }
    return s;
  }

  // One request through the socket; returns the virtio-blk status byte (0xff: no answer).
  static uint8_t Io(VhostClient& vc, uint32_t type, uint64_t offset, std::string* data) {
    return VhostRequest(vc, type, offset, data);
  }

  static uint64_t CapacityBytes(VhostClient& vc) {
    auto cfg = vc.GetConfig(0, sizeof(BlkConfig));
    if (!cfg.ok() || cfg->size() != sizeof(BlkConfig)) return 0;
    BlkConfig bc;
    std::memcpy(&bc, cfg->data(), sizeof(bc));
    return bc.capacity * 512;
  }

  static bool IsSocket(const std::string& p) {
    struct stat st;
    return ::lstat(p.c_str(), &st) == 0 && S_ISSOCK(st.st_mode);
  }
};

TEST_F(VhostAttachTest, ParametersAreValidated) {
  auto fs = CreateReq("pvc-vhost-fs", 8 * kMiB, /*block=*/false);
  (*fs.mutable_parameters())["attach"] = "vhost-user";
  EXPECT_EQ(Code(c().CreateVolume(fs)), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Code(c().CreateVolume(VhostReq("pvc-vhost-q0", 8 * kMiB, "0"))), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Code(c().CreateVolume(VhostReq("pvc-vhost-q99", 8 * kMiB, "99"))), absl::StatusCode::kInvalidArgument);
  auto bad = CreateReq("pvc-vhost-bad", 8 * kMiB, true);
  (*bad.mutable_parameters())["attach"] = "nbd";
  EXPECT_EQ(Code(c().CreateVolume(bad)), absl::StatusCode::kInvalidArgument);

  auto vol = MustCreate(VhostReq("pvc-vhost-ok", 8 * kMiB));
  EXPECT_EQ(vol.volume_context().at("attach"), "vhost-user");
  EXPECT_EQ(vol.volume_context().at("vhostQueues"), "2");
  // The same volume staged with another attach kind is an incompatible repeat.
  const std::string staging = StagingDir("vp");
  ASSERT_TRUE(StageCtx(vol, staging).ok());
  EXPECT_EQ(Stage(vol.volume_id(), staging, true).code(), absl::StatusCode::kAlreadyExists);
  ASSERT_TRUE(Unstage(vol.volume_id(), staging).ok());
}

TEST_F(VhostAttachTest, GuestBytesReachTheVolumeAndSurviveRestartAndGrowth) {
  auto vol = MustCreate(VhostReq("pvc-vhost-data", 16 * kMiB));
  const std::string staging = StagingDir("vd");
  const std::string target = TargetPath("vd");
  ASSERT_TRUE(StageCtx(vol, staging).ok());
  ASSERT_TRUE(StageCtx(vol, staging).ok());  // idempotent
  EXPECT_EQ(FindUnder(scratch_->path()).loops, 0) << "vhost-user staging must not attach a loop device";
  ASSERT_TRUE(PublishCtx(vol, staging, target).ok());
  ASSERT_TRUE(PublishCtx(vol, staging, target).ok());  // idempotent
  ASSERT_TRUE(IsSocket(target));
  struct stat st;
  ASSERT_EQ(::stat(target.c_str(), &st), 0);
  EXPECT_EQ(st.st_gid, kQemuGroup);
  EXPECT_EQ(st.st_mode & 0777, 0660u);

  const std::string data = Pattern(256 * 1024, 5);
  {
    VhostClient vc;
    ASSERT_TRUE(vc.Connect(target).ok());
    ASSERT_TRUE(vc.Setup(1).ok());
    EXPECT_EQ(CapacityBytes(vc), static_cast<uint64_t>(16 * kMiB));
    std::string w = data;
    ASSERT_EQ(Io(vc, vh::kBlkTOut, 3 * kMiB, &w), vh::kBlkSOk);
    ASSERT_EQ(Io(vc, vh::kBlkTFlush, 0, nullptr), vh::kBlkSOk);
  }
  v1::NodeGetVolumeStatsRequest sreq;
  sreq.set_volume_id(vol.volume_id());
  sreq.set_volume_path(target);
  auto stats = c().NodeGetVolumeStats(sreq);
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_FALSE(stats->volume_condition().abnormal()) << stats->volume_condition().message();

  // A snapshot taken now holds the bytes the guest wrote; a volume restored from it has them.
  auto snap = MustSnapshot("snap-vhost", vol.volume_id());
  auto restored_req = CreateReq("pvc-vhost-restored", 16 * kMiB, true);
  restored_req.mutable_volume_content_source()->mutable_snapshot()->set_snapshot_id(snap.snapshot_id());
  auto restored = MustCreate(restored_req);
  const std::string rs = StagingDir("vr"), rt = TargetPath("vr");
  ASSERT_TRUE(Stage(restored.volume_id(), rs, true).ok());
  ASSERT_TRUE(Publish(restored.volume_id(), rs, rt, true).ok());
  std::string from_snapshot(data.size(), '\0');
  {
    int fd = ::open(rt.c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    EXPECT_EQ(::pread(fd, from_snapshot.data(), from_snapshot.size(), 3 * kMiB),
              static_cast<ssize_t>(from_snapshot.size()));
    ::close(fd);
  }
  EXPECT_TRUE(from_snapshot == data) << "restored snapshot differs from what the guest wrote";
  ASSERT_TRUE(Unpublish(restored.volume_id(), rt).ok());
  ASSERT_TRUE(Unstage(restored.volume_id(), rs).ok());

  // The plugin restarts: the export comes back at the same socket with the same bytes.
  RestartDriver();
  ASSERT_TRUE(IsSocket(target));
  ASSERT_TRUE(PublishCtx(vol, staging, target).ok());  // kubelet's repeat after the restart
  {
    VhostClient vc;
    ASSERT_TRUE(vc.Connect(target).ok());
    ASSERT_TRUE(vc.Setup(1).ok());
    std::string r(data.size(), '\0');
    ASSERT_EQ(Io(vc, vh::kBlkTIn, 3 * kMiB, &r), vh::kBlkSOk);
    EXPECT_TRUE(r == data) << "bytes read through the restored export differ";
  }

  // Online growth: controller, then node; a new front end sees the new capacity.
  v1::ControllerExpandVolumeRequest creq;
  creq.set_volume_id(vol.volume_id());
  creq.mutable_capacity_range()->set_required_bytes(32 * kMiB);
  auto cr = c().ControllerExpandVolume(creq);
  ASSERT_TRUE(cr.ok()) << cr.status();
  v1::NodeExpandVolumeRequest nreq;
  nreq.set_volume_id(vol.volume_id());
  nreq.set_volume_path(target);
  auto nr = c().NodeExpandVolume(nreq);
  ASSERT_TRUE(nr.ok()) << nr.status();
  EXPECT_EQ(nr->capacity_bytes(), 32 * kMiB);
  {
    VhostClient vc;
    ASSERT_TRUE(vc.Connect(target).ok());
    ASSERT_TRUE(vc.Setup(1).ok());
    EXPECT_EQ(CapacityBytes(vc), static_cast<uint64_t>(32 * kMiB));
    std::string tail = Pattern(4096, 9);
    EXPECT_EQ(Io(vc, vh::kBlkTOut, 32 * kMiB - 4096, &tail), vh::kBlkSOk);
  }

  ASSERT_TRUE(Unpublish(vol.volume_id(), target).ok());
  EXPECT_FALSE(Exists(target));
  ASSERT_TRUE(Unpublish(vol.volume_id(), target).ok());  // idempotent
  ASSERT_TRUE(Unstage(vol.volume_id(), staging).ok());
  v1::DeleteSnapshotRequest ds;
  ds.set_snapshot_id(snap.snapshot_id());
  EXPECT_TRUE(c().DeleteSnapshot(ds).ok());
}

TEST_F(VhostAttachTest, ReadOnlyPublishRefusesWritesAndBothTargetsServe) {
  auto vol = MustCreate(VhostReq("pvc-vhost-ro", 8 * kMiB, "1"));
  const std::string staging = StagingDir("vo");
  const std::string rw = TargetPath("vo-rw"), ro = TargetPath("vo-ro");
  ASSERT_TRUE(StageCtx(vol, staging).ok());
  ASSERT_TRUE(PublishCtx(vol, staging, rw).ok());
  ASSERT_TRUE(PublishCtx(vol, staging, ro, /*readonly=*/true).ok());
  EXPECT_EQ(PublishCtx(vol, staging, ro, /*readonly=*/false).code(), absl::StatusCode::kAlreadyExists);

  const std::string data = Pattern(8192, 3);
  {
    VhostClient writer;
    ASSERT_TRUE(writer.Connect(rw).ok());
    ASSERT_TRUE(writer.Setup(1).ok());
    std::string w = data;
    ASSERT_EQ(Io(writer, vh::kBlkTOut, 0, &w), vh::kBlkSOk);
    ASSERT_EQ(Io(writer, vh::kBlkTFlush, 0, nullptr), vh::kBlkSOk);
  }
  {
    VhostClient reader;
    ASSERT_TRUE(reader.Connect(ro).ok());
    ASSERT_TRUE(reader.Setup(1).ok());
    EXPECT_TRUE(reader.acked_features() & (uint64_t{1} << vh::kBlkFRo));
    std::string r(data.size(), '\0');
    ASSERT_EQ(Io(reader, vh::kBlkTIn, 0, &r), vh::kBlkSOk);
    EXPECT_TRUE(r == data);
    std::string w = Pattern(4096, 4);
    EXPECT_EQ(Io(reader, vh::kBlkTOut, 0, &w), vh::kBlkSIoErr);
  }
  ASSERT_TRUE(Unpublish(vol.volume_id(), ro).ok());
  ASSERT_TRUE(Unpublish(vol.volume_id(), rw).ok());
  EXPECT_FALSE(Exists(ro));
  EXPECT_FALSE(Exists(rw));
  ASSERT_TRUE(Unstage(vol.volume_id(), staging).ok());
}

}  // namespace
}  // namespace vdisk::csi::testing
