#include "blockdev/iscsi/register.h"

#include "blockdev/iscsi/iscsi_device.h"
#include "blockdev/registry.h"

namespace vdisk::blockdev::iscsi {

void Register() {
  RegisterDeviceScheme("iscsi", [](const std::string& rest, bool read_only) { return OpenIscsiUri(rest, read_only); });
}

}  // namespace vdisk::blockdev::iscsi
