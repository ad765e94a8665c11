#!/usr/bin/env bash
# bench/run.sh vhost: the same guest (tests/env/guest.sh, fio inside the initramfs) runs the same
# fio workloads on the same backing file through three disk back ends, in the same run:
#   vdisk       `vdisk serve` vhost-user-blk export (io_uring, O_DIRECT)
#   qsd         qemu-storage-daemon --export type=vhost-user-blk, aio=io_uring, cache.direct=on
#   drive       QEMU's own virtio-blk: -drive aio=io_uring,cache=none
# Prints vhost-qsd-<workload> and vhost-drive-<workload> BENCH lines (ratio > 1: vdisk better).
# Then the back ends alone, without a guest: bench/tools/vhost_load.cc drives vdisk and
# qemu-storage-daemon from the host (vhost-host-qsd-<rw>-<bs>-qd<N> throughput and -cpu us/IO
# lines: 4 KiB at QD32, 1 MiB at QD8 and QD32). These are the headline lines: under TCG the
# guest lines move +-30% from boot to boot with any back end (bench/RESULTS.md, vhost).
# Every line is the median of the rounds (pairs: the back ends interleaved in each round), with
# min-max of both sides on stderr (bench/lib.sh pairs_line).
# Env: VHOST_BENCH_RUNTIME (s per workload, 8), VHOST_BENCH_WORKLOADS (comma list),
#      VHOST_BENCH_SIZE (backing file, 1G), VHOST_BENCH_QUEUES (1; vCPUs = queues),
#      VHOST_BENCH_ROUNDS (VDISK_BENCH_PAIRS, 3: back ends interleaved, median of rounds
#      reported; 0 skips the guests),
#      VHOST_BENCH_DIR (where the backing file goes, default a temp dir under /var/tmp),
#      VHOST_BENCH_HOST_ROUNDS (3), VHOST_BENCH_HOST_RUNTIME (s per host-side run, 5).
# A guest that fails or times out (VHOST_BENCH_BOOT_TIMEOUT, 180 s) is reported on stderr and
# that round of that back end counts as no result (left out of the median).
# Note: the guest runs under TCG (no KVM here), so guest CPU emulation caps every back end;
# all three share that cap, which is why they are compared in the same run. maxcpus is at least
# 2: with one possible vCPU QEMU 7.2's TCG drops the guest's memory barriers, and guests stall
# with every back end (docs/vhost.md, "Guest stalls").
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../lib.sh"

runtime=${VHOST_BENCH_RUNTIME:-8}
workloads=${VHOST_BENCH_WORKLOADS:-randread-4k,randwrite-4k,read-1m,write-1m}
size=${VHOST_BENCH_SIZE:-1G}
queues=${VHOST_BENCH_QUEUES:-1}
rounds=${VHOST_BENCH_ROUNDS:-$BENCH_PAIRS}
vdisk=$VDISK_BUILD/cli/vdisk
load=$VDISK_BUILD/bench/tools/vdisk_vhost_load
host_rounds=${VHOST_BENCH_HOST_ROUNDS:-$BENCH_PAIRS}
host_runtime=${VHOST_BENCH_HOST_RUNTIME:-5}
guest_dir=$VDISK_BUILD/test-env/guest
for b in "$vdisk" "$load"; do
  [[ -x $b ]] || { echo "bench vhost: $b not built" >&2; exit 1; }
done
for tool in qemu-system-x86_64 qemu-storage-daemon fio; do
  command -v $tool >/dev/null || { echo "bench vhost: $tool missing (scripts/deps.sh)" >&2; exit 1; }
done

work=$(mktemp -d "${VHOST_BENCH_DIR:-/var/tmp}/vdisk-bench-vhost.XXXXXX")
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
bench_context

if (( rounds > 0 )); then
  "$VDISK_SRC/tests/env/guest.sh" build "$guest_dir" --fio >&2
  "$VDISK_SRC/tests/env/guest.sh" initrd "$guest_dir" "$VDISK_SRC/tests/env/guest/fio_bench.sh" \
    "$work/initrd" --fio
fi
image=$work/disk.img
echo "bench vhost: writing a $size backing file" >&2
truncate -s "$size" "$image"
dd if=/dev/urandom of="$image" bs=4M count=$(( $(stat -c %s "$image") / (4 << 20) )) \
  oflag=direct conv=notrunc status=none
sync

mem=1G
# boot <log> <disk args...>: runs the fio guest; its console goes to <log>.
boot() {
  local log=$1
  shift
  local rc=0
  timeout "${VHOST_BENCH_BOOT_TIMEOUT:-180}" qemu-system-x86_64 -accel tcg -nodefaults -display none -no-reboot \
    -m $mem -smp "$queues,maxcpus=$(( queues > 2 ? queues : 2 ))" \
    -object memory-backend-memfd,id=mem0,size=$mem,share=on -machine q35,memory-backend=mem0 \
    -kernel "$guest_dir/vmlinuz" -initrd "$work/initrd" \
    -append "console=ttyS0 panic=-1 quiet loglevel=3 vdisk.arg=rt=$runtime vdisk.arg=wl=$workloads" \
    -serial stdio -monitor none "$@" </dev/null > "$log" 2>&1 || rc=$?
  if [[ $rc != 0 ]] || ! grep -q "VDISK-GUEST-EXIT: 0" "$log"; then
    echo "bench vhost: guest failed (qemu exit $rc; 124 = timed out); console:" >&2
    cut -c1-200 "$log" >&2
    for e in "$work"/*.err; do echo "--- $e" >&2; tail -5 "$e" >&2; done
    echo "bench vhost: this round of this back end counts as no result" >&2
    return 1
  fi
}
wait_socket() {
  for _ in $(seq 100); do [[ -S $1 ]] && return 0; sleep 0.1; done
  echo "bench vhost: $1 did not appear" >&2
  exit 1
}
vhost_disk() { echo "-chardev socket,id=c0,path=$1 -device vhost-user-blk-pci,chardev=c0,num-queues=$queues"; }

start_vdisk() {  # <log tag>: starts `vdisk serve` on the file; its pid in $server
  "$vdisk" serve --socket "$work/vdisk.sock" --uri "file:$image" --queues "$queues" \
    > "$work/vdisk.out" 2> "$work/vdisk.$1.err" &
  server=$!
  pids+=($server)
  wait_socket "$work/vdisk.sock"
}
start_qsd() {  # <log tag>: starts qemu-storage-daemon on the file; its pid in $server
  qemu-storage-daemon \
    --blockdev "driver=file,node-name=f0,filename=$image,aio=io_uring,cache.direct=on" \
    --export "type=vhost-user-blk,id=e0,node-name=f0,addr.type=unix,addr.path=$work/qsd.sock,writable=on,num-queues=$queues" \
    > "$work/qsd.$1.err" 2>&1 &
  server=$!
  pids+=($server)
  wait_socket "$work/qsd.sock"
}
stop_server() {
  kill "$server"; wait "$server" || true
  rm -f "$work/vdisk.sock" "$work/qsd.sock"
}
run_vdisk() {  # <round>
  start_vdisk "$1"
  echo "bench vhost: round $1: vdisk export" >&2
  # shellcheck disable=SC2046
  boot "$work/vdisk.$1.log" $(vhost_disk "$work/vdisk.sock") || true
  stop_server
}
run_qsd() {
  start_qsd "$1"
  echo "bench vhost: round $1: qemu-storage-daemon export" >&2
  # shellcheck disable=SC2046
  boot "$work/qsd.$1.log" $(vhost_disk "$work/qsd.sock") || true
  stop_server
}
run_drive() {
  echo "bench vhost: round $1: QEMU -drive aio=io_uring,cache=none" >&2
  boot "$work/drive.$1.log" -drive "file=$image,format=raw,if=none,id=d0,aio=io_uring,cache=none" \
    -device "virtio-blk-pci,drive=d0,num-queues=$queues" || true
}
# Rounds interleave the back ends; each figure is the median of that back end's completed rounds
# (per-round values and the best round on stderr). The TCG guest's throughput moves by +-30%
# between boots of the same back end, so the best of a few rounds compares luck, not back ends
# (bench/RESULTS.md, 2026-12-06).
for round in $(seq "$rounds"); do
  run_vdisk "$round"
  run_qsd "$round"
  run_drive "$round"
done

# fio terse v3: field 8 read IOPS, 7 read KiB/s, 49 write IOPS, 48 write KiB/s.
metric1() {  # metric1 <log> <workload> -> value (IOPS for 4k, MiB/s for 1m)
  local line
  line=$(grep -a "^FIO $2 " "$1" | tail -1 | cut -d' ' -f3- | tr -d '\r')
  [[ $line == 3\;* ]] || { echo 0; return; }
  case "$2" in
    randread-4k*) cut -d';' -f8 <<<"$line" ;;
    randwrite-4k*) cut -d';' -f49 <<<"$line" ;;
    read-1m) awk -F';' '{printf "%.1f", $7/1024}' <<<"$line" ;;
    write-1m) awk -F';' '{printf "%.1f", $48/1024}' <<<"$line" ;;
  esac
}
rounds_of() {  # <backend> <workload>: the per-round values, 0 for a round without a result
  local r all=
  for r in $(seq "$rounds"); do all+=" $(metric1 "$work/$1.$r.log" "$2")"; done
  echo "$all"
}
(( rounds > 0 )) || workloads=""  # VHOST_BENCH_ROUNDS=0: the host-side part only
for w in ${workloads//,/ }; do
  unit=IOPS
  [[ $w == *-1m ]] && unit=MiB/s
  v=$(rounds_of vdisk "$w")
  pairs_line "vhost-qsd-$w" "$unit" qemu-storage-daemon 1 "$v" "$(rounds_of qsd "$w")"
  pairs_line "vhost-drive-$w" "$unit" qemu-drive-io_uring 1 "$v" "$(rounds_of drive "$w")"
done

# The back ends alone: bench/tools/vhost_load.cc is a host-side front end (a virtio-blk driver
# in a process, no guest CPU in the way) keeping random requests in flight for $host_runtime s
# against each back end on the same file (4 KiB at QD32, 1 MiB at QD8 and QD32), rounds
# interleaved.
# Prints throughput and the back end's CPU time per request (user + system of its process),
# medians of the rounds.
host_workloads="randread-4k-qd32 randwrite-4k-qd32 randread-1m-qd8 randwrite-1m-qd8 randread-1m-qd32 randwrite-1m-qd32"
host_load() {  # <backend> <round>
  local w rw bs qd
  for w in $host_workloads; do
    rw=${w%%-*}
    qd=${w##*-qd}
    case $w in *-4k-*) bs=4096 ;; *) bs=1048576 ;; esac
    "$load" --socket "$work/$1.sock" --size "$(stat -c %s "$image")" --rw "$rw" --bs "$bs" \
      --qd "$qd" --seconds "$host_runtime" --backend-pid "$server" > "$work/host.$1.$w.$2" ||
      echo "bench vhost: host load $w on $1 failed" >&2
  done
}
for round in $(seq "$host_rounds"); do
  echo "bench vhost: host-side round $round" >&2
  start_vdisk "host$round"; host_load vdisk "$round"; stop_server
  start_qsd "host$round"; host_load qsd "$round"; stop_server
done
host_rounds_of() {  # <backend> <workload> <field>: the per-round values (0: no result)
  local r v all=
  for r in $(seq "$host_rounds"); do
    v=$(grep -o " $3=[0-9.]*" "$work/host.$1.$2.$r" 2>/dev/null | cut -d= -f2)
    all+=" ${v:-0}"
  done
  echo "$all"
}
for w in $host_workloads; do
  field=iops unit=IOPS
  [[ $w == *-1m-* ]] && field=mib_s unit=MiB/s
  pairs_line "vhost-host-qsd-$w" "$unit" qemu-storage-daemon 1 "$(host_rounds_of vdisk "$w" $field)" \
    "$(host_rounds_of qsd "$w" $field)" 1.0
  pairs_line "vhost-host-qsd-$w-cpu" us/IO qemu-storage-daemon 0 \
    "$(host_rounds_of vdisk "$w" backend_us_per_io)" "$(host_rounds_of qsd "$w" backend_us_per_io)"
done
