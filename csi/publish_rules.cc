#include "csi/publish_rules.h"

#include "absl/strings/str_cat.h"

namespace vdisk::csi {

using blockdev::AccessMode;

AccessMode PublishAccess(const VolumeRecord& rec, const PublishRecord& pub) {
  return pub.access.value_or(rec.access);
}

Status CheckAnotherPublish(const VolumeRecord& rec, const std::string& target, AccessMode requested) {
  for (const auto& other : rec.publishes) {
    if (other.target_path == target) continue;
    const bool mine = requested == AccessMode::kSingleNodeSingleWriter;
    const bool theirs = PublishAccess(rec, other) == AccessMode::kSingleNodeSingleWriter;
    if (!mine && !theirs) continue;
    return absl::FailedPreconditionError(absl::StrCat(
        "volume ", rec.volume_id, " is already published at ", other.target_path,
        mine ? "; SINGLE_NODE_SINGLE_WRITER (ReadWriteOncePod) allows one publish on the node"
             : " with SINGLE_NODE_SINGLE_WRITER (ReadWriteOncePod), which allows no other publish"));
  }
  return Status();
}

std::optional<blockdev::Attachment> OwnAttachmentToRelease(const VolumeRecord& rec, const PublishRecord& pub) {
  if (!pub.own_attachment || pub.own_attachment->path.empty()) return std::nullopt;
  if (pub.own_attachment->path == rec.attachment.path) return std::nullopt;  // the stage's device
  for (const auto& other : rec.publishes)
    if (other.target_path != pub.target_path && other.own_attachment &&
        other.own_attachment->path == pub.own_attachment->path)
      return std::nullopt;
  return pub.own_attachment;
}

}  // namespace vdisk::csi
