// The one place that knows which backends are compiled in: one registration line per backend.
#include <mutex>

#include "blockdev/local/register.h"
#include "blockdev/nfs/register.h"
#include "blockdev/rbd/register.h"
#include "blockdev/registry.h"
#include "blockdev/uring/register.h"

namespace vdisk::blockdev {

// Each backend folder provides <kind>::Register() in blockdev/<kind>/register.h, which registers
// its pool kind and/or device URI scheme.

void RegisterBuiltinBackends() {
  static std::once_flag once;
  std::call_once(once, [] {
    // One line per backend, e.g.:  uring::Register();  local::Register();  rbd::Register();
    uring::Register();
    local::Register();
    rbd::Register();
    nfs::Register();
  });
}

}  // namespace vdisk::blockdev
