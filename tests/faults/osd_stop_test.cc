// Faults from below, part 2: the Ceph OSD stops under librbd. A write through the RBD Device
// fails after the pool's op_timeout (bounded wait, an error to the caller) instead of hanging;
// vdisk-csi serving that pool next to a local pool keeps answering: Probe says the RBD pool is
// unhealthy (and why) within seconds, a CreateVolume on the RBD pool fails with an error in
// bounded time, and the local pool keeps working meanwhile. With the OSD back, the RBD pool
// works again and the data written before the outage is intact.
//
// Stopping the OSD would stall every other test using the shared `ceph` fixture, so this test
// starts a cluster of its own (tests/env/ceph.sh) and removes it afterwards.
#include <sys/wait.h>

#include <chrono>
#include <cstdlib>
#include <thread>

#include "blockdev/aligned_buffer.h"
#include "blockdev/sync_io.h"
#include "tests/csi/csi_fixture.h"
#include "tests/rbd/ceph_env.h"

namespace vdisk::csi::testing {
namespace {

using Clock = std::chrono::steady_clock;
double Since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::string CephScript() {
  const char* src = std::getenv("VDISK_SOURCE_DIR");
  return std::string(src ? src : ".") + "/tests/env/ceph.sh";
}

int Ceph(const std::string& cmd, const std::string& dir) {
  int rc = std::system((CephScript() + " " + cmd + " " + dir + " > " + dir + ".log 2>&1").c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

class OsdStopTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const char* bin = std::getenv("VDISK_BINARY_DIR");
    dir_ = std::string(bin ? bin : "/tmp") + "/test-env/faults-ceph-" + std::to_string(::getpid());
    up_ = Ceph("up", dir_) == 0;
    ::setenv("VDISK_CEPH_DIR", dir_.c_str(), 1);
  }
  static void TearDownTestSuite() { Ceph("down", dir_); }

  void SetUp() override {
    ASSERT_TRUE(up_) << "could not start a Ceph cluster of our own: see " << dir_ << ".log";
    auto env = vdisk::testing::LoadCephEnv();
    ASSERT_TRUE(env.ok()) << env.status();
    env_ = *env;
  }

  // The pool as vdisk-csi's --pool flag and as a PoolConfig: OSD operations give up after 5 s.
  blockdev::PoolConfig RbdConfig(const std::string& instance) {
    return vdisk::testing::RbdPoolConfig(env_, "ceph", {{"op_timeout", "5"}, {"instance", instance}});
  }
  std::string RbdFlag(const std::string& instance) {
    std::string flag = "name=ceph,kind=rbd";
    for (const auto& [k, v] : RbdConfig(instance).options) flag += "," + k + "=" + v;
    return flag;
  }

  static inline std::string dir_;
  static inline bool up_ = false;
  vdisk::testing::CephEnv env_;
};

TEST_F(OsdStopTest, AWriteFailsInBoundedTimeAndTheDriverKeepsAnswering) {
  const std::string instance = vdisk::testing::UniqueName("osd");
  auto pool = vdisk::testing::OpenPool(RbdConfig(instance));
  ASSERT_TRUE(pool.ok()) << pool.status();
  blockdev::VolumeRequest vreq;
  vreq.name = "before-outage";
  vreq.size_bytes = 16 * kMiB;
  auto vol = (*pool)->create_volume(vreq);
  ASSERT_TRUE(vol.ok()) << vol.status();
  blockdev::AlignedBuffer data(kMiB), back(kMiB);
  for (size_t i = 0; i < data.size(); ++i) data.data()[i] = static_cast<std::byte>(i * 7 + 3);
  {
    auto dev = (*pool)->open_volume(vol->id, false);
    ASSERT_TRUE(dev.ok()) << dev.status();
    ASSERT_TRUE(blockdev::WriteAt(**dev, 0, {data.data(), data.size()}).ok());
  }

  // The driver: the RBD pool and a local one, health checked every second.
  ScratchDir scratch("faults-osd");
  ScratchDir sock("faults-osd-sock", "/tmp");
  const std::string endpoint = "unix://" + (sock / "csi.sock");
  DriverProcess driver({"--endpoint", endpoint, "--node-id", "n1", "--role", "controller", "--pool",
                        RbdFlag(instance), "--pool", "local:" + (scratch / "local"), "--state-dir",
                        scratch / "state", "--health-interval", "1", "-v"},
                       scratch / "driver.log", endpoint);
  std::string error;
  ASSERT_TRUE(driver.Start(&error)) << error;
  CsiClient& cl = driver.client();

  auto dev = (*pool)->open_volume(vol->id, false);
  ASSERT_TRUE(dev.ok()) << dev.status();
  ASSERT_EQ(Ceph("stop-osd", dir_), 0) << "see " << dir_ << ".log";

  // 1. A write through librbd: an error after about op_timeout, not a hang.
  auto t0 = Clock::now();
  Status w = blockdev::WriteAt(**dev, kMiB, {data.data(), data.size()});
  const double write_s = Since(t0);
  EXPECT_FALSE(w.ok()) << "a write with the OSD down succeeded";
  EXPECT_LT(write_s, 40) << "the write waited " << write_s << " s (op_timeout=5)";
  std::printf("osd stopped: write failed after %.1f s: %s\n", write_s, w.ToString().c_str());

  // 2. The driver answers: Probe says why it is not ready, the local pool keeps working while an
  //    RBD CreateVolume is stuck on the OSD, and that one ends with an error in bounded time.
  Status probe;
  for (t0 = Clock::now(); Since(t0) < 30; std::this_thread::sleep_for(std::chrono::milliseconds(200))) {
    probe = cl.Probe().status();
    if (!probe.ok()) break;
  }
  EXPECT_EQ(probe.code(), absl::StatusCode::kFailedPrecondition) << probe;
  EXPECT_NE(std::string(probe.message()).find("pool ceph is unhealthy"), std::string::npos) << probe;
  std::printf("osd stopped: Probe not ready after %.1f s: %s\n", Since(t0), probe.ToString().c_str());

  StatusOr<v1::CreateVolumeResponse> rbd_create = absl::UnknownError("not run");
  double rbd_create_s = 0;
  std::thread stuck([&] {
    auto r = CreateReq("pvc-during-outage", 16 * kMiB, true);
    (*r.mutable_parameters())["pool"] = "ceph";
    const auto t = Clock::now();
    rbd_create = cl.CreateVolume(r);
    rbd_create_s = Since(t);
  });
  std::this_thread::sleep_for(std::chrono::seconds(1));
  auto local = CreateReq("pvc-local", 8 * kMiB, false);
  (*local.mutable_parameters())["pool"] = "local";
  t0 = Clock::now();
  auto lr = cl.CreateVolume(local);
  EXPECT_TRUE(lr.ok()) << lr.status();
  EXPECT_LT(Since(t0), 5) << "the local pool waited on the RBD outage";
  auto probe_t = Clock::now();
  (void)cl.Probe();
  EXPECT_LT(Since(probe_t), 1) << "Probe must answer at once (livenessprobe's timeout is 1 s)";
  stuck.join();
  EXPECT_FALSE(rbd_create.ok()) << "CreateVolume on a pool without its OSD succeeded";
  EXPECT_LT(rbd_create_s, 120) << "CreateVolume waited " << rbd_create_s << " s";
  std::printf("osd stopped: RBD CreateVolume failed after %.1f s: %s\n", rbd_create_s,
              rbd_create.status().ToString().c_str());

  // 3. The OSD is back: everything works again, nothing written before the outage is lost.
  ASSERT_EQ(Ceph("start-osd", dir_), 0) << "see " << dir_ << ".log";
  for (t0 = Clock::now(); Since(t0) < 60; std::this_thread::sleep_for(std::chrono::milliseconds(500)))
    if (cl.Probe().ok()) break;
  EXPECT_TRUE(cl.Probe().ok());
  auto again = CreateReq("pvc-during-outage", 16 * kMiB, true);
  (*again.mutable_parameters())["pool"] = "ceph";
  StatusOr<v1::CreateVolumeResponse> retried = absl::UnknownError("not run");
  for (t0 = Clock::now(); Since(t0) < 60; std::this_thread::sleep_for(std::chrono::milliseconds(500))) {
    retried = cl.CreateVolume(again);
    if (retried.ok()) break;
  }
  EXPECT_TRUE(retried.ok()) << retried.status();
  dev->reset();
  auto reopened = (*pool)->open_volume(vol->id, false);
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  ASSERT_TRUE(blockdev::ReadAt(**reopened, 0, {back.data(), back.size()}).ok());
  EXPECT_EQ(std::memcmp(back.data(), data.data(), data.size()), 0) << "data written before the outage";
  EXPECT_TRUE(blockdev::WriteAt(**reopened, kMiB, {data.data(), data.size()}).ok());
  EXPECT_EQ(driver.Stop(), 0);
}

}  // namespace
}  // namespace vdisk::csi::testing
