#!/usr/bin/env bash
# Measures clone time of a 10 GiB volume holding 1 GiB of data through the local pool:
# reflink XFS vs the copy fallback (XFS with reflink=off, and the root file system), with
# `cp --reflink=never --sparse=always` + sync and `qemu-img convert` of the same image as peers.
#   tests/pool/measure_clone.sh [build-dir] [size-GiB] [data-GiB]
# Needs root (loop-mounted XFS image). Prints JSON lines; docs/local-pool.md has the figures.
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$src/build}
size=${2:-10}
data=${3:-1}
tool=$build/tests/pool/clone_measure
work=$(mktemp -d /var/tmp/vdisk-clone-measure.XXXXXX)
cleanup() { "$src/tests/env/xfs.sh" down "$work/xfs" >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
"$src/tests/env/xfs.sh" up "$work/xfs.img" "$work/xfs" $((size * 3 + 4))G >/dev/null

peer() {  # peer copies of the source image: <label> <image>
  local img=$1 label=$2 t0 t1
  t0=$(date +%s.%N); cp --reflink=never --sparse=always "$img" "$img.cp"; sync "$img.cp"; t1=$(date +%s.%N)
  printf '{"step":"peer-cp","fs":"%s","seconds":%.3f}\n' "$label" "$(echo "$t1 - $t0" | bc)"
  rm -f "$img.cp"
  t0=$(date +%s.%N); qemu-img convert -f raw -O raw "$img" "$img.qi"; sync "$img.qi"; t1=$(date +%s.%N)
  printf '{"step":"peer-qemu-img","fs":"%s","seconds":%.3f}\n' "$label" "$(echo "$t1 - $t0" | bc)"
  rm -f "$img.qi"
}

echo "# XFS, reflink"
"$tool" "$work/xfs/pool-reflink" auto "$size" "$data"
echo "# XFS, reflink=off (copy fallback on the same file system)"
"$tool" "$work/xfs/pool-copy" off "$size" "$data"
peer "$(ls "$work"/xfs/pool-copy/volumes/measure-src-*/disk.img)" xfs
echo "# root file system ($(findmnt -n -o FSTYPE --target /var/tmp)), copy fallback"
"$tool" "$work/rootfs-pool" auto "$size" "$data"
peer "$(ls "$work"/rootfs-pool/volumes/measure-src-*/disk.img)" rootfs
