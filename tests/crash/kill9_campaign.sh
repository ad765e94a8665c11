#!/usr/bin/env bash
# The long kill -9 campaign (ctest runs a bounded one: kill9_local, kill9_rbd). Runs
# build/tests/crash/kill9_campaign for each backend and keeps its JSON figures.
#
#   tests/crash/kill9_campaign.sh [--backend local|rbd|both] [--rounds 400] [--process-rounds 20]
#                                 [--seed N] [--out DIR]
#   environment: VDISK_BUILD_DIR (default build), VDISK_CEPH_DIR (an existing test cluster; else
#   one is started for the run with tests/env/ceph.sh and removed afterwards)
#
# Figures go to DIR/kill9-<backend>.json (recovery times per call: p50/p90/p99/max, kills in
# flight and after the answer, ABORTED answers seen while retrying, resumed backups and copies).
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD
BUILD=${VDISK_BUILD_DIR:-build}
[[ $BUILD = /* ]] || BUILD=$REPO/$BUILD
backend=both rounds=400 process_rounds=20 seed=$RANDOM out=$BUILD/kill9-results
while (($#)); do
  case $1 in
    --backend) backend=$2; shift ;;
    --rounds) rounds=$2; shift ;;
    --process-rounds) process_rounds=$2; shift ;;
    --seed) seed=$2; shift ;;
    --out) out=$2; shift ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "kill9_campaign.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
bin=$BUILD/tests/crash/kill9_campaign
[[ -x $bin ]] || { echo "kill9_campaign.sh: $bin missing: build first (scripts/build.sh)" >&2; exit 1; }
mkdir -p "$out"
export VDISK_BINARY_DIR=$BUILD VDISK_SOURCE_DIR=$REPO

started_ceph=
cleanup() { [[ -n $started_ceph ]] && "$REPO/tests/env/ceph.sh" down "$started_ceph" >/dev/null 2>&1; return 0; }
trap cleanup EXIT

rc=0
for b in local rbd; do
  [[ $backend == both || $backend == "$b" ]] || continue
  if [[ $b == rbd && -z ${VDISK_CEPH_DIR:-} ]]; then
    started_ceph=$BUILD/test-env/kill9-ceph-$$
    "$REPO/tests/env/ceph.sh" up "$started_ceph"
    export VDISK_CEPH_DIR=$started_ceph
  fi
  echo "kill9_campaign.sh: $b, $rounds CSI rounds, $process_rounds process rounds, seed $seed"
  "$bin" --backend "$b" --rounds "$rounds" --process-rounds "$process_rounds" --seed "$seed" \
    --max-recovery 30 --report "$out/kill9-$b.json" > "$out/kill9-$b.log" 2>&1 || rc=1
  grep -E "VIOLATION" "$out/kill9-$b.log" || true
  echo "kill9_campaign.sh: $b figures in $out/kill9-$b.json (log $out/kill9-$b.log)"
done
exit $rc
