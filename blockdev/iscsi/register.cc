#include "blockdev/iscsi/register.h"

#include "blockdev/iscsi/iscsi_device.h"
#include "blockdev/iscsi/iscsi_options.h"
#include "blockdev/iscsi/iscsi_pool.h"
#include "blockdev/registry.h"

namespace vdisk::blockdev::iscsi {

void Register() {
  RegisterPoolKind("iscsi", [](const PoolConfig& config, const Params& secrets) -> StatusOr<std::shared_ptr<Pool>> {
    ASSIGN_OR_RETURN(IscsiPoolOptions options, ParseIscsiPoolConfig(config, secrets));
    return OpenIscsiPool(options);
  });
  RegisterDeviceScheme("iscsi", [](const std::string& rest, bool read_only) { return OpenIscsiUri(rest, read_only); });
}

}  // namespace vdisk::blockdev::iscsi
