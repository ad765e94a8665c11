// vdisk-csi's Prometheus endpoint and Probe, scraped and called the way Prometheus and the
// livenessprobe sidecar do while the driver does real work on a local pool: CSI calls counted by
// method and code with latency, pool capacity, host copies, and a pool whose file system goes
// away making the plugin not ready (and ready again when it is back).
#include <sys/mount.h>

#include <chrono>
#include <thread>

#include "tests/csi/csi_fixture.h"
#include "tests/csi/metrics_scrape.h"

namespace vdisk::csi::testing {
namespace {

class MetricsTest : public CsiDriverTest {
 protected:
  // The pool lives on its own tmpfs (own st_dev, no reflink: clones are host copies), bind-
  // mounted at the pool root so the test can take it away and give the same one back.
  std::vector<std::string> DriverArgs() override {
    if (!mounted_) {
      backing_ = *scratch_ / "pool-fs";
      pool_root_ = *scratch_ / "pool";
      EXPECT_TRUE(fs::MakeDirs(backing_).ok());
      EXPECT_TRUE(fs::MakeDirs(pool_root_).ok());
      EXPECT_EQ(::mount("vdisk-test", backing_.c_str(), "tmpfs", 0, "size=512m"), 0) << strerror(errno);
      EXPECT_EQ(::mount(backing_.c_str(), pool_root_.c_str(), nullptr, MS_BIND, nullptr), 0);
      mounted_ = true;
    }
    auto args = CsiDriverTest::DriverArgs();
    args.insert(args.end(), {"--metrics-address", "127.0.0.1:0", "--health-interval", "1"});
    return args;
  }

  int Port() {
    int port = MetricsPortFromLog(driver_->Log());
    EXPECT_GT(port, 0) << driver_->Log();
    return port;
  }

  double Value(const std::string& text, const std::string& series) {
    return SeriesValue(text, series).value_or(0);
  }

  // Polls Probe until its code is `want` (or 15 s pass); returns the last status.
  Status ProbeUntil(absl::StatusCode want) {
    Status last;
    for (int i = 0; i < 150; ++i) {
      last = c().Probe().status();
      if (last.code() == want) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return last;
  }

  std::string backing_, pool_root_;
  bool mounted_ = false;
};

TEST_F(MetricsTest, CsiCallsAreCountedByMethodAndCodeWithLatency) {
  const int port = Port();
  std::string before = Scrape(port);
  ASSERT_FALSE(before.empty());
  const std::string ok = R"(vdisk_csi_calls_total{method="CreateVolume",code="OK"})";
  const std::string bad = R"(vdisk_csi_calls_total{method="CreateVolume",code="INVALID_ARGUMENT"})";
  const double ok0 = Value(before, ok), bad0 = Value(before, bad);

  MustCreate(CreateReq("pvc-metrics-1", 8 * kMiB, true));
  MustCreate(CreateReq("pvc-metrics-2", 8 * kMiB, false));
  EXPECT_EQ(Code(c().CreateVolume(CreateReq("", 8 * kMiB, true))), absl::StatusCode::kInvalidArgument);

  std::string after = Scrape(port);
  EXPECT_EQ(Value(after, ok), ok0 + 2) << after;
  EXPECT_EQ(Value(after, bad), bad0 + 1);
  EXPECT_EQ(Value(after, R"(vdisk_csi_call_duration_seconds_count{method="CreateVolume",code="OK"})"),
            ok0 + 2);
  EXPECT_GT(Value(after, R"(vdisk_csi_call_duration_seconds_sum{method="CreateVolume",code="OK"})"), 0);
  EXPECT_EQ(Value(after, R"(vdisk_csi_call_duration_seconds_bucket{method="CreateVolume",code="OK",le="+Inf"})"),
            ok0 + 2);
  EXPECT_EQ(Value(after, R"(vdisk_csi_calls_in_flight{method="CreateVolume"})"), 0);
  // Capacity of the 512 MiB tmpfs, and the pool is up.
  EXPECT_EQ(Value(after, R"(vdisk_pool_capacity_bytes{pool="local"})"), 512.0 * kMiB) << after;
  EXPECT_GT(Value(after, R"(vdisk_pool_available_bytes{pool="local"})"), 0);
  EXPECT_EQ(Value(after, R"(vdisk_pool_up{pool="local",kind="local"})"), 1);
  // The exposition format's header lines are there.
  EXPECT_NE(after.find("# TYPE vdisk_csi_call_duration_seconds histogram\n"), std::string::npos);
}

TEST_F(MetricsTest, AHostCopyIsCountedAndItsProgressSeriesEnds) {
  const int port = Port();
  auto src = MustCreate(CreateReq("pvc-copy-src", 32 * kMiB, true));
  auto req = CreateReq("pvc-copy-dst", 32 * kMiB, true);
  req.mutable_volume_content_source()->mutable_volume()->set_volume_id(src.volume_id());
  MustCreate(req);
  std::string text = Scrape(port);
  EXPECT_EQ(Value(text, R"(vdisk_operations_total{kind="host_copy",pool="local",result="ok"})"), 1) << text;
  EXPECT_EQ(Value(text, R"(vdisk_operation_duration_seconds_count{kind="host_copy",pool="local"})"), 1);
  EXPECT_EQ(Value(text, R"(vdisk_operations_in_flight{kind="host_copy",pool="local"})"), 0);
  EXPECT_EQ(text.find("vdisk_operation_progress_ratio{"), std::string::npos) << "no copy runs now";
}

TEST_F(MetricsTest, ProbeFailsWhileThePoolsFileSystemIsGoneAndRecovers) {
  const int port = Port();
  ASSERT_TRUE(c().Probe().ok());
  // The file system under the pool goes away (an unmount under the driver).
  ASSERT_EQ(::umount2(pool_root_.c_str(), MNT_DETACH), 0) << strerror(errno);
  Status s = ProbeUntil(absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_NE(std::string(s.message()).find("pool local is unhealthy"), std::string::npos) << s;
  EXPECT_NE(driver_->Log().find("pool local is unhealthy"), std::string::npos) << "the reason is logged";
  EXPECT_EQ(Value(Scrape(port), R"(vdisk_pool_up{pool="local",kind="local"})"), 0);
  // Back: the same file system at the same place.
  ASSERT_EQ(::mount(backing_.c_str(), pool_root_.c_str(), nullptr, MS_BIND, nullptr), 0);
  s = ProbeUntil(absl::StatusCode::kOk);
  EXPECT_TRUE(s.ok()) << s;
  EXPECT_NE(driver_->Log().find("pool local is healthy again"), std::string::npos);
  EXPECT_EQ(Value(Scrape(port), R"(vdisk_pool_up{pool="local",kind="local"})"), 1);
}

}  // namespace
}  // namespace vdisk::csi::testing
