#!/usr/bin/env bash
# bench/run.sh copy: sparse copy of an 8 GiB image holding 1 GiB of scattered data (1 MiB
# extents at random places) on a reflink XFS (tests/env/xfs.sh): `vdisk copy` vs
# `cp --reflink=never --sparse=always` vs `qemu-img convert -f raw -O raw` (its defaults: 8
# coroutines, in-order writes) and `qemu-img convert -m 16 -W` (16 coroutines, out-of-order
# writes: qemu-img at its fastest). Every run starts with a cold page cache for the data
# (drop_caches), then each tool's binary and libraries are read once (`--version`) so the run
# times the copy, not loading ~100 MB of shared libraries from disk (the copy engine runs inside
# the long-running vdisk-csi for host-assisted clones; qemu-img is small). Every run is timed
# through the destination's fsync (vdisk flushes itself; the peers are followed by
# `sync <dst>`). VDISK_BENCH_PAIRS rounds, each running every tool once (order rotating);
# copy-sparse is vdisk against the fastest peer of each round, median of the rounds and min-max
# on stderr. Prints the destination allocation too. Then reflink clone (FICLONE, what the local
# pool does) vs vdisk copy at 1, 4 and 16 GiB (data = 1/8 of the size): the clone stays O(1).
#
# Environment: VDISK_BENCH_COPY_SIZE (8G), VDISK_BENCH_COPY_DATA_MB (1024), VDISK_BENCH_PAIRS (3),
# VDISK_BENCH_CLONE_SIZES ("1 4 16", GiB), VDISK_BENCH_DIR (default: the build dir).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
source "$here/lib.sh"
VDISK=${VDISK:-$VDISK_BUILD/cli/vdisk}
SIZE=${VDISK_BENCH_COPY_SIZE:-8G}
DATA_MB=${VDISK_BENCH_COPY_DATA_MB:-1024}
CLONE_SIZES=${VDISK_BENCH_CLONE_SIZES:-1 4 16}
[[ -x $VDISK ]] || { echo "copy.sh: $VDISK not built (set VDISK_BUILD)" >&2; exit 1; }
[[ $(id -u) == 0 ]] || { echo "copy.sh: needs root (XFS image, drop_caches)" >&2; exit 1; }

work=$(mktemp -d "${VDISK_BENCH_DIR:-$VDISK_BUILD}/bench-copy.XXXXXX")
mnt=$work/mnt
cleanup() {
  for _ in 1 2 3 4 5; do
    "$VDISK_SRC/tests/env/xfs.sh" down "$mnt" >/dev/null 2>&1 && ! mountpoint -q "$mnt" && break
    sleep 0.5
  done
  rm -rf "$work"
}
trap cleanup EXIT
bench_context
"$VDISK_SRC/tests/env/xfs.sh" up "$work/xfs.img" "$mnt" 64G >&2

# make_image <path> <size> <data MiB>: 1 MiB random extents at distinct random places.
make_image() {
  local path=$1 size=$2 mb=$3
  truncate -s "$size" "$path"
  fio --name=fill --filename="$path" --rw=randwrite --bs=1M --size="$size" --io_size="${mb}M" \
    --direct=1 --ioengine=io_uring --iodepth=16 --randrepeat=0 --output=/dev/null
}
alloc() { echo $(( $(stat -c %b "$1") * 512 )); }
cold() { sync; echo 3 > /proc/sys/vm/drop_caches; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.3f", b-a}'; }

src=$mnt/src.img
echo "copy: making $SIZE image with $DATA_MB MiB of scattered data" >&2
make_image "$src" "$SIZE" "$DATA_MB"
echo "copy: source allocation $(alloc "$src") bytes" >&2

run_tool() {  # tool -> seconds; leaves the destination at $mnt/dst.<tool>
  local tool=$1 t0 t1 dst=$mnt/dst.$1
  rm -f "$dst" "$dst.partial" "$dst.partial.ckpt"
  cold
  case $tool in  # warm the binary and its libraries, not the data
    vdisk) "$VDISK" --version >/dev/null ;;
    cp) cp --version >/dev/null ;;
    qemu-img*) qemu-img --version >/dev/null ;;
  esac
  t0=$(now)
  case $tool in
    vdisk) "$VDISK" copy -q "$src" "$dst" >/dev/null ;;
    cp) cp --reflink=never --sparse=always "$src" "$dst" && sync "$dst" ;;
    qemu-img) qemu-img convert -f raw -O raw "$src" "$dst" && sync "$dst" ;;
    qemu-img-W) qemu-img convert -f raw -O raw -m 16 -W "$src" "$dst" && sync "$dst" ;;
  esac
  t1=$(now)
  elapsed "$t0" "$t1"
}

tools=(vdisk qemu-img qemu-img-W cp)
declare -A secs bytes
vs=() ps=() peers=() va=() pa=()
for p in $(seq "$BENCH_PAIRS"); do
  order=("${tools[@]:$(( (p - 1) % ${#tools[@]} ))}" "${tools[@]:0:$(( (p - 1) % ${#tools[@]} ))}")
  for tool in "${order[@]}"; do
    secs[$tool]=$(run_tool "$tool")
    bytes[$tool]=$(alloc "$mnt/dst.$tool")
    if [[ $tool == vdisk && $p == 1 ]] && ! cmp "$src" "$mnt/dst.vdisk"; then
      echo "copy: vdisk copy differs from the source!" >&2
      exit 1
    fi
    rm -f "$mnt/dst.$tool"
  done
  peer=qemu-img
  for t in qemu-img-W cp; do
    if awk -v a="${secs[$t]}" -v b="${secs[$peer]}" 'BEGIN{exit !(a<b)}'; then peer=$t; fi
  done
  echo "copy: round $p (${order[*]}): vdisk ${secs[vdisk]} s, qemu-img ${secs[qemu-img]} s, qemu-img -m 16 -W ${secs[qemu-img-W]} s, cp ${secs[cp]} s; fastest peer $peer; allocation vdisk ${bytes[vdisk]}, $peer ${bytes[$peer]} (load $(cut -d' ' -f1 /proc/loadavg))" >&2
  vs+=("${secs[vdisk]}"); ps+=("${secs[$peer]}"); peers+=("$peer")
  va+=("${bytes[vdisk]}"); pa+=("${bytes[$peer]}")
done
pairs_line copy-sparse s "fastest of qemu-img / qemu-img -m 16 -W / cp (${peers[*]})" 0 "${vs[*]}" "${ps[*]}" 1.2
pairs_line copy-sparse-allocation bytes "that peer" 0 "${va[*]}" "${pa[*]}" 1.0
echo "copy: source allocation $(alloc "$src") bytes" >&2
rm -f "$mnt"/dst.* "$src"

# Reflink clone (O(1)) vs full sparse copy, by size.
for g in $CLONE_SIZES; do
  img=$mnt/clone-src-${g}G.img
  make_image "$img" "${g}G" $(( g * 128 ))
  cold
  t0=$(now); cp --reflink=always "$img" "$mnt/clone.img"; sync "$mnt/clone.img"; t1=$(now)
  clone_s=$(elapsed "$t0" "$t1")
  cold
  t0=$(now); "$VDISK" copy -q "$img" "$mnt/copy.img" >/dev/null; t1=$(now)
  copy_s=$(elapsed "$t0" "$t1")
  echo "copy: ${g} GiB ($(( g * 128 )) MiB data): reflink ${clone_s} s, vdisk copy ${copy_s} s" >&2
  bench_line "clone-reflink-${g}G" s "$clone_s" vdisk-copy "$copy_s" 0
  rm -f "$img" "$mnt/clone.img" "$mnt/copy.img"
done
