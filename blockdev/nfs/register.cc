#include "blockdev/nfs/register.h"

#include "blockdev/nfs/nfs_device.h"
#include "blockdev/registry.h"

namespace vdisk::blockdev::nfs {

void Register() {
  RegisterDeviceScheme("nfs", [](const std::string& rest, bool read_only) {
    return OpenNfsUri(rest, read_only);
  });
}

}  // namespace vdisk::blockdev::nfs
