#include "csi/attachability.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace vdisk::csi {

Status CheckNodeAttachable(const blockdev::Capabilities& caps, blockdev::VolumeMode mode, const AttachSpec& attach) {
  if (attach.vhost_user || caps.attach_modes.empty()) return Status();
  if (std::find(caps.attach_modes.begin(), caps.attach_modes.end(), mode) != caps.attach_modes.end())
    return Status();
  return absl::InvalidArgumentError(absl::StrCat("a ", std::string(blockdev::ToString(mode)),
                                                 " volume of this pool could not be attached on a node: ",
                                                 caps.attach_note.empty() ? "its node attachment does not serve that mode"
                                                                          : caps.attach_note));
}

}  // namespace vdisk::csi
