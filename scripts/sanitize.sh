#!/usr/bin/env bash
# Builds and runs the sanitizer test sets and the fuzzers (scripts/test.sh runs `all` after the
# main suite; CI therefore runs them):
#   asan  build-asan/  clang, ASan + UBSan (+ libFuzzer coverage, -DVDISK_FUZZ=ON): the unit tests
#                      of the data plane (common, blockdev with the local and io_uring engines,
#                      vhost guest memory / virtqueue / inflight log, clone, S3 signing and XML,
#                      CSI op locks) and the vhost-user protocol and inflight integration tests
#                      (a real io_uring device behind the export)
#   tsan  build-tsan/  g++, TSan: the concurrency-heavy ones (op locks, io_uring queue and device,
#                      copy engine and clone, vhost queue workers, metrics server, the backup
#                      pipeline's reader / compressor / uploader threads)
#   fuzz  build-asan/  every fuzz/ target for VDISK_FUZZ_SECONDS (default 20) on its seed corpus
#   asan-full  build-asan/  what links every backend: the CSI services' integration tests on
#                      local pools (vdisk-csi under ASan), the backup repository and pipeline on
#                      file://, the CLI (not in `all`: it triples the instrumented build)
#
#   scripts/sanitize.sh [asan|tsan|fuzz|asan-full|all] [extra ctest arguments]      (default: all)
#   environment: VDISK_SANITIZE_JOBS (ctest -j, default 2)
#
# Only the targets those tests need are built (no benchmarks). Not under sanitizers (build time:
# see README, "Sanitizers and fuzzing"): Ceph (librbd/librados are not ours and not
# instrumented), iSCSI / NFS (their servers' tests), QEMU guests, and the kill -9 campaign (it
# SIGKILLs on purpose). Suppressions (libraries we do not own only) are in cmake/sanitizers/.
set -euo pipefail
cd "$(dirname "$0")/.."
which=${1:-all}
[[ $# -gt 0 ]] && shift

ASAN_TESTS=(common_fs_test common_confined_path_test common_log_test common_mountinfo_test
  common_metrics_test common_metrics_server_test blockdev_extent_test blockdev_zero_detect_test
  blockdev_copy_test blockdev_registry_test blockdev_local_metadata_test blockdev_local_names_test
  blockdev_uring_device_test blockdev_uring_fiemap_test blockdev_uring_mapped_test
  vhost_guest_memory_test vhost_virtqueue_test vhost_inflight_log_test clone_test
  backup_sigv4_test backup_xml_test backup_part_size_test csi_op_locks_test vhost_protocol_test
  vhost_inflight_test)
TSAN_TESTS=(csi_op_locks_test blockdev_uring_device_test blockdev_uring_mapped_test
  blockdev_copy_test clone_test vhost_virtqueue_test vhost_protocol_test vhost_inflight_test
  common_metrics_server_test backup_file_repo_test backup_pool_source_test)
# `asan-full`: what links every backend (gRPC, the backup pipeline), on local pools.
ASAN_FULL_TESTS=(csi_controller_test csi_node_test csi_lifecycle_test csi_vhost_test
  backup_cli_test backup_file_repo_test backup_crypto_test backup_key_wrap_test
  backup_chunk_codec_test backup_pack_format_test backup_manifest_test backup_retention_test
  backup_file_store_test backup_pool_source_test)

configure() {  # configure <dir> <address,undefined|thread>
  if [[ $2 == thread ]]; then
    cmake -S . -B "$1" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVDISK_SANITIZE=thread \
      -DVDISK_BUILD_BENCH=OFF >/dev/null
  else  # clang: one ASan + UBSan build for the tests and the fuzzers
    cmake -S . -B "$1" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ \
      -DCMAKE_C_COMPILER=clang -DVDISK_FUZZ=ON -DVDISK_BUILD_BENCH=OFF \
      -DVDISK_FUZZ_SECONDS="${VDISK_FUZZ_SECONDS:-20}" >/dev/null
  fi
}
run_set() {  # run_set <dir> <sanitizers> <tests...>
  local dir=$1 san=$2
  shift 2
  local tests=("$@") regex targets=("$@" "${BINARIES[@]}")
  local t0=$SECONDS
  cmake --build "$dir" -j"$(nproc)" --target "${targets[@]}"
  local built=$((SECONDS - t0))
  regex="^($(IFS='|'; echo "${tests[*]}"))\$"
  t0=$SECONDS
  local rc=0
  (cd "$dir" && ctest --output-on-failure --no-tests=error -j"${VDISK_SANITIZE_JOBS:-2}" \
    -R "$regex" -LE 'ceph|iscsi|nfs' "${EXTRA[@]}") || rc=$?
  echo "sanitize.sh: $san: built in ${built}s, ${#tests[@]} tests in $((SECONDS - t0))s, exit $rc"
  return $rc
}

if [[ $(id -u) -eq 0 ]]; then scripts/deps.sh sanitize; fi
EXTRA=("$@")
BINARIES=()  # programs the tests start
rc=0
case $which in asan|tsan|fuzz|asan-full|all) ;; *) echo "usage: $0 [asan|tsan|fuzz|asan-full|all] [ctest args]" >&2; exit 2 ;; esac
if [[ $which == asan || $which == all ]]; then
  configure build-asan address,undefined
  run_set build-asan address,undefined "${ASAN_TESTS[@]}" || rc=1
fi
if [[ $which == tsan || $which == all ]]; then
  configure build-tsan thread
  run_set build-tsan thread "${TSAN_TESTS[@]}" || rc=1
fi
if [[ $which == asan-full ]]; then
  BINARIES=(vdisk-csi vdisk)
  configure build-asan address,undefined
  run_set build-asan address,undefined "${ASAN_FULL_TESTS[@]}" || rc=1
fi
if [[ $which == fuzz || $which == all ]]; then
  configure build-asan address,undefined
  t0=$SECONDS
  cmake --build build-asan -j"$(nproc)" --target vdisk_fuzzers  # not the whole project
  built=$((SECONDS - t0)) t0=$SECONDS
  (cd build-asan && ctest --output-on-failure --no-tests=error -j"${VDISK_SANITIZE_JOBS:-2}" \
    -L fuzz "${EXTRA[@]}") || rc=1
  echo "sanitize.sh: fuzz: built in ${built}s, ran in $((SECONDS - t0))s"
fi
exit $rc
