#!/usr/bin/env bash
# README command 2: installs dependencies, builds, and runs the whole test suite (unit,
# integration against real Ceph / tgt / ganesha / loop devices / QEMU, end-to-end).
# Extra arguments go to ctest (e.g. -L unit, -R csi).
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ $(id -u) -ne 0 ]]; then
  echo "test.sh: run as root: tests use apt, loop devices and mounts" >&2
  exit 1
fi
scripts/deps.sh
scripts/build.sh
cd "${VDISK_BUILD_DIR:-build}"
ctest --output-on-failure --no-tests=error -j"${VDISK_TEST_JOBS:-3}" "$@"
