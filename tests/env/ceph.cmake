# Fixture `ceph`: a single-node Ceph 16.2 (mon, mgr, one OSD, radosgw) from tests/env/ceph.sh in
#   ${CMAKE_BINARY_DIR}/test-env/ceph. A test that needs it declares `FIXTURES ceph` in
#   vdisk_add_test and sets ENVIRONMENT VDISK_CEPH_DIR=${VDISK_CEPH_DIR} on itself; it then reads
#   $VDISK_CEPH_DIR/rbd.env and s3.env. If the cluster cannot start, ceph_up FAILS with the daemon
#   logs printed, and the tests that require it are not run (reported as failed/not run).
set(VDISK_CEPH_DIR ${CMAKE_BINARY_DIR}/test-env/ceph CACHE INTERNAL "test Ceph cluster dir")

add_test(NAME ceph_up COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/ceph.sh up ${VDISK_CEPH_DIR})
set_tests_properties(ceph_up PROPERTIES FIXTURES_SETUP ceph LABELS "ceph;integration" TIMEOUT 240)

add_test(NAME ceph_down COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/ceph.sh down ${VDISK_CEPH_DIR})
set_tests_properties(ceph_down PROPERTIES FIXTURES_CLEANUP ceph LABELS "ceph;integration" TIMEOUT 120)
