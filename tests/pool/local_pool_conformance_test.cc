// The pool conformance suite on the local pool: (a) a directory of the root file system (ext4
// on CI: no reflink, so snapshots are copies and clones go through clone/'s host copy) and
// (b) a reflink XFS (FICLONE snapshots and clones, FIEMAP change maps).
#include "tests/pool/local_fixture.h"
#include "tests/pool/pool_conformance.h"

namespace vdisk::pooltest {

INSTANTIATE_TEST_SUITE_P(Local, PoolConformance,
                         ::testing::Values(LocalBackend(LocalFs::kRootFs),
                                           LocalBackend(LocalFs::kXfs)),
                         BackendName);

}  // namespace vdisk::pooltest
