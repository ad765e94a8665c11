// The pool conformance suite (tests/pool/pool_conformance.h) on the RBD pool, against the
// real single-node Ceph of the `ceph` fixture.
#include "tests/pool/pool_conformance.h"
#include "tests/rbd/rbd_fixture.h"

namespace vdisk::pooltest {

INSTANTIATE_TEST_SUITE_P(Rbd, PoolConformance, ::testing::Values(RbdBackend()), BackendName);

}  // namespace vdisk::pooltest
