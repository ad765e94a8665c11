// The pool conformance suite (tests/pool/pool_conformance.h) on the iSCSI pool, against the real
// tgtd of the `tgt` fixture: reflink backing (the XFS image), and without reflink (reflink: off,
// where snapshots are target-side copies and clones are host copies through libiscsi).
#include "tests/iscsi/iscsi_fixture.h"
#include "tests/pool/pool_conformance.h"

namespace vdisk::pooltest {

INSTANTIATE_TEST_SUITE_P(Iscsi, PoolConformance,
                         ::testing::Values(IscsiBackend(),
                                           PoolBackend{"iscsi_noreflink",
                                                       [] {
                                                         return std::make_unique<IscsiPoolFixture>(
                                                             blockdev::Params{{"reflink", "off"}});
                                                       }}),
                         BackendName);

}  // namespace vdisk::pooltest
