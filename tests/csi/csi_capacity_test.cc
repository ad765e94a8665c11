// Capacity as the external-provisioner and the scheduler see it, on a local pool of known size
// (a small ext4 file system loop-mounted for the test): a size beyond what the file system can
// hold is OUT_OF_RANGE; the pool promises at most its over-provisioning percentage of its
// capacity (RESOURCE_EXHAUSTED past it, for CreateVolume and ControllerExpandVolume, nothing left
// behind); GetCapacity reports what can still be promised; `overprovisioning=off` lifts the limit.
#include <sys/statvfs.h>

#include <cstdlib>

#include "tests/csi/csi_fixture.h"

namespace vdisk::csi::testing {
namespace {

constexpr int64_t kTiB = 1ll << 40;

class CapacityTest : public CsiDriverTest {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root: mounts a small ext4 file system for the pool";
    // The pool on a file system of its own, so its capacity is known and nothing else changes it.
    scratch_fs_ = std::make_unique<ScratchDir>("vdisk-csi-capacity");
    fs_ = *scratch_fs_ / "fs";
    const std::string image = *scratch_fs_ / "ext4.img";
    const std::string cmd = "truncate -s 256M " + image + " && mkfs.ext4 -q -F " + image + " && mkdir -p " + fs_ +
                            " && mount -o loop " + image + " " + fs_;
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
    CsiDriverTest::SetUp();
  }
  void TearDown() override {
    CsiDriverTest::TearDown();
    scratch_fs_.reset();  // unmounts and detaches the loop device
  }
  std::vector<std::string> DriverArgs() override {
    auto args = CsiDriverTest::DriverArgs();
    for (auto& a : args)
      if (a.starts_with("local:")) a = "name=local,kind=local,root=" + fs_ + "/pool" + pool_options_;
    return args;
  }
  uint64_t FsTotalBytes() const {
    struct statvfs sv;
    EXPECT_EQ(::statvfs(fs_.c_str(), &sv), 0);
    return static_cast<uint64_t>(sv.f_blocks) * sv.f_frsize;
  }
  int64_t Available() {
    auto cap = c().GetCapacity({});
    EXPECT_TRUE(cap.ok()) << cap.status();
    return cap.ok() ? cap->available_capacity() : -1;
  }
  size_t VolumeCount() {
    auto l = c().ListVolumes({});
    EXPECT_TRUE(l.ok()) << l.status();
    return l.ok() ? l->entries_size() : 0;
  }

  std::unique_ptr<ScratchDir> scratch_fs_;
  std::string fs_, pool_options_;
};

TEST_F(CapacityTest, BeyondWhatTheFileSystemHoldsIsOutOfRange) {
  // ext4 holds files up to 16 TiB (4 KiB blocks; 4 TiB with the 1 KiB blocks mkfs picks for a
  // file system this small); nothing is made.
  EXPECT_EQ(Code(c().CreateVolume(CreateReq("pvc-32t", 32 * kTiB, true))), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(Code(c().CreateVolume(CreateReq("pvc-4e", 1ll << 62, false))), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(VolumeCount(), 0u);
  auto vol = MustCreate(CreateReq("pvc-small", 8 * kMiB, true));
  v1::ControllerExpandVolumeRequest grow;
  grow.set_volume_id(vol.volume_id());
  grow.mutable_capacity_range()->set_required_bytes(32 * kTiB);
  EXPECT_EQ(Code(c().ControllerExpandVolume(grow)), absl::StatusCode::kOutOfRange);
}

TEST_F(CapacityTest, ThePoolPromisesAtMostItsOverprovisioningLimit) {
  const uint64_t limit = FsTotalBytes() * 2;  // the default: 200% of the capacity
  EXPECT_EQ(Available(), static_cast<int64_t>(limit));
  auto cap = c().GetCapacity({});
  ASSERT_TRUE(cap.ok());
  EXPECT_EQ(cap->maximum_volume_size().value(), static_cast<int64_t>(limit)) << "the largest volume it can make now";

  // More than can be promised: refused, nothing left behind, the same name usable afterwards.
  const int64_t too_big = static_cast<int64_t>(limit) + 64 * kMiB;
  EXPECT_EQ(Code(c().CreateVolume(CreateReq("pvc-over", too_big, true))), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(VolumeCount(), 0u);

  // Thin volumes up to the limit are fine (the file system is far smaller than what they add up to).
  auto a = MustCreate(CreateReq("pvc-a", 192 * kMiB, true));
  auto b = MustCreate(CreateReq("pvc-b", 192 * kMiB, false));
  const uint64_t left = limit - 384 * kMiB;
  EXPECT_EQ(Available(), static_cast<int64_t>(left));
  EXPECT_TRUE(c().CreateVolume(CreateReq("pvc-a", 192 * kMiB, true)).ok()) << "an idempotent repeat promises nothing new";
  auto last = CreateReq("pvc-last", static_cast<int64_t>(left / kMiB * kMiB) + kMiB, true);
  EXPECT_EQ(Code(c().CreateVolume(last)), absl::StatusCode::kResourceExhausted);

  // Growing a volume promises the difference.
  v1::ControllerExpandVolumeRequest grow;
  grow.set_volume_id(a.volume_id());
  grow.mutable_capacity_range()->set_required_bytes(192 * kMiB + static_cast<int64_t>(left) + kMiB);
  auto refused = c().ControllerExpandVolume(grow);
  EXPECT_EQ(Code(refused), absl::StatusCode::kResourceExhausted) << refused.status();
  grow.mutable_capacity_range()->set_required_bytes(192 * kMiB + static_cast<int64_t>(left / kMiB * kMiB));
  auto grown = c().ControllerExpandVolume(grow);
  ASSERT_TRUE(grown.ok()) << grown.status();
  EXPECT_LE(Available(), static_cast<int64_t>(kMiB));
  EXPECT_EQ(Code(c().CreateVolume(CreateReq("pvc-none-left", 2 * kMiB, true))), absl::StatusCode::kResourceExhausted);

  // Deleting gives the promise back.
  v1::DeleteVolumeRequest del;
  del.set_volume_id(b.volume_id());
  ASSERT_TRUE(c().DeleteVolume(del).ok());
  EXPECT_GE(Available(), 192 * kMiB);
  EXPECT_TRUE(c().CreateVolume(CreateReq("pvc-c", 128 * kMiB, true)).ok());
}

TEST_F(CapacityTest, OverprovisioningIsConfigurablePerPool) {
  pool_options_ = ",overprovisioning=off";
  RestartDriver();
  auto huge = c().CreateVolume(CreateReq("pvc-thin-1t", kTiB, true));
  ASSERT_TRUE(huge.ok()) << huge.status();
  // Without a limit GetCapacity reports what is free, as before, and the largest volume is the
  // largest file the file system holds (thin volumes may exceed the free space).
  struct statvfs sv;
  ASSERT_EQ(::statvfs(fs_.c_str(), &sv), 0);
  EXPECT_LE(Available(), static_cast<int64_t>(sv.f_blocks * sv.f_frsize));
  auto unlimited = c().GetCapacity({});
  ASSERT_TRUE(unlimited.ok());
  EXPECT_GE(unlimited->maximum_volume_size().value(), kTiB);
  EXPECT_GT(unlimited->maximum_volume_size().value(), unlimited->available_capacity());

  pool_options_ = ",overprovisioning=50%";
  RestartDriver();
  EXPECT_EQ(Available(), 0) << "a 1 TiB volume already exceeds half of the file system";
  EXPECT_EQ(Code(c().CreateVolume(CreateReq("pvc-more", 8 * kMiB, true))), absl::StatusCode::kResourceExhausted);
  v1::DeleteVolumeRequest del;
  del.set_volume_id(huge->volume().volume_id());
  ASSERT_TRUE(c().DeleteVolume(del).ok());
  EXPECT_EQ(Available(), static_cast<int64_t>(FsTotalBytes() / 2));

  // A bad value stops the driver at start-up with a clear message.
  pool_options_ = ",overprovisioning=lots";
  ASSERT_EQ(driver_->Stop(), 0);
  DriverProcess bad(DriverArgs(), *scratch_ / "bad.log", endpoint_);
  std::string error;
  EXPECT_FALSE(bad.Start(&error));
  EXPECT_NE(error.find("overprovisioning"), std::string::npos) << error;
  pool_options_.clear();
  StartDriver();
}

}  // namespace
}  // namespace vdisk::csi::testing
