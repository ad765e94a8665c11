# vdisk_add_test(<name> SOURCES <files...> [LIBS <targets...>] [LABELS <labels...>]
#                [TIMEOUT <seconds>] [FIXTURES <fixtures...>] [RESOURCE_LOCK <locks...>])
# Builds a GoogleTest executable and registers it with CTest as one test (the executable runs
# all its cases), labelled for `ctest -L`. Labels in use: unit, integration, e2e, ceph, qemu,
# root (needs loop devices / mounts).
function(vdisk_add_test name)
  cmake_parse_arguments(T "" "TIMEOUT" "SOURCES;LIBS;LABELS;FIXTURES;RESOURCE_LOCK;LAUNCHER" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ${T_LIBS} GTest::gtest GTest::gtest_main GTest::gmock)
  if(VDISK_TESTS_WERROR)
    # Partial aggregate initialization of option structs is idiomatic in tests.
    target_compile_options(${name} PRIVATE -Werror -Wno-missing-field-initializers)
  endif()
  add_test(NAME ${name} COMMAND ${VDISK_TEST_LAUNCHER} ${T_LAUNCHER} $<TARGET_FILE:${name}> --gtest_color=no)
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  if(NOT T_LABELS)
    set(T_LABELS unit)
  endif()
  set_tests_properties(${name} PROPERTIES LABELS "${T_LABELS}" TIMEOUT ${T_TIMEOUT}
    ENVIRONMENT "VDISK_SOURCE_DIR=${CMAKE_SOURCE_DIR};VDISK_BINARY_DIR=${CMAKE_BINARY_DIR}")
  if(VDISK_SANITIZER_ENV)
    set_property(TEST ${name} APPEND PROPERTY ENVIRONMENT ${VDISK_SANITIZER_ENV})
  endif()
  if(T_FIXTURES)
    set_tests_properties(${name} PROPERTIES FIXTURES_REQUIRED "${T_FIXTURES}")
  endif()
  if(T_RESOURCE_LOCK)
    set_tests_properties(${name} PROPERTIES RESOURCE_LOCK "${T_RESOURCE_LOCK}")
  endif()
endfunction()
