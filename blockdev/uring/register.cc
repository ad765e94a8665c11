#include "blockdev/uring/register.h"

#include "blockdev/registry.h"
#include "blockdev/uring/uring_device.h"

namespace vdisk::blockdev::uring {

void Register() {
  RegisterDeviceScheme("file", [](const std::string& rest, bool read_only)
                                   -> StatusOr<std::unique_ptr<Device>> {
    ASSIGN_OR_RETURN(auto parsed, ParseFileUri(rest, read_only));
    return OpenFileDevice(parsed.first, parsed.second);
  });
}

}  // namespace vdisk::blockdev::uring
