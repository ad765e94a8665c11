// The one place that knows which backends are compiled in: one registration line per backend.
#include "blockdev/registry.h"

namespace vdisk::blockdev {

// Each backend folder provides <kind>::RegisterPoolKind() (see blockdev/<kind>/register.h).

void RegisterBuiltinPoolKinds() {
  static std::once_flag once;
  std::call_once(once, [] {
    // Backends add their line here, e.g.:  local::Register();
  });
}

}  // namespace vdisk::blockdev
