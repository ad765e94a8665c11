// Registers the pool kind "local" (blockdev/local/local_pool.h) with blockdev/registry.h.
#pragma once

namespace vdisk::blockdev::local {

void Register();

}  // namespace vdisk::blockdev::local
