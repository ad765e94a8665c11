#include "csi/ids.h"

#include <gtest/gtest.h>

namespace vdisk::csi {
namespace {

TEST(Ids, VolumeRoundTrip) {
  auto id = EncodeVolumeId("local", "pvc-123.abc_def-0a1b2c3d4e5f");
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(*id, "v1.vol.local.pvc-123.abc_def-0a1b2c3d4e5f");
  auto back = DecodeVolumeId(*id);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->kind, ObjectKind::kVolume);
  EXPECT_EQ(back->pool, "local");
  EXPECT_EQ(back->local_id, "pvc-123.abc_def-0a1b2c3d4e5f");
}

TEST(Ids, SnapshotRoundTrip) {
  auto id = EncodeSnapshotId("fast_pool-2", "snap-1");
  ASSERT_TRUE(id.ok());
  auto back = DecodeSnapshotId(*id);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->kind, ObjectKind::kSnapshot);
  EXPECT_EQ(back->pool, "fast_pool-2");
  EXPECT_EQ(back->local_id, "snap-1");
}

TEST(Ids, EmptyIsInvalidArgument) {
  EXPECT_EQ(DecodeVolumeId("").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(DecodeSnapshotId("").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(Ids, HandMadeIdsAreNotFound) {
  for (const char* bad : {"fake-vol-id", "fake-vol-id-3f2a", "non-existing-snapshot-id", "v1", "v1.vol",
                          "v1.vol.local", "v1.vol.local.", "v2.vol.local.x", "v1.disk.local.x",
                          "v1.vol.lo/cal.x", "v1.vol.local.../etc", "v1.vol.local..hidden",
                          "v1.vol..x", "v1.vol.local.a/b", "v1.vol.local.a b", "\x01\x02"}) {
    EXPECT_EQ(DecodeVolumeId(bad).status().code(), absl::StatusCode::kNotFound) << bad;
  }
  EXPECT_EQ(DecodeVolumeId(std::string(200, 'a')).status().code(), absl::StatusCode::kNotFound);
}

TEST(Ids, KindsAreNotInterchangeable) {
  auto snap = EncodeSnapshotId("local", "s1");
  auto vol = EncodeVolumeId("local", "v1");
  EXPECT_EQ(DecodeVolumeId(*snap).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(DecodeSnapshotId(*vol).status().code(), absl::StatusCode::kNotFound);
}

TEST(Ids, EncodeRejectsWhatCannotRoundTrip) {
  EXPECT_EQ(EncodeVolumeId("lo.cal", "x").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(EncodeVolumeId("local", "").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(EncodeVolumeId("local", "..").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(EncodeVolumeId("local", "a/b").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(EncodeVolumeId("local", std::string(120, 'x')).status().code(), absl::StatusCode::kOutOfRange);
  // The largest id still fits the CSI 128-byte limit and decodes.
  auto id = EncodeVolumeId("local", std::string(128 - 13, 'x'));
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(id->size(), 128u);
  EXPECT_TRUE(DecodeVolumeId(*id).ok());
}

}  // namespace
}  // namespace vdisk::csi
