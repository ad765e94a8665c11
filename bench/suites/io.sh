#!/usr/bin/env bash
# bench/run.sh io: the vdisk io_uring engine (`vdisk bench io`) vs fio's io_uring engine, on the
# same fully written file (or the same direct-io loop device over it), same O_DIRECT, same block
# size and queue depth. Each pair runs A-B-B-A and each side's two runs are averaged, so drift
# hits both equally. fio runs with fixedbufs=1 registerfiles=1 (its fastest io_uring setup short
# of SQPOLL/polled I/O), matching vdisk's registered files and buffers.
# Both sides' I/O buffers are on 2 MiB transparent huge pages: vdisk's by default (mmap +
# MADV_HUGEPAGE), fio's through glibc's malloc THP tunable plus --iomem_align=2M. With 4 KiB
# pages a 1 MiB request is as many physical segments as the page allocator scattered the buffer
# over; on a virtio-blk disk without indirect descriptors (this CI VM) that decides how many
# requests fit in the ring and swung the 1 MiB lines by 2-4x between runs of the same tool.
# VDISK_BENCH_IO_HUGEPAGES=0 runs both on 4 KiB pages instead.
#
# Environment: VDISK_BENCH_RUNTIME (s per run, default 5), VDISK_BENCH_IO_SIZE (default 2G),
# VDISK_BENCH_IO_TARGET (file | loop, default file), VDISK_BENCH_DIR (default: the build dir),
# VDISK_BUILD (build dir with cli/vdisk).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
source "$here/lib.sh"
VDISK=${VDISK:-$VDISK_BUILD/cli/vdisk}
RUNTIME=${VDISK_BENCH_RUNTIME:-5}
SIZE=${VDISK_BENCH_IO_SIZE:-2G}
TARGET=${VDISK_BENCH_IO_TARGET:-file}
HUGEPAGES=${VDISK_BENCH_IO_HUGEPAGES:-1}
fio_env=() vdisk_mem=()
if [[ $HUGEPAGES == 1 ]]; then
  fio_env=(GLIBC_TUNABLES=glibc.malloc.hugetlb=1)
else
  vdisk_mem=(--no-hugepages)
fi
[[ -x $VDISK ]] || { echo "io.sh: $VDISK not built (set VDISK_BUILD)" >&2; exit 1; }
command -v fio >/dev/null || { echo "io.sh: fio is not installed" >&2; exit 1; }

work=$(mktemp -d "${VDISK_BENCH_DIR:-$VDISK_BUILD}/bench-io.XXXXXX")
loop=
cleanup() {
  [[ -n $loop ]] && losetup -d "$loop" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

file=$work/data.img
echo "io: writing $SIZE test file $file" >&2
fio --name=prep --filename="$file" --rw=write --bs=1M --size="$SIZE" --direct=1 \
  --ioengine=io_uring --iodepth=8 --output=/dev/null
target=$file
if [[ $TARGET == loop ]]; then
  loop=$(losetup --direct-io=on --find --show "$file")
  target=$loop
fi
fstype=$(stat -f -c %T "$file")
echo "io: target $target ($TARGET on $fstype), $RUNTIME s per run, $(uname -r), $(nproc) cpus," \
  "huge-page buffers $HUGEPAGES, load $(cut -d' ' -f1-3 /proc/loadavg)" >&2

run_fio() {  # rw bs qd -> IOPS
  local rw=$1 bs=$2 qd=$3 dir
  dir=$([[ $rw == *read ]] && echo read || echo write)
  env "${fio_env[@]}" fio --name=peer --filename="$target" --ioengine=io_uring --direct=1 \
    --rw="$rw" --bs="$bs" --iodepth="$qd" --size="$SIZE" --time_based --runtime="$RUNTIME" \
    --norandommap --randrepeat=0 --fixedbufs=1 --registerfiles=1 --iomem_align=2M \
    --output-format=json |
    jq ".jobs[0].$dir.iops"
}
run_vdisk() {  # rw bs qd -> IOPS
  "$VDISK" bench io --uri "$target" --rw "$1" --bs "$2" --qd "$3" --runtime "$RUNTIME" \
    --size "$SIZE" "${vdisk_mem[@]}" --json | jq .iops
}

# name rw bs qd unit
workloads=(
  "randread-4k-qd1 randread 4k 1 IOPS"
  "randread-4k-qd32 randread 4k 32 IOPS"
  "randwrite-4k-qd1 randwrite 4k 1 IOPS"
  "randwrite-4k-qd32 randwrite 4k 32 IOPS"
  "read-1m-qd8 read 1M 8 MiB/s"
  "write-1m-qd8 write 1M 8 MiB/s"
)
for w in "${workloads[@]}"; do
  read -r name rw bs qd unit <<<"$w"
  f1=$(run_fio "$rw" "$bs" "$qd"); v1=$(run_vdisk "$rw" "$bs" "$qd")
  v2=$(run_vdisk "$rw" "$bs" "$qd"); f2=$(run_fio "$rw" "$bs" "$qd")
  fio_v=$(awk -v a="$f1" -v b="$f2" 'BEGIN{printf "%.0f", (a+b)/2}')
  vd_v=$(awk -v a="$v1" -v b="$v2" 'BEGIN{printf "%.0f", (a+b)/2}')
  if [[ $unit == MiB/s ]]; then  # 1 MiB blocks: IOPS == MiB/s
    fio_v=$(awk -v a="$f1" -v b="$f2" 'BEGIN{printf "%.1f", (a+b)/2}')
    vd_v=$(awk -v a="$v1" -v b="$v2" 'BEGIN{printf "%.1f", (a+b)/2}')
  fi
  echo "io: $name fio $f1 $f2 vdisk $v1 $v2" >&2
  bench_line "io-$name" "$unit" "$vd_v" fio "$fio_v" 1
done
