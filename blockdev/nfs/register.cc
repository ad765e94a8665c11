#include "blockdev/nfs/register.h"

#include "blockdev/nfs/nfs_device.h"
#include "blockdev/nfs/nfs_options.h"
#include "blockdev/nfs/nfs_pool.h"
#include "blockdev/registry.h"

namespace vdisk::blockdev::nfs {

void Register() {
  RegisterPoolKind("nfs", [](const PoolConfig& config,
                             const Params& /*secrets: AUTH_SYS has none*/)
                              -> StatusOr<std::shared_ptr<Pool>> {
    ASSIGN_OR_RETURN(NfsPoolOptions options, ParseNfsPoolConfig(config));
    return OpenNfsPool(options);
  });
  RegisterDeviceScheme("nfs", [](const std::string& rest, bool read_only) {
    return OpenNfsUri(rest, read_only);
  });
}

}  // namespace vdisk::blockdev::nfs
