#!/usr/bin/env bash
# README command 2: installs dependencies, builds, and runs the whole test suite (unit,
# integration against real Ceph / tgt / ganesha / loop devices / QEMU, end-to-end), then the
# sanitizer sets and short fuzz runs (scripts/sanitize.sh all).
# Extra arguments go to ctest (e.g. -L unit, -R csi) and skip the sanitizer part.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ $(id -u) -ne 0 ]]; then
  echo "test.sh: run as root: tests use apt, loop devices and mounts" >&2
  exit 1
fi
scripts/deps.sh
scripts/build.sh
cd "${VDISK_BUILD_DIR:-build}"
rc=0
ctest --output-on-failure --no-tests=error -j"${VDISK_TEST_JOBS:-3}" "$@" || rc=$?
# Ceph tests re-run after a crash inside librbd/librados (tests/env/rerun-on-librbd-crash.sh):
# never silent, even when the suite passed.
shopt -s nullglob
reruns=(test-reruns/*.txt)
if ((${#reruns[@]} > 0)); then
  echo
  echo "NOTE: ${#reruns[@]} Ceph test(s) passed only after a re-run (first run crashed inside librbd/librados):"
  for m in "${reruns[@]}"; do
    echo "  $(head -n 2 "$m" | tr '\n' ' ')(stack: $PWD/$m)"
  done
fi
cd - >/dev/null
if (($# > 0)); then
  echo "test.sh: ctest arguments given ($*): sanitizer builds and fuzz runs skipped" \
    "(scripts/sanitize.sh all runs them)"
else
  scripts/sanitize.sh all || rc=1
fi
exit "$rc"
