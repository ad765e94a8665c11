// ObjectStore on a local directory (file:///path): one file per key under the root, written to
// a temp name, fsynced and renamed into place (atomic), so readers see whole objects only.
// Usable on any POSIX filesystem, including an NFS or CephFS mount. Thread-safe.
#pragma once

#include <memory>
#include <string>

#include "backup/store/object_store.h"

namespace vdisk::backup {

// `root` must be an absolute path. The directory is not created here (see CreateRoot()).
StatusOr<std::unique_ptr<ObjectStore>> OpenFileStore(const std::string& root);

}  // namespace vdisk::backup
