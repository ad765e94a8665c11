// A reflink-capable XFS file system for one test binary: tests/env/xfs.sh on a sparse image under
// /tmp/vdisk-xfs-<pid>/, mounted on first use and unmounted when the binary's tests end (a
// GoogleTest environment), so parallel test binaries never share one. Needs root (loop + mount).
#pragma once

#include <string>

#include "common/status.h"

namespace vdisk::pooltest {

// The mount point (mounting it on the first call). An error if it cannot be mounted: tests that
// need it must FAIL, not skip.
StatusOr<std::string> SharedXfsMount();

// Where tests put root-file-system pools: $VDISK_BINARY_DIR/test-tmp under CTest (the build
// directory's disk; /tmp may be tmpfs elsewhere), else /tmp.
std::string RootFsTempParent();

// A fresh directory under `parent` (mkdtemp), e.g. one pool root per test.
StatusOr<std::string> MakeTempDir(const std::string& parent, const std::string& prefix);

}  // namespace vdisk::pooltest
