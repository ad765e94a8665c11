#include "blockdev/rbd/register.h"

#include "blockdev/rbd/rbd_device.h"
#include "blockdev/rbd/rbd_options.h"
#include "blockdev/rbd/rbd_pool.h"
#include "blockdev/registry.h"

namespace vdisk::blockdev::rbd {

void Register() {
  RegisterPoolKind("rbd", [](const PoolConfig& config,
                             const Params& secrets) -> StatusOr<std::shared_ptr<Pool>> {
    ASSIGN_OR_RETURN(RbdPoolOptions options, ParseRbdPoolConfig(config, secrets));
    return OpenRbdPool(options);
  });
  RegisterDeviceScheme("rbd", [](const std::string& rest, bool read_only) {
    return OpenRbdUri(rest, read_only);
  });
}

}  // namespace vdisk::blockdev::rbd
