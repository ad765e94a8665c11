// The Node service with `attach: vhost-user`: the real vdisk-csi binary serves a Filesystem-mode
// volume as a vhost-user-blk export whose socket directory it bind-mounts at kubelet's publish
// path (csi/vhost_publish.h), and a test front end (tests/vhost/vhost_client.h, playing QEMU and
// the guest driver) reads and writes it through that path. The targets have the shape and the
// length of kubelet's (>= 140 bytes, far past a socket address's 107). Checks: parameters reach
// the volume context and Block is refused, no kernel attachment is made, the published directory
// holds the socket and its description and is read-only, bytes written through the socket land
// in the volume (and survive snapshot, restore into a kernel-attached volume, driver restart and
// online growth), a clone of a kernel-attached volume (how a CDI import reaches a vhost-user
// volume) is served with its bytes, a read-only publish refuses writes, unpublish leaves nothing.
#include <sys/mount.h>
#include <sys/stat.h>

#include <cstring>

#include "blockdev/vhost/protocol.h"
#include "csi/vhost_publish.h"
#include "nlohmann/json.hpp"
#include "tests/csi/csi_fixture.h"
#include "tests/csi/metrics_scrape.h"
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
    args.insert(args.end(), {"--vhost-socket-group", std::to_string(kQemuGroup),
                             "--metrics-address", "127.0.0.1:0"});
    return args;
  }

  v1::CreateVolumeRequest VhostReq(const std::string& name, int64_t size, const std::string& queues = "2") {
    auto r = CreateReq(name, size, /*block=*/false,
                       {Mode::SINGLE_NODE_WRITER, Mode::MULTI_NODE_MULTI_WRITER});
    (*r.mutable_parameters())["attach"] = "vhost-user";
    (*r.mutable_parameters())["vhostQueues"] = queues;
    return r;
  }

  Status StageCtx(const v1::Volume& vol, const std::string& staging) {
    return StageWithContext(c(), vol, staging, Cap(false));
  }

  Status PublishCtx(const v1::Volume& vol, const std::string& staging, const std::string& target,
                    bool readonly = false) {
    return PublishWithContext(c(), vol, staging, target, Cap(false), readonly);
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

  // A front end on the socket published at `target` (reached through the target path itself).
  static void Attach(VhostClient& vc, const std::string& target) {
    ASSERT_GE(target.size(), 140u) << "the target must be as long as kubelet's";
    ASSERT_TRUE(vc.ConnectIn(target, kVhostSocketName).ok());
    ASSERT_TRUE(vc.Setup(1).ok());
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

  static nlohmann::json Info(const std::string& target) {
    auto text = fs::ReadFile(target + "/" + kVhostInfoName);
    EXPECT_TRUE(text.ok()) << text.status();
    return nlohmann::json::parse(text.ok() ? *text : "{}", nullptr, false);
  }

  static bool IsSocket(const std::string& p) {
    struct stat st;
    return ::lstat(p.c_str(), &st) == 0 && S_ISSOCK(st.st_mode);
  }
  std::vector<std::string> ExportDirs() {
    std::vector<std::string> out;
    for (const auto& e : std::filesystem::directory_iterator(*sockdir_ / "vhost")) out.push_back(e.path());
    return out;
  }
};

TEST_F(VhostAttachTest, ParametersAreValidated) {
  // Block volumes cannot carry a socket: kubelet maps them into the pod as device nodes.
  auto block = CreateReq("pvc-vhost-block", 8 * kMiB, /*block=*/true);
  (*block.mutable_parameters())["attach"] = "vhost-user";
  auto refused = c().CreateVolume(block);
  EXPECT_EQ(Code(refused), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(refused.status().message().find("Filesystem"), std::string::npos) << refused.status();
  EXPECT_EQ(Code(c().CreateVolume(VhostReq("pvc-vhost-q0", 8 * kMiB, "0"))), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Code(c().CreateVolume(VhostReq("pvc-vhost-q99", 8 * kMiB, "99"))), absl::StatusCode::kInvalidArgument);
  auto bad = CreateReq("pvc-vhost-bad", 8 * kMiB, false);
  (*bad.mutable_parameters())["attach"] = "nbd";
  EXPECT_EQ(Code(c().CreateVolume(bad)), absl::StatusCode::kInvalidArgument);

  auto vol = MustCreate(VhostReq("pvc-vhost-ok", 8 * kMiB));
  EXPECT_EQ(vol.volume_context().at("attach"), "vhost-user");
  EXPECT_EQ(vol.volume_context().at("vhostQueues"), "2");
  // The same volume staged with another attach kind is an incompatible repeat.
  const std::string staging = KubeletStaging(vol.volume_id());
  ASSERT_TRUE(StageCtx(vol, staging).ok());
  EXPECT_EQ(Stage(vol.volume_id(), staging, false).code(), absl::StatusCode::kAlreadyExists);
  ASSERT_TRUE(Unstage(vol.volume_id(), staging).ok());
}

TEST_F(VhostAttachTest, GuestBytesReachTheVolumeThroughKubeletsPathAndSurviveRestartAndGrowth) {
  auto vol = MustCreate(VhostReq("pvc-vhost-data", 16 * kMiB));
  const std::string staging = KubeletStaging(vol.volume_id());
  const std::string target = KubeletFsTarget("pod-vd", "pv-vd");
  ASSERT_GE(target.size(), 140u);
  ASSERT_TRUE(StageCtx(vol, staging).ok());
  ASSERT_TRUE(StageCtx(vol, staging).ok());  // idempotent
  EXPECT_EQ(FindUnder(scratch_->path()).loops, 0) << "vhost-user staging must not attach a loop device";
  EXPECT_EQ(FindUnder(scratch_->path()).mounts, 0) << "vhost-user staging mounts nothing";
  ASSERT_TRUE(PublishCtx(vol, staging, target).ok());
  ASSERT_TRUE(PublishCtx(vol, staging, target).ok());  // idempotent

  // The target is a mount of a short node-local directory holding the socket and its
  // description; the socket's own path fits a socket address.
  EXPECT_EQ(FindUnder(scratch_->path()).mounts, 1);
  ASSERT_TRUE(IsSocket(target + "/" + kVhostSocketName));
  auto dirs = ExportDirs();
  ASSERT_EQ(dirs.size(), 1u);
  EXPECT_LT(VhostSocketPath(dirs[0]).size(), 108u);
  EXPECT_TRUE(IsSocket(VhostSocketPath(dirs[0])));
  struct stat st;
  ASSERT_EQ(::stat((target + "/" + kVhostSocketName).c_str(), &st), 0);
  EXPECT_EQ(st.st_gid, kQemuGroup);
  EXPECT_EQ(st.st_mode & 0777, 0660u);
  nlohmann::json info = Info(target);
  EXPECT_EQ(info.value("format", 0), 1);
  EXPECT_EQ(info.value("type", ""), "vhost-user-blk");
  EXPECT_EQ(info.value("socket", ""), kVhostSocketName);
  EXPECT_EQ(info.value("volume_id", ""), vol.volume_id());
  EXPECT_EQ(info.value("size_bytes", uint64_t{0}), static_cast<uint64_t>(16 * kMiB));
  EXPECT_EQ(info.value("num_queues", 0u), 2u);
  EXPECT_EQ(info.value("read_only", true), false);
  EXPECT_GE(info.value("logical_block_size", 0u), 512u);
  // Read-only for the pod: an importer writing disk.img there fails at once.
  int fd = ::open((target + "/disk.img").c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
  EXPECT_LT(fd, 0);
  EXPECT_EQ(errno, EROFS);
  if (fd >= 0) ::close(fd);

  const std::string data = Pattern(256 * 1024, 5);
  {
    VhostClient vc;
    Attach(vc, target);
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

  // A snapshot taken now holds the bytes the guest wrote; a kernel-attached Filesystem volume
  // restored from it has them in its disk.img.
  auto snap = MustSnapshot("snap-vhost", vol.volume_id());
  auto restored_req = CreateReq("pvc-vhost-restored", 16 * kMiB, false);
  restored_req.mutable_volume_content_source()->mutable_snapshot()->set_snapshot_id(snap.snapshot_id());
  auto restored = MustCreate(restored_req);
  const std::string rs = KubeletStaging(restored.volume_id()), rt = KubeletFsTarget("pod-vr", "pv-vr");
  ASSERT_TRUE(Stage(restored.volume_id(), rs, false).ok());
  ASSERT_TRUE(Publish(restored.volume_id(), rs, rt, false).ok());
  {
    std::string from_snapshot(data.size(), '\0');
    int rfd = ::open(DataPath(rt, false).c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(rfd, 0);
    EXPECT_EQ(::pread(rfd, from_snapshot.data(), from_snapshot.size(), 3 * kMiB),
              static_cast<ssize_t>(from_snapshot.size()));
    ::close(rfd);
    EXPECT_TRUE(from_snapshot == data) << "restored snapshot differs from what the guest wrote";
  }
  ASSERT_TRUE(Unpublish(restored.volume_id(), rt).ok());
  ASSERT_TRUE(Unstage(restored.volume_id(), rs).ok());

  // The plugin is killed and comes back: the export is served again in the same directory, the
  // target's mount never moved, and a front end reaching it through the target reads the bytes.
  KillAndRestartDriver();
  ASSERT_TRUE(IsSocket(target + "/" + kVhostSocketName));
  EXPECT_EQ(ExportDirs(), dirs);
  ASSERT_TRUE(PublishCtx(vol, staging, target).ok());  // kubelet's repeat after the restart
  EXPECT_EQ(FindUnder(scratch_->path()).mounts, 1);
  {
    VhostClient vc;
    Attach(vc, target);
    std::string r(data.size(), '\0');
    ASSERT_EQ(Io(vc, vh::kBlkTIn, 3 * kMiB, &r), vh::kBlkSOk);
    EXPECT_TRUE(r == data) << "bytes read through the restored export differ";
  }

  // Online growth: controller, then node; the description and a new front end see the size.
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
  EXPECT_EQ(Info(target).value("size_bytes", uint64_t{0}), static_cast<uint64_t>(32 * kMiB));
  {
    VhostClient vc;
    Attach(vc, target);
    EXPECT_EQ(CapacityBytes(vc), static_cast<uint64_t>(32 * kMiB));
    std::string tail = Pattern(4096, 9);
    EXPECT_EQ(Io(vc, vh::kBlkTOut, 32 * kMiB - 4096, &tail), vh::kBlkSOk);
  }

  ASSERT_TRUE(Unpublish(vol.volume_id(), target).ok());
  EXPECT_FALSE(Exists(target));
  EXPECT_TRUE(ExportDirs().empty()) << "the export directory must go with the publish";
  EXPECT_EQ(FindUnder(scratch_->path()).mounts, 0);
  ASSERT_TRUE(Unpublish(vol.volume_id(), target).ok());  // idempotent
  ASSERT_TRUE(Unstage(vol.volume_id(), staging).ok());
  v1::DeleteSnapshotRequest ds;
  ds.set_snapshot_id(snap.snapshot_id());
  EXPECT_TRUE(c().DeleteSnapshot(ds).ok());
}

TEST_F(VhostAttachTest, AVolumeFilledThroughAKernelAttachmentIsServedAfterAClone) {
  // What a CDI import does for a vhost-user volume: the importer fills a kernel-attached
  // Filesystem volume (disk.img), and the vhost-user volume is created from it (PVC dataSource).
  auto imported = MustCreate(CreateReq("pvc-imported", 8 * kMiB, false));
  const std::string is = KubeletStaging(imported.volume_id()), it = KubeletFsTarget("importer", "pv-imp");
  ASSERT_TRUE(Stage(imported.volume_id(), is, false).ok());
  ASSERT_TRUE(Publish(imported.volume_id(), is, it, false).ok());
  const std::string image = Pattern(kMiB, 21);
  {
    int fd = ::open(DataPath(it, false).c_str(), O_WRONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::pwrite(fd, image.data(), image.size(), 2 * kMiB), static_cast<ssize_t>(image.size()));
    ASSERT_EQ(::fsync(fd), 0);
    ::close(fd);
  }
  ASSERT_TRUE(Unpublish(imported.volume_id(), it).ok());
  ASSERT_TRUE(Unstage(imported.volume_id(), is).ok());

  auto req = VhostReq("pvc-vm-disk", 8 * kMiB, "1");
  req.mutable_volume_content_source()->mutable_volume()->set_volume_id(imported.volume_id());
  auto vol = MustCreate(req);
  const std::string staging = KubeletStaging(vol.volume_id()), target = KubeletFsTarget("launcher", "pv-vm");
  ASSERT_TRUE(StageCtx(vol, staging).ok());
  ASSERT_TRUE(PublishCtx(vol, staging, target).ok());
  {
    VhostClient vc;
    Attach(vc, target);
    std::string r(image.size(), '\0');
    ASSERT_EQ(Io(vc, vh::kBlkTIn, 2 * kMiB, &r), vh::kBlkSOk);
    EXPECT_TRUE(r == image) << "the clone does not serve the imported bytes";
  }
  ASSERT_TRUE(Unpublish(vol.volume_id(), target).ok());
  ASSERT_TRUE(Unstage(vol.volume_id(), staging).ok());
}

TEST_F(VhostAttachTest, ReadOnlyPublishRefusesWritesAndBothTargetsServe) {
  auto vol = MustCreate(VhostReq("pvc-vhost-ro", 8 * kMiB, "1"));
  const std::string staging = KubeletStaging(vol.volume_id());
  const std::string rw = KubeletFsTarget("pod-rw", "pv-ro"), ro = KubeletFsTarget("pod-ro", "pv-ro");
  ASSERT_TRUE(StageCtx(vol, staging).ok());
  ASSERT_TRUE(PublishCtx(vol, staging, rw).ok());
  ASSERT_TRUE(PublishCtx(vol, staging, ro, /*readonly=*/true).ok());
  EXPECT_EQ(PublishCtx(vol, staging, ro, /*readonly=*/false).code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(ExportDirs().size(), 2u) << "each publish has its own export";
  EXPECT_EQ(Info(ro).value("read_only", false), true);
  EXPECT_EQ(Info(rw).value("read_only", true), false);

  const std::string data = Pattern(8192, 3);
  {
    VhostClient writer;
    Attach(writer, rw);
    std::string w = data;
    ASSERT_EQ(Io(writer, vh::kBlkTOut, 0, &w), vh::kBlkSOk);
    ASSERT_EQ(Io(writer, vh::kBlkTFlush, 0, nullptr), vh::kBlkSOk);
  }
  {
    VhostClient reader;
    Attach(reader, ro);
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
  EXPECT_TRUE(ExportDirs().empty());
  ASSERT_TRUE(Unstage(vol.volume_id(), staging).ok());
}

TEST_F(VhostAttachTest, ARestartAfterThePodIsGoneBringsNoPodDirectoryBack) {
  auto vol = MustCreate(VhostReq("pvc-vhost-gone", 8 * kMiB, "1"));
  const std::string staging = KubeletStaging(vol.volume_id());
  const std::string target = KubeletFsTarget("pod-gone", "pv-gone");
  const std::string pod_dir = target.substr(0, target.find("/volumes/"));
  ASSERT_TRUE(StageCtx(vol, staging).ok());
  ASSERT_TRUE(PublishCtx(vol, staging, target).ok());
  // The node reboots while the plugin is down and kubelet cleans the pod away meanwhile.
  ASSERT_EQ(driver_->Stop(), 0);
  ASSERT_EQ(::umount2(target.c_str(), 0), 0);
  ASSERT_TRUE(fs::RemoveAll(pod_dir).ok());
  StartDriver();
  EXPECT_FALSE(Exists(pod_dir)) << "restoring the export re-created a deleted pod's directory";
  EXPECT_NE(driver_->Log().find("cannot restore the vhost-user export"), std::string::npos);
  // kubelet's NodeUnpublish for the vanished pod then cleans up what the record says.
  ASSERT_TRUE(Unpublish(vol.volume_id(), target).ok());
  EXPECT_TRUE(ExportDirs().empty());
  EXPECT_FALSE(Exists(pod_dir));
  ASSERT_TRUE(Unstage(vol.volume_id(), staging).ok());
}

TEST_F(VhostAttachTest, EachPublishedExportHasIoSeriesThatMoveWithGuestIoAndEndWithIt) {
  const int port = MetricsPortFromLog(driver_->Log());
  ASSERT_GT(port, 0) << driver_->Log();
  auto vol = MustCreate(VhostReq("pvc-vhost-metrics", 16 * kMiB, "1"));
  const std::string staging = KubeletStaging(vol.volume_id());
  const std::string target = KubeletFsTarget("pod-vm", "pv-vm");
  ASSERT_TRUE(StageCtx(vol, staging).ok());
  ASSERT_TRUE(PublishCtx(vol, staging, target).ok());
  auto dirs = ExportDirs();
  ASSERT_EQ(dirs.size(), 1u);
  const std::string labels = "volume=\"" + vol.volume_id() + "\",socket=\"" + VhostSocketPath(dirs[0]) + "\"";
  auto value = [&](const std::string& text, const std::string& name, const std::string& op) {
    return SeriesValue(text, name + "{" + labels + ",op=\"" + op + "\"}").value_or(-1);
  };
  std::string before = Scrape(port);
  EXPECT_EQ(value(before, "vdisk_vhost_requests_total", "write"), 0) << before;
  {
    VhostClient vc;
    Attach(vc, target);
    std::string w = Pattern(64 * 1024, 9);
    for (int i = 0; i < 3; ++i) ASSERT_EQ(Io(vc, vh::kBlkTOut, i * kMiB, &w), vh::kBlkSOk);
    std::string r(128 * 1024, '\0');
    ASSERT_EQ(Io(vc, vh::kBlkTIn, 0, &r), vh::kBlkSOk);
    ASSERT_EQ(Io(vc, vh::kBlkTFlush, 0, nullptr), vh::kBlkSOk);
    ASSERT_EQ(Io(vc, vh::kBlkTIn, 32 * kMiB, &r), vh::kBlkSIoErr);  // past the end
  }
  std::string after = Scrape(port);
  EXPECT_EQ(value(after, "vdisk_vhost_requests_total", "write"), 3) << after;
  EXPECT_EQ(value(after, "vdisk_vhost_bytes_total", "write"), 3 * 64 * 1024);
  EXPECT_EQ(value(after, "vdisk_vhost_requests_total", "read"), 2);
  EXPECT_EQ(value(after, "vdisk_vhost_bytes_total", "read"), 128 * 1024);
  EXPECT_EQ(value(after, "vdisk_vhost_errors_total", "read"), 1);
  EXPECT_EQ(value(after, "vdisk_vhost_requests_total", "flush"), 1);
  EXPECT_EQ(value(after, "vdisk_vhost_request_duration_seconds_count", "write"), 3);
  EXPECT_GT(value(after, "vdisk_vhost_request_duration_seconds_sum", "write"), 0);
  // Unpublished: the export stops and its series go with it.
  ASSERT_TRUE(Unpublish(vol.volume_id(), target).ok());
  EXPECT_EQ(Scrape(port).find(vol.volume_id()), std::string::npos);
}

}  // namespace
}  // namespace vdisk::csi::testing
