// The pool conformance suite (tests/pool/pool_conformance.h) on the NFS pool against the real
// ganesha of the `nfs` fixture: without local_path (snapshots copied over libnfs, clones as
// host copies) and with it (server-side reflinks).
#include "tests/nfs/nfs_fixture.h"
#include "tests/pool/pool_conformance.h"

namespace vdisk::pooltest {

INSTANTIATE_TEST_SUITE_P(Nfs, PoolConformance,
                         ::testing::Values(NfsBackend(false), NfsBackend(true)), BackendName);

}  // namespace vdisk::pooltest
