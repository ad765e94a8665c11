# Re-runs of Ceph tests after a crash inside librbd/librados (rerun-on-librbd-crash.sh, the
# LAUNCHER of the tests in tests/rbd): the markers of the previous run are cleared when the
# `ceph` fixture starts and reported when it ends (ceph_test_reruns prints each re-run with its
# stack and is reported "Skipped" in ctest's summary when there was one, so a re-run is never
# silent; scripts/test.sh lists them too).
add_test(NAME ceph_test_reruns_reset COMMAND ${CMAKE_COMMAND} -E rm -rf ${CMAKE_BINARY_DIR}/test-reruns)
set_tests_properties(ceph_test_reruns_reset PROPERTIES FIXTURES_SETUP ceph LABELS "ceph;integration")
add_test(NAME ceph_test_reruns COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/report-reruns.sh ${CMAKE_BINARY_DIR}/test-reruns)
set_tests_properties(ceph_test_reruns PROPERTIES FIXTURES_CLEANUP ceph LABELS "ceph;integration"
  SKIP_RETURN_CODE 77)

# The wrapper itself, on real cores of a helper that crashes in its own code or inside librbd.
add_executable(crash_probe crash_probe.cc)
target_link_libraries(crash_probe PRIVATE ${RBD_LIBRARY} ${RADOS_LIBRARY})
target_compile_options(crash_probe PRIVATE -O0 -g)
add_test(NAME env_rerun_wrapper_test
  COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/rerun_wrapper_test.sh
          ${CMAKE_CURRENT_SOURCE_DIR}/rerun-on-librbd-crash.sh $<TARGET_FILE:crash_probe>
          ${CMAKE_BINARY_DIR}/test-tmp/rerun-wrapper)
set_tests_properties(env_rerun_wrapper_test PROPERTIES LABELS unit TIMEOUT 120)
