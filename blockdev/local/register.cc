#include "blockdev/local/register.h"

#include "blockdev/local/local_pool.h"
#include "blockdev/registry.h"

namespace vdisk::blockdev::local {

void Register() {
  RegisterPoolKind("local", [](const PoolConfig& config,
                               const Params& /*secrets: the local pool has none*/)
                                -> StatusOr<std::shared_ptr<Pool>> {
    ASSIGN_OR_RETURN(LocalPoolOptions options, ParseLocalPoolConfig(config));
    return OpenLocalPool(options);
  });
}

}  // namespace vdisk::blockdev::local
