#!/usr/bin/env bash
# Builds and runs the sanitizer test sets, each in a build directory of its own:
#   asan  build-asan/  ASan + UBSan: the unit tests of the data plane (common, blockdev with the
#                      local and io_uring engines, vhost guest memory / virtqueue / inflight log,
#                      clone, S3 signing and XML, CSI op locks) and the vhost-user protocol and
#                      inflight integration tests (a real io_uring device behind the export)
#   tsan  build-tsan/  TSan: the concurrency-heavy ones (op locks, io_uring queue and device, copy
#                      engine and clone, vhost queue workers, metrics server)
#   fuzz  build-fuzz/  clang + libFuzzer: every fuzz/ target for VDISK_FUZZ_SECONDS (default 30)
#
#   scripts/sanitize.sh [asan|tsan|fuzz|all] [extra ctest arguments]      (default: all)
#   environment: VDISK_SANITIZE_JOBS (ctest -j, default 2)
#
# Only the targets those tests need are built (no benchmarks). Not under sanitizers yet (build
# time: see docs/testing.md): the CSI services and their integration tests (gRPC/protobuf code),
# the backup pipeline (it links every backend), Ceph (librbd/librados are not ours and not
# instrumented), QEMU guests, and the kill -9 campaign (it SIGKILLs on purpose). Suppressions
# (libraries we do not own only) are in cmake/sanitizers/.
set -euo pipefail
cd "$(dirname "$0")/.."
which=${1:-all}
[[ $# -gt 0 ]] && shift

ASAN_TESTS=(common_fs_test common_confined_path_test common_log_test common_mountinfo_test
  common_metrics_test common_metrics_server_test blockdev_extent_test blockdev_zero_detect_test
  blockdev_copy_test blockdev_registry_test blockdev_local_metadata_test blockdev_local_names_test
  blockdev_uring_device_test blockdev_uring_fiemap_test blockdev_uring_mapped_test
  vhost_guest_memory_test vhost_virtqueue_test vhost_inflight_log_test clone_test
  backup_sigv4_test backup_xml_test backup_part_size_test csi_op_locks_test
  vhost_protocol_test vhost_inflight_test)
TSAN_TESTS=(csi_op_locks_test blockdev_uring_device_test blockdev_uring_mapped_test
  blockdev_copy_test clone_test vhost_virtqueue_test vhost_protocol_test vhost_inflight_test
  common_metrics_server_test)

# configure <dir> <sanitizers>; prints the unit test names
configure() {
  cmake -S . -B "$1" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVDISK_SANITIZE="$2" \
    -DVDISK_BUILD_BENCH=OFF >/dev/null
}
run_set() {  # run_set <dir> <sanitizers> <tests...>
  local dir=$1 san=$2
  shift 2
  local tests=("$@") regex
  local t0=$SECONDS
  cmake --build "$dir" -j"$(nproc)" --target "${tests[@]}"
  local built=$((SECONDS - t0))
  regex="^($(IFS='|'; echo "${tests[*]}"))\$"
  t0=$SECONDS
  local rc=0
  (cd "$dir" && ctest --output-on-failure --no-tests=error -j"${VDISK_SANITIZE_JOBS:-2}" \
    -R "$regex" -LE 'ceph|qemu' "${EXTRA[@]}") || rc=$?
  echo "sanitize.sh: $san: built in ${built}s, ${#tests[@]} tests in $((SECONDS - t0))s, exit $rc"
  return $rc
}

if [[ $(id -u) -eq 0 ]]; then scripts/deps.sh sanitize; fi
EXTRA=("$@")
rc=0
if [[ $which == asan || $which == all ]]; then
  configure build-asan address,undefined
  run_set build-asan address,undefined "${ASAN_TESTS[@]}" || rc=1
fi
if [[ $which == tsan || $which == all ]]; then
  configure build-tsan thread
  run_set build-tsan thread "${TSAN_TESTS[@]}" || rc=1
fi
if [[ $which == fuzz || $which == all ]]; then
  cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ \
    -DCMAKE_C_COMPILER=clang -DVDISK_FUZZ=ON -DVDISK_BUILD_TESTS=OFF -DVDISK_BUILD_BENCH=OFF \
    -DVDISK_FUZZ_SECONDS="${VDISK_FUZZ_SECONDS:-30}" >/dev/null
  t0=$SECONDS
  cmake --build build-fuzz -j"$(nproc)" --target vdisk_fuzzers  # not the whole project
  built=$((SECONDS - t0)) t0=$SECONDS
  (cd build-fuzz && ctest --output-on-failure --no-tests=error -L fuzz "${EXTRA[@]}") || rc=1
  echo "sanitize.sh: fuzz: built in ${built}s, ran in $((SECONDS - t0))s"
fi
exit $rc
