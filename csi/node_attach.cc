#include "csi/node_attach.h"

#include <charconv>

#include "absl/strings/str_cat.h"

namespace vdisk::csi {

bool IsAttachParam(const std::string& key) { return key == kAttachParam || key == kVhostQueuesParam; }

StatusOr<AttachSpec> ParseAttachSpec(const blockdev::Params& params) {
  AttachSpec spec;
  if (auto it = params.find(kAttachParam); it != params.end()) {
    if (it->second == kAttachVhostUser) spec.vhost_user = true;
    else if (it->second != "kernel" && !it->second.empty())
      return absl::InvalidArgumentError(absl::StrCat("parameter attach='", it->second,
                                                     "' is not one of: kernel, vhost-user"));
  }
  if (auto it = params.find(kVhostQueuesParam); it != params.end()) {
    const std::string& v = it->second;
    unsigned n = 0;
    auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    if (ec != std::errc() || end != v.data() + v.size() || n < 1 || n > 64)
      return absl::InvalidArgumentError(absl::StrCat("parameter vhostQueues='", v, "' must be 1..64"));
    if (!spec.vhost_user)
      return absl::InvalidArgumentError("parameter vhostQueues needs attach=vhost-user");
    spec.vhost_queues = n;
  }
  return spec;
}

Status CheckAttachMode(const AttachSpec& spec, blockdev::VolumeMode mode) {
  if (spec.vhost_user && mode != blockdev::VolumeMode::kFilesystem)
    return absl::InvalidArgumentError(
        "attach=vhost-user needs volumeMode: Filesystem: the vhost-user socket is published inside "
        "the target directory, and kubelet maps a Block volume into the pod as a device node, "
        "which a socket is not");
  return Status();
}

void AddAttachContext(const AttachSpec& spec, google::protobuf::Map<std::string, std::string>* context) {
  if (!spec.vhost_user) return;
  (*context)[kAttachParam] = kAttachVhostUser;
  (*context)[kVhostQueuesParam] = std::to_string(spec.vhost_queues);
}

}  // namespace vdisk::csi
