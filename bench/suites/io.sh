#!/usr/bin/env bash
# bench/run.sh io: the vdisk io_uring engine (`vdisk bench io`) vs fio's io_uring engine, on the
# same fully written file, same O_DIRECT, same block size and queue depth, on two devices: the
# root file system ("file": the VM's virtio disk) and a file on an XFS whose loop device does
# direct I/O into an image on the root file system ("xfs": a slower, deeper stack, as the local
# pool uses it). Each line is the median of VDISK_BENCH_PAIRS A/B pairs (default 3; the order
# alternates fio-vdisk / vdisk-fio so drift hits both), min-max of both sides on stderr.
# fio runs with fixedbufs=1 registerfiles=1 (its fastest io_uring setup short of SQPOLL/polled
# I/O), matching vdisk's registered files and buffers.
# Both sides' I/O buffers are on 2 MiB transparent huge pages: vdisk's by default (mmap +
# MADV_HUGEPAGE), fio's through glibc's malloc THP tunable plus --iomem_align=2M. With 4 KiB
# pages a 1 MiB request is as many physical segments as the page allocator scattered the buffer
# over; on a virtio-blk disk without indirect descriptors (this CI VM) that decides how many
# requests fit in the ring and swung the 1 MiB lines by 2-4x between runs of the same tool.
# VDISK_BENCH_IO_HUGEPAGES=0 runs both on 4 KiB pages instead.
# VDISK_BENCH_IO_TRACE=1 runs every run under bench/tools/inflight.sh (perf): the device's mean
# in-flight level, device latency and io_uring_enter pattern on stderr (costs some CPU).
#
# Environment: VDISK_BENCH_RUNTIME (s per run, default 5), VDISK_BENCH_IO_SIZE (default 2G),
# VDISK_BENCH_IO_TARGETS ("file xfs"; "loop" = a direct-io loop device over the root file),
# VDISK_BENCH_IO_WORKLOADS (names, default all), VDISK_BENCH_PAIRS (3), VDISK_BENCH_DIR
# (default: the build dir), VDISK_BUILD (build dir with cli/vdisk). xfs and loop need root.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
source "$here/lib.sh"
VDISK=${VDISK:-$VDISK_BUILD/cli/vdisk}
RUNTIME=${VDISK_BENCH_RUNTIME:-5}
SIZE=${VDISK_BENCH_IO_SIZE:-2G}
TARGETS=${VDISK_BENCH_IO_TARGETS:-${VDISK_BENCH_IO_TARGET:-file xfs}}
HUGEPAGES=${VDISK_BENCH_IO_HUGEPAGES:-1}
TRACE=${VDISK_BENCH_IO_TRACE:-0}
fio_env=() vdisk_mem=()
if [[ $HUGEPAGES == 1 ]]; then
  fio_env=(GLIBC_TUNABLES=glibc.malloc.hugetlb=1)
else
  vdisk_mem=(--no-hugepages)
fi
[[ -x $VDISK ]] || { echo "io.sh: $VDISK not built (set VDISK_BUILD)" >&2; exit 1; }
bench_need fio

work=$(mktemp -d "${VDISK_BENCH_DIR:-$VDISK_BUILD}/bench-io.XXXXXX")
loop=
cleanup() {
  [[ -n $loop ]] && losetup -d "$loop" 2>/dev/null || true
  if mountpoint -q "$work/xfs" 2>/dev/null; then
    for _ in 1 2 3 4 5; do
      "$VDISK_SRC/tests/env/xfs.sh" down "$work/xfs" >/dev/null 2>&1 && ! mountpoint -q "$work/xfs" && break
      sleep 0.5
    done
  fi
  rm -rf "$work"
}
trap cleanup EXIT
bench_context

prepare() {  # <file>: fully written, so reads hit allocated blocks
  fio --name=prep --filename="$1" --rw=write --bs=1M --size="$SIZE" --direct=1 \
    --ioengine=io_uring --iodepth=8 --output=/dev/null
}
traced() {  # <command...>: under inflight.sh when tracing
  if [[ $TRACE == 1 ]]; then "$here/tools/inflight.sh" "$target" -- "$@"; else "$@"; fi
}
run_fio() {  # rw bs qd -> IOPS
  local rw=$1 bs=$2 qd=$3 dir
  dir=$([[ $rw == *read ]] && echo read || echo write)
  traced env "${fio_env[@]}" fio --name=peer --filename="$target" --ioengine=io_uring --direct=1 \
    --rw="$rw" --bs="$bs" --iodepth="$qd" --size="$SIZE" --time_based --runtime="$RUNTIME" \
    --norandommap --randrepeat=0 --fixedbufs=1 --registerfiles=1 --iomem_align=2M \
    --output-format=json |
    jq ".jobs[0].$dir.iops"
}
run_vdisk() {  # rw bs qd -> IOPS
  traced "$VDISK" bench io --uri "$target" --rw "$1" --bs "$2" --qd "$3" --runtime "$RUNTIME" \
    --size "$SIZE" "${vdisk_mem[@]}" --json | jq .iops
}

# name rw bs qd unit
workloads=(
  "randread-4k-qd1 randread 4k 1 IOPS"
  "randread-4k-qd32 randread 4k 32 IOPS"
  "randwrite-4k-qd1 randwrite 4k 1 IOPS"
  "randwrite-4k-qd32 randwrite 4k 32 IOPS"
  "read-1m-qd1 read 1M 1 MiB/s"
  "read-1m-qd8 read 1M 8 MiB/s"
  "read-1m-qd32 read 1M 32 MiB/s"
  "write-1m-qd1 write 1M 1 MiB/s"
  "write-1m-qd8 write 1M 8 MiB/s"
  "write-1m-qd32 write 1M 32 MiB/s"
)
for tgt in $TARGETS; do
  case $tgt in
    file) file=$work/data.img prefix=io ;;
    loop) file=$work/data.img prefix=io-loop ;;
    xfs)
      "$VDISK_SRC/tests/env/xfs.sh" up "$work/xfs.img" "$work/xfs" 8G >&2
      file=$work/xfs/data.img prefix=io-xfs ;;
    *) echo "io.sh: unknown target $tgt (file, loop, xfs)" >&2; exit 2 ;;
  esac
  [[ -f $file ]] || { echo "io: writing $SIZE test file $file" >&2; prepare "$file"; }
  target=$file
  if [[ $tgt == loop ]]; then
    loop=$(losetup --direct-io=on --find --show "$file")
    target=$loop
  fi
  echo "io: target $tgt: $target ($(stat -f -c %T "$file")), $RUNTIME s per run," \
    "huge-page buffers $HUGEPAGES, load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
  for w in "${workloads[@]}"; do
    read -r name rw bs qd unit <<<"$w"
    if [[ -n ${VDISK_BENCH_IO_WORKLOADS:-} && " ${VDISK_BENCH_IO_WORKLOADS//,/ } " != *" $name "* ]]; then
      continue
    fi
    vs=() fs=()
    for p in $(seq "$BENCH_PAIRS"); do
      if (( p % 2 )); then
        f=$(run_fio "$rw" "$bs" "$qd"); v=$(run_vdisk "$rw" "$bs" "$qd")
      else
        v=$(run_vdisk "$rw" "$bs" "$qd"); f=$(run_fio "$rw" "$bs" "$qd")
      fi
      # 1 MiB blocks: IOPS == MiB/s
      vs+=("$(awk -v a="$v" 'BEGIN{printf "%.1f", a}')")
      fs+=("$(awk -v a="$f" 'BEGIN{printf "%.1f", a}')")
    done
    pairs_line "$prefix-$name" "$unit" fio 1 "${vs[*]}" "${fs[*]}" 1.0
  done
  if [[ -n $loop ]]; then losetup -d "$loop"; loop=; fi
done
