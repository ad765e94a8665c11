# Fixture `tgt`: a real tgtd (tgt 1.0.85) on 127.0.0.1 with its own control instance number and
#   port, and an XFS reflink image for backing files, from tests/env/tgt.sh in
#   ${CMAKE_BINARY_DIR}/test-env/tgt. A test that needs it declares `FIXTURES tgt` and sets
#   ENVIRONMENT VDISK_TGT_DIR=${VDISK_TGT_DIR}; it then reads $VDISK_TGT_DIR/tgt.env. If tgtd
#   cannot start, tgt_up FAILS with its log printed and the tests that require it do not run.
set(VDISK_TGT_DIR ${CMAKE_BINARY_DIR}/test-env/tgt CACHE INTERNAL "test tgt target dir")

add_test(NAME tgt_up COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/tgt.sh up ${VDISK_TGT_DIR} 8G)
set_tests_properties(tgt_up PROPERTIES FIXTURES_SETUP tgt LABELS "iscsi;integration;root" TIMEOUT 120)

add_test(NAME tgt_down COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/tgt.sh down ${VDISK_TGT_DIR})
set_tests_properties(tgt_down PROPERTIES FIXTURES_CLEANUP tgt LABELS "iscsi;integration;root" TIMEOUT 120)
