// A real QEMU guest (TCG, the `guest` fixture) whose disk is a volume the real vdisk-csi
// published with `attach: vhost-user` at a kubelet-shaped Filesystem target path (>= 140 bytes).
// As in a cluster, the VMM does not use that path: the target directory is bind-mounted into the
// "pod" (what the container runtime does with a volumeMount) and QEMU connects to
// <pod mount>/vhost-user-blk.sock. The host then reads the guest's bytes back through CSI alone
// (snapshot, restore into a kernel-attached Filesystem volume, publish, read disk.img), so they
// went guest -> export -> pool -> snapshot with nothing else in between.
//
// The second test restarts the node plugin while the guest writes and verifies in a loop: once
// gracefully (SIGTERM, a DaemonSet rolling update: the export drains and closes), then with
// SIGKILL (a crash) until a restarted export found requests in flight. QEMU reconnects (chardev
// reconnect=1), the restarted export resubmits what was in flight (INFLIGHT_SHMFD), and the guest
// goes on with no lost and no replayed write.
#include <fcntl.h>
#include <sys/mount.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "csi/vhost_publish.h"
#include "tests/csi/csi_fixture.h"
#include "tests/vhost/pattern.h"
#include "tests/vhost/qemu_guest.h"

namespace vdisk::csi::testing {
namespace {

constexpr int64_t M = 1 << 20;

// The published target directory as a container sees it: bind-mounted at a short path.
class PodView {
 public:
  explicit PodView(const std::string& target) {
    char tmpl[] = "/tmp/vdisk-pod-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) return;
    base_ = tmpl;
    dir_ = base_ + "/disk0";
    if (::mkdir(dir_.c_str(), 0755) != 0 || ::mount(target.c_str(), dir_.c_str(), nullptr, MS_BIND, nullptr) != 0)
      dir_.clear();
  }
  ~PodView() {
    Leave();
    if (!base_.empty()) std::filesystem::remove_all(base_);
  }
  // The pod is gone: the container runtime's mount with it (before kubelet's NodeUnpublish).
  void Leave() {
    if (!dir_.empty()) ::umount2(dir_.c_str(), MNT_DETACH);
  }
  bool ok() const { return !dir_.empty(); }
  std::string socket() const { return dir_ + "/" + kVhostSocketName; }

 private:
  std::string base_, dir_;
};

class CsiVhostQemuTest : public CsiDriverTest {
 protected:
  void SetUp() override {
    CsiDriverTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    ASSERT_TRUE(std::filesystem::exists(vdisk::testing::GuestDir() + "/vmlinuz"))
        << "guest not built: the `guest` fixture (tests/env/guest.sh build) must run first";
  }

  struct Published {
    v1::Volume vol;
    std::string staging, target;
  };
  Published PublishVhost(const std::string& name, int64_t size, const std::string& queues) {
    Published p;
    auto req = CreateReq(name, size, /*block=*/false);
    (*req.mutable_parameters())["attach"] = "vhost-user";
    (*req.mutable_parameters())["vhostQueues"] = queues;
    p.vol = MustCreate(req);
    p.staging = KubeletStaging(p.vol.volume_id());
    p.target = KubeletFsTarget("virt-launcher-" + name, name);
    EXPECT_GE(p.target.size(), 140u);
    v1::NodeStageVolumeRequest stage;
    stage.set_volume_id(p.vol.volume_id());
    stage.set_staging_target_path(p.staging);
    *stage.mutable_volume_capability() = Cap(false);
    *stage.mutable_volume_context() = p.vol.volume_context();
    EXPECT_TRUE(c().NodeStageVolume(stage).ok());
    v1::NodePublishVolumeRequest pub;
    pub.set_volume_id(p.vol.volume_id());
    pub.set_staging_target_path(p.staging);
    pub.set_target_path(p.target);
    *pub.mutable_volume_capability() = Cap(false);
    *pub.mutable_volume_context() = p.vol.volume_context();
    auto r = c().NodePublishVolume(pub);
    EXPECT_TRUE(r.ok()) << r.status();
    return p;
  }

  // The volume's bytes [offset, offset + len), read through a CSI snapshot restored into a
  // kernel-attached Filesystem volume.
  std::string ReadThroughSnapshot(const std::string& volume_id, int64_t size, uint64_t offset, size_t len,
                                  const std::string& tag) {
    auto snap = MustSnapshot("snap-" + tag, volume_id);
    auto rreq = CreateReq("pvc-copy-" + tag, size, /*block=*/false);
    rreq.mutable_volume_content_source()->mutable_snapshot()->set_snapshot_id(snap.snapshot_id());
    auto copy = MustCreate(rreq);
    const std::string cs = KubeletStaging(copy.volume_id()), ct = KubeletFsTarget("reader-" + tag, "copy-" + tag);
    EXPECT_TRUE(Stage(copy.volume_id(), cs, false).ok());
    EXPECT_TRUE(Publish(copy.volume_id(), cs, ct, false).ok());
    std::string got(len, '\0');
    int fd = ::open(DataPath(ct, false).c_str(), O_RDONLY | O_CLOEXEC);
    EXPECT_GE(fd, 0);
    EXPECT_EQ(::pread(fd, got.data(), got.size(), static_cast<off_t>(offset)), static_cast<ssize_t>(got.size()));
    ::close(fd);
    EXPECT_TRUE(Unpublish(copy.volume_id(), ct).ok());
    EXPECT_TRUE(Unstage(copy.volume_id(), cs).ok());
    return got;
  }

  void UnpublishAll(const Published& p) {
    ASSERT_TRUE(Unpublish(p.vol.volume_id(), p.target).ok());
    EXPECT_FALSE(Exists(p.target));
    ASSERT_TRUE(Unstage(p.vol.volume_id(), p.staging).ok());
  }

  // A guest running tests/vhost/guest/<script>, its disk the socket in the pod's mount.
  vdisk::testing::QemuGuest::Options Guest(const std::string& script, const PodView& pod) {
    vdisk::testing::QemuGuest::Options o;
    o.script = vdisk::testing::SourceDir() + "/tests/vhost/guest/" + script;
    o.socket = pod.socket();
    o.work_dir = scratch_->path();
    return o;
  }

  // Lines of the driver log (all its runs) containing `needle`.
  int DriverLogCount(const std::string& needle) {
    std::ifstream in(*scratch_ / "driver.log");
    std::string line;
    int n = 0;
    while (std::getline(in, line)) n += line.find(needle) != std::string::npos;
    return n;
  }
};

TEST_F(CsiVhostQemuTest, GuestWritesThroughThePublishedDirectory) {
  Published p = PublishVhost("pvc-vm-root", 32 * M, "1");
  PodView pod(p.target);
  ASSERT_TRUE(pod.ok());
  {
    vdisk::testing::QemuGuest g;
    ASSERT_EQ(g.Start(Guest("csi_attach.sh", pod)), "");
    EXPECT_EQ(g.Wait(240), 0) << g.output();
    EXPECT_EQ(g.Value("size"), std::to_string(32 * M)) << g.output();
    EXPECT_EQ(g.Value("write"), "ok") << g.output();
    EXPECT_EQ(g.Value("check"), "ok") << g.output();
    EXPECT_FALSE(g.Value("serial").empty()) << g.output();
  }
  EXPECT_TRUE(ReadThroughSnapshot(p.vol.volume_id(), 32 * M, 2 * M, 4 * M, "root") ==
              vdisk::testing::Pattern(7, 2 * M, 4 * M))
      << "the guest's bytes did not reach the volume";
  pod.Leave();
  UnpublishAll(p);
}

TEST_F(CsiVhostQemuTest, GuestKeepsWritingAcrossANodePluginKill) {
  Published p = PublishVhost("pvc-vm-data", 16 * M, "2");
  PodView pod(p.target);
  ASSERT_TRUE(pod.ok());
  vdisk::testing::QemuGuest g;
  vdisk::testing::QemuGuest::Options o = Guest("restart_writes.sh", pod);
  o.cpus = 2;
  o.queues = 2;
  o.reconnect = 1;
  ASSERT_EQ(g.Start(o), "");
  ASSERT_TRUE(g.WaitFor("VDISK-WRITING", 240)) << g.output();

  // QEMU reconnects within about a second (reconnect=1); let the queues start again.
  auto wait_reconnected = [&](int connections) {
    for (int i = 0; i < 50 && DriverLogCount("front end connected") < connections; i++)
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    EXPECT_GE(DriverLogCount("front end connected"), connections) << "QEMU did not reconnect";
  };
  // A rolling update first: SIGTERM, the export drains what is in flight and closes.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  RestartDriver();
  wait_reconnected(2);
  // Then kill the plugin mid-I/O until a restarted export had requests to finish (each kill
  // lands while something is in flight only most of the time: the TCG guest also computes).
  const std::string resumed = "request(s) in flight, submitting them again";
  int kills = 0;
  for (; kills < 6 && DriverLogCount(resumed) == 0; kills++) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200 + 150 * kills));
    KillAndRestartDriver();
    wait_reconnected(kills + 3);
  }
  ASSERT_EQ(g.Wait(240), 0) << g.output();
  for (int r = 0; r < 4; r++) {
    EXPECT_EQ(g.Value("w" + std::to_string(r)), "ok") << g.output();
    EXPECT_GE(std::stoi("0" + g.Value("rounds" + std::to_string(r))), 3) << g.output();
  }
  EXPECT_EQ(g.Value("rw7").substr(0, 2), "ok") << g.output();
  EXPECT_EQ(g.Value("rw8").substr(0, 2), "ok") << g.output();
  EXPECT_EQ(g.Value("flush"), "ok") << g.output();
  EXPECT_GT(DriverLogCount(resumed), 0)
      << "no restarted export found requests in flight after " << kills << " kill(s):\n" << driver_->Log();
  std::cerr << "node plugin killed " << kills << " time(s); exports resumed with requests in flight "
            << DriverLogCount(resumed) << " time(s)\n";

  // Each region holds its writer's last round: nothing lost, no older write replayed over it.
  const std::string after = ReadThroughSnapshot(p.vol.volume_id(), 16 * M, 0, 11 * M, "data");
  EXPECT_TRUE(after.substr(8 * M, M) == vdisk::testing::Pattern(7, 8 * M, M));
  EXPECT_TRUE(after.substr(10 * M, M) == vdisk::testing::Pattern(8, 10 * M, M));
  for (int r = 0; r < 4; r++) {
    const uint64_t seed = std::stoull("0" + g.Value("seed" + std::to_string(r)));
    const uint64_t off = uint64_t(r) * 2 * M;
    EXPECT_TRUE(after.substr(off, M) == vdisk::testing::Pattern(seed, off, M)) << "region " << r << " seed " << seed;
  }
  g.Kill();
  pod.Leave();
  UnpublishAll(p);
}

}  // namespace
}  // namespace vdisk::csi::testing
