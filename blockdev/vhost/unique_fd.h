// An owned file descriptor: the common one (common/unique_fd.h), under the vhost namespace.
#pragma once

#include "common/unique_fd.h"

namespace vdisk::blockdev::vhost {
using vdisk::UniqueFd;
}  // namespace vdisk::blockdev::vhost
