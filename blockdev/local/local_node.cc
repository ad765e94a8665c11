// LocalPool: the node side (Block mode: loop devices; Filesystem mode: the volume directory).
#include <sys/stat.h>

#include <mutex>

#include "absl/strings/str_cat.h"
#include "blockdev/local/local_pool_impl.h"
#include "blockdev/local/loop_device.h"

namespace vdisk::blockdev::local {

namespace {
// Serialises find-or-create of loop devices in this process (two attaches of one volume must
// not set up two loop devices). Process-wide: several LocalPool objects may share a root.
std::mutex& AttachMutex() {
  static std::mutex mu;
  return mu;
}
}  // namespace

StatusOr<Attachment> LocalPool::attach(const std::string& id, bool read_only,
                                       const Params& /*secrets: none for a local pool*/) {
  RETURN_IF_ERROR(ValidateId(id));
  ASSIGN_OR_RETURN(Volume v, meta_.ReadVolume(id));
  if (v.pending)
    return absl::FailedPreconditionError(
        absl::StrCat("volume ", id, " is still being filled (pending); it cannot be attached"));
  if (v.mode == VolumeMode::kFilesystem) {
    struct stat st;
    std::string dir = layout_.volume_dir(id);
    if (::stat(layout_.volume_image(id).c_str(), &st) != 0)
      return LastErrnoStatus(absl::StrCat("stat ", layout_.volume_image(id)));
    return Attachment{dir, false};
  }
  std::lock_guard lock(AttachMutex());
  ASSIGN_OR_RETURN(LoopDevice loop, AttachLoop(layout_.volume_image(id), read_only));
  return Attachment{loop.path, true};
}

Status LocalPool::detach(const std::string& id, const Attachment& attachment) {
  RETURN_IF_ERROR(ValidateId(id));
  auto v = meta_.ReadVolume(id);
  if (v.ok() && v->mode == VolumeMode::kFilesystem && !attachment.is_block_device) return Status();
  if (!v.ok() && !absl::IsNotFound(v.status())) return v.status();
  std::lock_guard lock(AttachMutex());
  return DetachLoop(layout_.volume_image(id), attachment.is_block_device ? attachment.path : "");
}

Status LocalPool::node_expand(const std::string& id, const Attachment& attachment) {
  RETURN_IF_ERROR(ValidateId(id));
  ASSIGN_OR_RETURN(Volume v, meta_.ReadVolume(id));
  if (v.mode == VolumeMode::kFilesystem && !attachment.is_block_device)
    return Status();  // disk.img already has its new size; the VM sees it on resize
  return RefreshLoopCapacity(layout_.volume_image(id),
                             attachment.is_block_device ? attachment.path : "");
}

}  // namespace vdisk::blockdev::local
