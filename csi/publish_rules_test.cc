#include "csi/publish_rules.h"

#include <gtest/gtest.h>

namespace vdisk::csi {
namespace {

using blockdev::AccessMode;

VolumeRecord Published(AccessMode staged, std::optional<AccessMode> published) {
  VolumeRecord r;
  r.volume_id = "v1.local.pvc-1";
  r.access = staged;
  r.attachment = {"/dev/loop7", true};
  r.publishes.push_back({"/k/pods/a/vol", false, "", std::nullopt, "", published});
  return r;
}

TEST(PublishRules, SingleNodeSingleWriterAllowsOnePublishOnTheNode) {
  auto rec = Published(AccessMode::kSingleNodeSingleWriter, AccessMode::kSingleNodeSingleWriter);
  EXPECT_TRUE(CheckAnotherPublish(rec, "/k/pods/a/vol", AccessMode::kSingleNodeSingleWriter).ok())
      << "a repeat at the same target is judged by idempotency, not refused here";
  for (AccessMode m : {AccessMode::kSingleNodeSingleWriter, AccessMode::kSingleNodeMultiWriter,
                       AccessMode::kMultiNodeMultiWriter})
    EXPECT_EQ(CheckAnotherPublish(rec, "/k/pods/b/vol", m).code(), absl::StatusCode::kFailedPrecondition);
  // A SINGLE_NODE_SINGLE_WRITER publish next to any other publish is refused too.
  auto multi = Published(AccessMode::kSingleNodeMultiWriter, AccessMode::kSingleNodeMultiWriter);
  EXPECT_EQ(CheckAnotherPublish(multi, "/k/pods/b/vol", AccessMode::kSingleNodeSingleWriter).code(),
            absl::StatusCode::kFailedPrecondition);
  // Records made before the publish's access mode was kept fall back to the staged one.
  auto old = Published(AccessMode::kSingleNodeSingleWriter, std::nullopt);
  EXPECT_EQ(CheckAnotherPublish(old, "/k/pods/b/vol", AccessMode::kSingleNodeMultiWriter).code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(PublishRules, OtherModesMayPublishAtSeveralTargets) {
  for (AccessMode m : {AccessMode::kSingleNodeMultiWriter, AccessMode::kSingleNodeWriter,
                       AccessMode::kSingleNodeReaderOnly, AccessMode::kMultiNodeReaderOnly,
                       AccessMode::kMultiNodeSingleWriter, AccessMode::kMultiNodeMultiWriter}) {
    auto rec = Published(m, m);
    EXPECT_TRUE(CheckAnotherPublish(rec, "/k/pods/b/vol", m).ok()) << blockdev::ToString(m);
  }
}

TEST(PublishRules, UnpublishNeverReleasesTheStagedDevice) {
  auto rec = Published(AccessMode::kSingleNodeMultiWriter, AccessMode::kSingleNodeMultiWriter);
  PublishRecord& pub = rec.publishes[0];
  pub.readonly = true;
  pub.own_attachment = rec.attachment;  // a pool handed the staged read-write device back
  EXPECT_FALSE(OwnAttachmentToRelease(rec, pub).has_value());

  pub.own_attachment = blockdev::Attachment{"/dev/loop9", true};  // a read-only device of its own
  ASSERT_TRUE(OwnAttachmentToRelease(rec, pub).has_value());
  EXPECT_EQ(OwnAttachmentToRelease(rec, pub)->path, "/dev/loop9");
  // Shared by a second read-only publish: released with the last one only.
  rec.publishes.push_back({"/k/pods/b/vol", true, "", blockdev::Attachment{"/dev/loop9", true}, "",
                           AccessMode::kSingleNodeMultiWriter});
  EXPECT_FALSE(OwnAttachmentToRelease(rec, rec.publishes[0]).has_value());
}

}  // namespace
}  // namespace vdisk::csi
