// The Node service over the socket, called the way kubelet calls it, on real loop devices and
// bind mounts: stage / publish of Block and Filesystem volumes with data checks, read-only,
// RWX at two targets, stats, node expansion, paths outside the allowed root, restarts.
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <fstream>
#include <thread>

#include "csi/mounter.h"
#include "tests/csi/csi_fixture.h"

namespace vdisk::csi::testing {
namespace {

using Node = v1::NodeServiceCapability::RPC;

class NodeTest : public CsiDriverTest {};

bool IsMounted(const std::string& p) {
  auto m = mount::IsMountPoint(p);
  return m.ok() && *m;
}

TEST_F(NodeTest, InfoAndCapabilities) {
  auto info = c().NodeGetInfo();
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->node_id(), "test-node");
  EXPECT_GE(info->max_volumes_per_node(), 0);
  EXPECT_EQ(info->accessible_topology().segments().at("topology.vdisk.csi.io/node"), "test-node");
  auto caps = c().NodeGetCapabilities();
  ASSERT_TRUE(caps.ok());
  std::set<int> got;
  for (const auto& cap : caps->capabilities()) got.insert(cap.rpc().type());
  EXPECT_EQ(got, (std::set<int>{Node::STAGE_UNSTAGE_VOLUME, Node::GET_VOLUME_STATS, Node::EXPAND_VOLUME,
                                Node::VOLUME_CONDITION, Node::SINGLE_NODE_MULTI_WRITER}));
}

// Stage + publish + write + read + stats + unpublish + unstage, for both volume modes.
class NodeLifecycle : public NodeTest, public ::testing::WithParamInterface<bool> {};

TEST_P(NodeLifecycle, StagePublishWriteReadUnpublishUnstage) {
  const bool block = GetParam();
  auto vol = MustCreate(CreateReq(block ? "pvc-node-block" : "pvc-node-fs", 64 * kMiB, block));
  const std::string staging = StagingDir("a");
  const std::string target = TargetPath("pod-a");

  ASSERT_TRUE(Stage(vol.volume_id(), staging, block).ok());
  ASSERT_TRUE(Stage(vol.volume_id(), staging, block).ok());  // idempotent
  EXPECT_EQ(IsMounted(staging), !block);  // Filesystem: the volume directory is bind-mounted there
  ASSERT_TRUE(Publish(vol.volume_id(), staging, target, block).ok());
  ASSERT_TRUE(Publish(vol.volume_id(), staging, target, block).ok());  // idempotent
  EXPECT_TRUE(IsMounted(target));
  struct stat st;
  ASSERT_EQ(::stat(target.c_str(), &st), 0);
  if (block) {
    EXPECT_TRUE(S_ISBLK(st.st_mode)) << "the target file shows the device node";
    auto size = mount::BlockDeviceSize(target);
    ASSERT_TRUE(size.ok());
    EXPECT_EQ(*size, static_cast<uint64_t>(64 * kMiB));
  } else {
    EXPECT_TRUE(S_ISDIR(st.st_mode));
    ASSERT_EQ(::stat((target + "/disk.img").c_str(), &st), 0);
    EXPECT_EQ(st.st_size, 64 * kMiB);
  }

  // Bytes written through the target are the volume's bytes.
  const std::string path = DataPath(target, block);
  std::string written = WritePattern(path, 5 * kMiB, 3 * kMiB, 42);
  EXPECT_EQ(ReadHash(path, 5 * kMiB, 3 * kMiB), written);

  // A publish with a different read-only flag at the same target is incompatible.
  EXPECT_EQ(Publish(vol.volume_id(), staging, target, block, /*readonly=*/true).code(),
            absl::StatusCode::kAlreadyExists);

  // Stats: size, allocation (thin), health; unknown paths and volumes are NOT_FOUND.
  v1::NodeGetVolumeStatsRequest sreq;
  sreq.set_volume_id(vol.volume_id());
  sreq.set_volume_path(target);
  auto stats = c().NodeGetVolumeStats(sreq);
  ASSERT_TRUE(stats.ok()) << stats.status();
  ASSERT_GE(stats->usage_size(), 1);
  EXPECT_EQ(stats->usage(0).unit(), v1::VolumeUsage::BYTES);
  EXPECT_EQ(stats->usage(0).total(), 64 * kMiB);
  EXPECT_GE(stats->usage(0).used(), 3 * kMiB);
  EXPECT_LT(stats->usage(0).used(), 64 * kMiB);  // thin: only what was written
  EXPECT_FALSE(stats->volume_condition().abnormal()) << stats->volume_condition().message();
  if (!block) {
    ASSERT_EQ(stats->usage_size(), 2);
    EXPECT_EQ(stats->usage(1).unit(), v1::VolumeUsage::INODES);
  }
  sreq.set_volume_path("some/path");
  EXPECT_EQ(Code(c().NodeGetVolumeStats(sreq)), absl::StatusCode::kNotFound);
  sreq.set_volume_path(kubelet_ + "/pods/never-published/vol");
  EXPECT_EQ(Code(c().NodeGetVolumeStats(sreq)), absl::StatusCode::kNotFound);

  // Unstage while still published is refused; unpublish removes the target; repeats succeed.
  EXPECT_EQ(Unstage(vol.volume_id(), staging).code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(Unpublish(vol.volume_id(), target).ok());
  EXPECT_FALSE(Exists(target));
  ASSERT_TRUE(Unpublish(vol.volume_id(), target).ok());
  ASSERT_TRUE(Unstage(vol.volume_id(), staging).ok());
  ASSERT_TRUE(Unstage(vol.volume_id(), staging).ok());
  EXPECT_FALSE(IsMounted(staging));
  EXPECT_TRUE(Exists(staging)) << "the staging directory belongs to the CO";
  auto left = FindUnder(scratch_->path());
  EXPECT_EQ(left.mounts, 0);
  EXPECT_EQ(left.loops, 0);

  // The data is still there after everything was torn down: stage and publish again.
  ASSERT_TRUE(Stage(vol.volume_id(), staging, block).ok());
  ASSERT_TRUE(Publish(vol.volume_id(), staging, target, block).ok());
  EXPECT_EQ(ReadHash(path, 5 * kMiB, 3 * kMiB), written);
  ASSERT_TRUE(Unpublish(vol.volume_id(), target).ok());
  ASSERT_TRUE(Unstage(vol.volume_id(), staging).ok());
}

TEST_P(NodeLifecycle, ReadOnlyPublishRefusesWrites) {
  const bool block = GetParam();
  auto vol = MustCreate(CreateReq("pvc-ro", 16 * kMiB, block));
  const std::string staging = StagingDir("ro");
  const std::string rw = TargetPath("writer");
  const std::string ro = TargetPath("reader");
  ASSERT_TRUE(Stage(vol.volume_id(), staging, block).ok());
  ASSERT_TRUE(Publish(vol.volume_id(), staging, rw, block).ok());
  std::string h = WritePattern(DataPath(rw, block), 0, kMiB, 7);
  ASSERT_TRUE(Publish(vol.volume_id(), staging, ro, block, /*readonly=*/true).ok());
  ASSERT_TRUE(Publish(vol.volume_id(), staging, ro, block, /*readonly=*/true).ok());  // idempotent
  EXPECT_EQ(ReadHash(DataPath(ro, block), 0, kMiB), h);
  EXPECT_TRUE(WriteRefused(DataPath(ro, block))) << "a read-only publish must refuse writes";
  EXPECT_EQ(ReadHash(DataPath(rw, block), 0, kMiB), h) << "and the refused write changed nothing";
  ASSERT_TRUE(Unpublish(vol.volume_id(), ro).ok());
  ASSERT_TRUE(Unpublish(vol.volume_id(), rw).ok());
  ASSERT_TRUE(Unstage(vol.volume_id(), staging).ok());
  EXPECT_EQ(FindUnder(scratch_->path()).loops, 0) << "the read-only attachment was released too";
}

TEST_P(NodeLifecycle, ReaderOnlyAccessModeStagesReadOnly) {
  const bool block = GetParam();
  auto vol = MustCreate(CreateReq("pvc-rox", 8 * kMiB, block, {Mode::MULTI_NODE_READER_ONLY}));
  const std::string staging = StagingDir("rox");
  const std::string target = TargetPath("rox");
  ASSERT_TRUE(Stage(vol.volume_id(), staging, block, Mode::MULTI_NODE_READER_ONLY).ok());
  ASSERT_TRUE(Publish(vol.volume_id(), staging, target, block, false, Mode::MULTI_NODE_READER_ONLY).ok());
  EXPECT_TRUE(WriteRefused(DataPath(target, block)));
  // Staging again with a writer mode is incompatible.
  EXPECT_EQ(Stage(vol.volume_id(), staging, block).code(), absl::StatusCode::kAlreadyExists);
  ASSERT_TRUE(Unpublish(vol.volume_id(), target).ok());
  ASSERT_TRUE(Unstage(vol.volume_id(), staging).ok());
}

TEST_P(NodeLifecycle, RwxPublishedTwiceSharesTheBytes) {
  const bool block = GetParam();
  auto vol = MustCreate(CreateReq("pvc-rwx", 8 * kMiB, block, {Mode::MULTI_NODE_MULTI_WRITER}));
  const std::string staging = StagingDir("rwx");
  const std::string t1 = TargetPath("vm-source");
  const std::string t2 = TargetPath("vm-migration-target");
  ASSERT_TRUE(Stage(vol.volume_id(), staging, block, Mode::MULTI_NODE_MULTI_WRITER).ok());
  ASSERT_TRUE(Publish(vol.volume_id(), staging, t1, block, false, Mode::MULTI_NODE_MULTI_WRITER).ok());
  ASSERT_TRUE(Publish(vol.volume_id(), staging, t2, block, false, Mode::MULTI_NODE_MULTI_WRITER).ok());
  std::string h = WritePattern(DataPath(t1, block), 2 * kMiB, kMiB, 9);
  EXPECT_EQ(ReadHash(DataPath(t2, block), 2 * kMiB, kMiB), h);
  ASSERT_TRUE(Unpublish(vol.volume_id(), t1).ok());
  EXPECT_EQ(ReadHash(DataPath(t2, block), 2 * kMiB, kMiB), h);
  ASSERT_TRUE(Unpublish(vol.volume_id(), t2).ok());
  ASSERT_TRUE(Unstage(vol.volume_id(), staging).ok());
}

// ReadWriteOncePod (SINGLE_NODE_SINGLE_WRITER) allows one publish on the node; ReadWriteOnce
// (SINGLE_NODE_MULTI_WRITER) several pods on it. Nothing is left behind by the refusal.
TEST_P(NodeLifecycle, SingleWriterAccessModeIsEnforcedOnTheNode) {
  const bool block = GetParam();
  auto vol = MustCreate(CreateReq("pvc-rwop", 8 * kMiB, block,
                                  {Mode::SINGLE_NODE_SINGLE_WRITER, Mode::SINGLE_NODE_MULTI_WRITER}));
  const std::string staging = StagingDir("rwop");
  const std::string t1 = TargetPath("rwop-pod-1");
  const std::string t2 = TargetPath("rwop-pod-2");
  ASSERT_TRUE(Stage(vol.volume_id(), staging, block, Mode::SINGLE_NODE_SINGLE_WRITER).ok());
  ASSERT_TRUE(Publish(vol.volume_id(), staging, t1, block, false, Mode::SINGLE_NODE_SINGLE_WRITER).ok());
  ASSERT_TRUE(Publish(vol.volume_id(), staging, t1, block, false, Mode::SINGLE_NODE_SINGLE_WRITER).ok())
      << "a repeat at the same target stays idempotent";
  EXPECT_EQ(Publish(vol.volume_id(), staging, t2, block, false, Mode::SINGLE_NODE_SINGLE_WRITER).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Publish(vol.volume_id(), staging, t2, block, true, Mode::SINGLE_NODE_SINGLE_WRITER).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Publish(vol.volume_id(), staging, t2, block, false, Mode::SINGLE_NODE_MULTI_WRITER).code(),
            absl::StatusCode::kFailedPrecondition)
      << "another pod may not join a ReadWriteOncePod publish";
  EXPECT_FALSE(Exists(t2)) << "the refused publish made nothing";
  EXPECT_EQ(Publish(vol.volume_id(), staging, t1, block, false, Mode::SINGLE_NODE_MULTI_WRITER).code(),
            absl::StatusCode::kAlreadyExists)
      << "the same target with another access mode is an incompatible repeat";
  // Once the first pod is gone, a new one may publish.
  ASSERT_TRUE(Unpublish(vol.volume_id(), t1).ok());
  ASSERT_TRUE(Publish(vol.volume_id(), staging, t2, block, false, Mode::SINGLE_NODE_SINGLE_WRITER).ok());
  ASSERT_TRUE(Unpublish(vol.volume_id(), t2).ok());

  // ReadWriteOnce: several pods on one node, but a ReadWriteOncePod publish may not join them.
  ASSERT_TRUE(Publish(vol.volume_id(), staging, t1, block, false, Mode::SINGLE_NODE_MULTI_WRITER).ok());
  ASSERT_TRUE(Publish(vol.volume_id(), staging, t2, block, false, Mode::SINGLE_NODE_MULTI_WRITER).ok());
  std::string h = WritePattern(DataPath(t1, block), kMiB, kMiB, 11);
  EXPECT_EQ(ReadHash(DataPath(t2, block), kMiB, kMiB), h);
  const std::string t3 = TargetPath("rwop-pod-3");
  EXPECT_EQ(Publish(vol.volume_id(), staging, t3, block, false, Mode::SINGLE_NODE_SINGLE_WRITER).code(),
            absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(Unpublish(vol.volume_id(), t1).ok());
  ASSERT_TRUE(Unpublish(vol.volume_id(), t2).ok());
  ASSERT_TRUE(Unstage(vol.volume_id(), staging).ok());
  auto left = FindUnder(scratch_->path());
  EXPECT_EQ(left.mounts, 0);
  EXPECT_EQ(left.loops, 0);
}

TEST_P(NodeLifecycle, ExpandWhilePublished) {
  const bool block = GetParam();
  auto vol = MustCreate(CreateReq("pvc-grow", 8 * kMiB, block));
  const std::string staging = StagingDir("grow");
  const std::string target = TargetPath("grow");
  ASSERT_TRUE(Stage(vol.volume_id(), staging, block).ok());
  ASSERT_TRUE(Publish(vol.volume_id(), staging, target, block).ok());
  std::string h = WritePattern(DataPath(target, block), 0, kMiB, 3);

  v1::ControllerExpandVolumeRequest creq;
  creq.set_volume_id(vol.volume_id());
  creq.mutable_capacity_range()->set_required_bytes(24 * kMiB);
  auto cr = c().ControllerExpandVolume(creq);
  ASSERT_TRUE(cr.ok()) << cr.status();
  EXPECT_EQ(cr->node_expansion_required(), block);

  v1::NodeExpandVolumeRequest nreq;
  nreq.set_volume_id(vol.volume_id());
  nreq.set_volume_path(target);
  nreq.mutable_capacity_range()->set_required_bytes(24 * kMiB);
  auto nr = c().NodeExpandVolume(nreq);
  ASSERT_TRUE(nr.ok()) << nr.status();
  EXPECT_EQ(nr->capacity_bytes(), 24 * kMiB);
  if (block) {
    EXPECT_EQ(*mount::BlockDeviceSize(target), static_cast<uint64_t>(24 * kMiB));
  } else {
    struct stat st;
    ASSERT_EQ(::stat((target + "/disk.img").c_str(), &st), 0);
    EXPECT_EQ(st.st_size, 24 * kMiB);
  }
  EXPECT_EQ(ReadHash(DataPath(target, block), 0, kMiB), h);
  WritePattern(DataPath(target, block), 20 * kMiB, kMiB, 4);  // the new space is usable

  nreq.mutable_capacity_range()->set_required_bytes(48 * kMiB);  // beyond the controller's size
  EXPECT_EQ(Code(c().NodeExpandVolume(nreq)), absl::StatusCode::kOutOfRange);
  nreq.set_volume_path("some/path");
  EXPECT_EQ(Code(c().NodeExpandVolume(nreq)), absl::StatusCode::kNotFound);
  nreq.clear_volume_path();
  EXPECT_EQ(Code(c().NodeExpandVolume(nreq)), absl::StatusCode::kInvalidArgument);
  nreq.set_volume_path(target);
  nreq.set_volume_id("fake-vol-id");
  EXPECT_EQ(Code(c().NodeExpandVolume(nreq)), absl::StatusCode::kNotFound);

  ASSERT_TRUE(Unpublish(vol.volume_id(), target).ok());
  ASSERT_TRUE(Unstage(vol.volume_id(), staging).ok());
}

INSTANTIATE_TEST_SUITE_P(Modes, NodeLifecycle, ::testing::Values(true, false),
                         [](const auto& info) { return info.param ? "Block" : "Filesystem"; });

TEST_F(NodeTest, BadInputCodes) {
  auto vol = MustCreate(CreateReq("pvc-node-bad", 4 * kMiB, true));
  const std::string id = vol.volume_id();
  const std::string staging = StagingDir("bad");
  const std::string target = TargetPath("bad");

  // Stage: missing id, path, capability; unknown / hand-made id; wrong access type.
  EXPECT_EQ(Stage("", staging, true).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Stage(id, "", true).code(), absl::StatusCode::kInvalidArgument);
  v1::NodeStageVolumeRequest nocap;
  nocap.set_volume_id(id);
  nocap.set_staging_target_path(staging);
  EXPECT_EQ(Code(c().NodeStageVolume(nocap)), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Stage("fake-vol-id", staging, true).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Stage("v1.vol.local.not-a-volume", staging, true).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Stage(id, staging, false).code(), absl::StatusCode::kInvalidArgument);

  // Paths outside the allowed root, relative or with "..": INVALID_ARGUMENT, nothing mounted.
  const std::string outside = *scratch_ / "outside";
  ASSERT_TRUE(fs::MakeDirs(outside).ok());
  EXPECT_EQ(Stage(id, outside, true).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Stage(id, "relative/staging", true).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Stage(id, kubelet_ + "/../outside", true).code(), absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(Stage(id, staging, true).ok());
  EXPECT_EQ(Publish(id, staging, outside + "/target", true).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Publish(id, staging, "/etc/vdisk-should-not-exist", true).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(Exists(outside + "/target"));
  EXPECT_FALSE(Exists("/etc/vdisk-should-not-exist"));

  // Publish: missing id, target, capability, staging path; not staged there; wrong type.
  EXPECT_EQ(Publish("", staging, target, true).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Publish(id, staging, "", true).code(), absl::StatusCode::kInvalidArgument);
  v1::NodePublishVolumeRequest pnocap;
  pnocap.set_volume_id(id);
  pnocap.set_staging_target_path(staging);
  pnocap.set_target_path(target);
  EXPECT_EQ(Code(c().NodePublishVolume(pnocap)), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Publish(id, "", target, true).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Publish(id, StagingDir("elsewhere"), target, true).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Publish(id, staging, target, false).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Publish("fake-vol-id", staging, target, true).code(), absl::StatusCode::kNotFound);
  EXPECT_FALSE(Exists(target)) << "failed publishes leave no target behind";

  // Unpublish / unstage / stats: missing fields and unknown volumes.
  EXPECT_EQ(Unpublish("", target).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Unpublish(id, "").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(Unpublish(id, target).ok());  // never published there: nothing to do
  EXPECT_EQ(Unstage("", staging).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Unstage(id, "").code(), absl::StatusCode::kInvalidArgument);
  v1::NodeGetVolumeStatsRequest s;
  s.set_volume_path("some/path");
  EXPECT_EQ(Code(c().NodeGetVolumeStats(s)), absl::StatusCode::kInvalidArgument);
  s.set_volume_id("fake-vol-id");
  EXPECT_EQ(Code(c().NodeGetVolumeStats(s)), absl::StatusCode::kNotFound);
  s.clear_volume_path();
  EXPECT_EQ(Code(c().NodeGetVolumeStats(s)), absl::StatusCode::kInvalidArgument);

  ASSERT_TRUE(Unstage(id, staging).ok());
}

TEST_F(NodeTest, MountFlagsAreAppliedAndUnknownOnesRefused) {
  auto vol = MustCreate(CreateReq("pvc-flags", 4 * kMiB, false));
  const std::string staging = StagingDir("flags");
  const std::string target = TargetPath("flags");
  ASSERT_TRUE(Stage(vol.volume_id(), staging, false).ok());
  v1::NodePublishVolumeRequest req;
  req.set_volume_id(vol.volume_id());
  req.set_staging_target_path(staging);
  req.set_target_path(target);
  *req.mutable_volume_capability() = Cap(false);
  req.mutable_volume_capability()->mutable_mount()->add_mount_flags("nosuid");
  req.mutable_volume_capability()->mutable_mount()->add_mount_flags("noexec");
  ASSERT_TRUE(c().NodePublishVolume(req).ok());
  struct statvfs sv;
  ASSERT_EQ(::statvfs(target.c_str(), &sv), 0);
  EXPECT_TRUE(sv.f_flag & ST_NOSUID);
  EXPECT_TRUE(sv.f_flag & ST_NOEXEC);
  ASSERT_TRUE(Unpublish(vol.volume_id(), target).ok());
  req.mutable_volume_capability()->mutable_mount()->add_mount_flags("uid=0");
  EXPECT_EQ(Code(c().NodePublishVolume(req)), absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(Unstage(vol.volume_id(), staging).ok());
}

TEST_F(NodeTest, StagingAndPublishingSurviveRestartsAndCrashes) {
  auto blk = MustCreate(CreateReq("pvc-restart-blk", 8 * kMiB, true));
  auto fsv = MustCreate(CreateReq("pvc-restart-fs", 8 * kMiB, false));
  const std::string sb = StagingDir("rb"), sf = StagingDir("rf");
  const std::string tb = TargetPath("rb"), tf = TargetPath("rf");
  ASSERT_TRUE(Stage(blk.volume_id(), sb, true).ok());
  ASSERT_TRUE(Publish(blk.volume_id(), sb, tb, true).ok());
  ASSERT_TRUE(Stage(fsv.volume_id(), sf, false).ok());
  ASSERT_TRUE(Publish(fsv.volume_id(), sf, tf, false).ok());
  std::string hb = WritePattern(tb, 0, kMiB, 11);
  std::string hf = WritePattern(tf + "/disk.img", 0, kMiB, 12);

  RestartDriver();  // graceful
  ASSERT_TRUE(Stage(blk.volume_id(), sb, true).ok());  // kubelet repeats after a plugin restart
  ASSERT_TRUE(Publish(blk.volume_id(), sb, tb, true).ok());
  ASSERT_TRUE(Publish(fsv.volume_id(), sf, tf, false).ok());
  EXPECT_EQ(Publish(blk.volume_id(), sb, tb, true, /*readonly=*/true).code(), absl::StatusCode::kAlreadyExists);

  driver_->Kill();  // a crash
  StartDriver();
  v1::NodeGetVolumeStatsRequest s;
  s.set_volume_id(fsv.volume_id());
  s.set_volume_path(tf);
  EXPECT_TRUE(c().NodeGetVolumeStats(s).ok());
  EXPECT_EQ(ReadHash(tb, 0, kMiB), hb);
  EXPECT_EQ(ReadHash(tf + "/disk.img", 0, kMiB), hf);

  // After the restarts the driver still knows what to undo.
  ASSERT_TRUE(Unpublish(blk.volume_id(), tb).ok());
  ASSERT_TRUE(Unstage(blk.volume_id(), sb).ok());
  ASSERT_TRUE(Unpublish(fsv.volume_id(), tf).ok());
  ASSERT_TRUE(Unstage(fsv.volume_id(), sf).ok());
  auto left = FindUnder(scratch_->path());
  EXPECT_EQ(left.mounts, 0);
  EXPECT_EQ(left.loops, 0);
}

// Two read-only publishes of a read-write staged Block volume share one read-only loop device;
// unpublishing the first must leave the second working.
TEST_F(NodeTest, TwoReadOnlyBlockPublishesShareTheirDeviceSafely) {
  auto vol = MustCreate(CreateReq("pvc-two-ro", 8 * kMiB, true));
  const std::string staging = StagingDir("tr");
  const std::string t1 = TargetPath("tr1"), t2 = TargetPath("tr2");
  ASSERT_TRUE(Stage(vol.volume_id(), staging, true).ok());
  ASSERT_TRUE(Publish(vol.volume_id(), staging, t1, true, /*readonly=*/true).ok());
  ASSERT_TRUE(Publish(vol.volume_id(), staging, t2, true, /*readonly=*/true).ok());
  ASSERT_TRUE(Unpublish(vol.volume_id(), t1).ok());
  std::string block(4096, '\0');
  int fd = ::open(t2.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0) << strerror(errno);
  EXPECT_EQ(::pread(fd, block.data(), block.size(), 0), 4096) << "the second read-only publish lost its device";
  ::close(fd);
  ASSERT_TRUE(Unpublish(vol.volume_id(), t2).ok());
  ASSERT_TRUE(Unstage(vol.volume_id(), staging).ok());
  auto left = FindUnder(scratch_->path());
  EXPECT_EQ(left.loops, 0);
  EXPECT_EQ(left.mounts, 0);
}

TEST_F(NodeTest, PublishRestoresAMountLostUnderneath) {
  // What a node reboot (or an admin's umount) does: the staging bind mount disappears while the
  // driver's record stays. The next publish puts it back.
  auto vol = MustCreate(CreateReq("pvc-lost", 4 * kMiB, false));
  const std::string staging = StagingDir("lost");
  const std::string target = TargetPath("lost");
  ASSERT_TRUE(Stage(vol.volume_id(), staging, false).ok());
  ASSERT_EQ(::umount2(staging.c_str(), 0), 0);
  ASSERT_TRUE(Publish(vol.volume_id(), staging, target, false).ok());
  EXPECT_TRUE(IsMounted(staging));
  struct stat st;
  EXPECT_EQ(::stat((target + "/disk.img").c_str(), &st), 0);
  // Stats report a target whose mount vanished as abnormal.
  ASSERT_EQ(::umount2(target.c_str(), 0), 0);
  v1::NodeGetVolumeStatsRequest s;
  s.set_volume_id(vol.volume_id());
  s.set_volume_path(target);
  auto stats = c().NodeGetVolumeStats(s);
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_TRUE(stats->volume_condition().abnormal());
  ASSERT_TRUE(Unpublish(vol.volume_id(), target).ok());
  ASSERT_TRUE(Unstage(vol.volume_id(), staging).ok());
}

}  // namespace
}  // namespace vdisk::csi::testing
