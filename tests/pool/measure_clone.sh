#!/usr/bin/env bash
# Measures clone time of a 10 GiB volume holding 1 GiB of data through the local pool:
# reflink XFS vs the copy fallback (XFS with reflink=off, and the root file system), with
# `cp --reflink=never --sparse=always` + sync and `qemu-img convert` of the same image as peers.
#   tests/pool/measure_clone.sh [build-dir] [size-GiB] [data-GiB]
# Needs root (loop-mounted XFS image). Prints JSON lines per step and, at the end, BENCH lines
# (bench/lib.sh; peer = the faster of cp and qemu-img on the same image, lower time is better).
# docs/local-pool.md has the figures.
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
VDISK_SRC=$src
source "$src/bench/lib.sh"
build=${1:-$src/build}
size=${2:-10}
data=${3:-1}
tool=$build/tests/pool/clone_measure
work=$(mktemp -d /var/tmp/vdisk-clone-measure.XXXXXX)
cleanup() { "$src/tests/env/xfs.sh" down "$work/xfs" >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
"$src/tests/env/xfs.sh" up "$work/xfs.img" "$work/xfs" $((size * 3 + 4))G >/dev/null

log=$work/steps.jsonl
seconds() {  # seconds of step $2 in section $1 of the log
  awk -v sec="$1" -v step="\"step\":\"$2\"" '/^# /{cur=$0} index(cur, sec) && index($0, step) {
    match($0, /"seconds":[0-9.]+/); print substr($0, RSTART + 10, RLENGTH - 10); exit }' "$log"
}
peer() {  # peer copies of the source image: <image> <label>; prints the faster one's seconds
  local img=$1 label=$2 t0 t1 cp_s qi_s
  t0=$(date +%s.%N); cp --reflink=never --sparse=always "$img" "$img.cp"; sync "$img.cp"; t1=$(date +%s.%N)
  cp_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", b - a}')
  printf '{"step":"peer-cp","fs":"%s","seconds":%.3f}\n' "$label" "$cp_s"
  rm -f "$img.cp"
  t0=$(date +%s.%N); qemu-img convert -f raw -O raw "$img" "$img.qi"; sync "$img.qi"; t1=$(date +%s.%N)
  qi_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", b - a}')
  printf '{"step":"peer-qemu-img","fs":"%s","seconds":%.3f}\n' "$label" "$qi_s"
  rm -f "$img.qi"
}

{
echo "# XFS, reflink"
"$tool" "$work/xfs/pool-reflink" auto "$size" "$data"
echo "# XFS, reflink=off (copy fallback on the same file system)"
"$tool" "$work/xfs/pool-copy" off "$size" "$data"
peer "$(ls "$work"/xfs/pool-copy/volumes/measure-src-*/disk.img)" xfs
echo "# root file system ($(findmnt -n -o FSTYPE --target /var/tmp)), copy fallback"
"$tool" "$work/rootfs-pool" auto "$size" "$data"
peer "$(ls "$work"/rootfs-pool/volumes/measure-src-*/disk.img)" rootfs
} | tee "$log"

best_peer() {  # the faster peer in section $1: "<name> <seconds>"
  local c q
  c=$(seconds "$1" peer-cp); q=$(seconds "$1" peer-qemu-img)
  if awk -v a="$c" -v b="$q" 'BEGIN{exit !(a < b)}'; then echo "cp $c"; else echo "qemu-img $q"; fi
}
read -r xp xs <<<"$(best_peer "reflink=off")"
read -r rp rs <<<"$(best_peer "root file system")"
tag="${size}g-${data}g"
bench_line "clone-reflink-$tag" s "$(seconds "XFS, reflink" clone-from-snapshot)" "$xp" "$xs" 0
bench_line "clone-hostcopy-xfs-$tag" s "$(seconds "reflink=off" clone-from-snapshot)" "$xp" "$xs" 0
bench_line "snapshot-copy-xfs-$tag" s "$(seconds "reflink=off" snapshot)" "$xp" "$xs" 0
bench_line "clone-hostcopy-rootfs-$tag" s "$(seconds "root file system" clone-from-snapshot)" "$rp" "$rs" 0
