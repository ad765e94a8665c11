#!/usr/bin/env bash
# bench/run.sh memory: resident memory of vdisk-csi serving vhost-user-blk exports vs what a user
# would run instead, one qemu-storage-daemon per disk (--export type=vhost-user-blk, aio=io_uring,
# cache.direct=on), on the same kind of files.
#
# vdisk-csi runs a local pool (files under a temp directory) as node and controller; each export
# is a real CSI publish (CreateVolume with attach=vhost-user, NodeStage, NodePublish at a
# kubelet-shaped path) with a front end connected and doing I/O: bench/tools/vhost_load.cc
# (4 KiB random reads at queue depth 1). Memory is read once every front end is connected and
# busy. qemu-storage-daemon gets the same: one daemon per disk, one vhost_load client each.
#
# Lines (ratio > 1: vdisk uses less):
#   memory-idle             vdisk-csi VmRSS with no export (peer: one idle qemu-storage-daemon)
#   memory-exports-<N>      vdisk-csi VmRSS with N running exports vs the sum of N daemons' VmRSS
#   memory-per-export-<N>   (vdisk-csi RSS with N - idle RSS) / N vs one daemon's RSS (median),
#                           target 1.0 (issue: <= 1.0x qemu-storage-daemon per disk)
# PSS (shared pages split between the processes that map them) on stderr too.
# Environment: VDISK_BENCH_MEMORY_EXPORTS ("1 10 50"), VDISK_BENCH_DIR, VDISK_BUILD. Needs root.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
source "$here/lib.sh"
CSI=${VDISK_CSI:-$VDISK_BUILD/csi/vdisk-csi}
VDISK=${VDISK:-$VDISK_BUILD/cli/vdisk}
LOAD=$VDISK_BUILD/bench/tools/vdisk_vhost_load
COUNTS=${VDISK_BENCH_MEMORY_EXPORTS:-1 10 50}
for b in "$CSI" "$VDISK" "$LOAD"; do
  [[ -x $b ]] || { echo "memory.sh: $b not built (set VDISK_BUILD)" >&2; exit 1; }
done
command -v qemu-storage-daemon >/dev/null || { echo "memory.sh: qemu-storage-daemon missing (scripts/deps.sh)" >&2; exit 1; }
[[ $(id -u) == 0 ]] || { echo "memory.sh: needs root (bind mounts for the publishes)" >&2; exit 1; }

work=$(mktemp -d "${VDISK_BENCH_DIR:-$VDISK_BUILD}/bench-memory.XXXXXX")
sockdir=$(mktemp -d /tmp/vdisk-mem.XXXXXX)
pids=() csi_pid=
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait "${pids[@]}" 2>/dev/null || true
  # Unpublish what is still published, so no bind mount outlives the run.
  if [[ -n $csi_pid ]]; then
    for t in "$work"/kubelet/pods/*/volumes/*/mount; do
      [[ -d $t ]] || continue
      "$VDISK" volume unpublish "$(cat "$t.id" 2>/dev/null || echo x)" --target "$t" --endpoint "unix://$sockdir/csi.sock" >/dev/null 2>&1 || umount "$t" 2>/dev/null || true
    done
    kill "$csi_pid" 2>/dev/null; wait "$csi_pid" 2>/dev/null || true
  fi
  grep -o " $work[^ ]*" /proc/mounts | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
  rm -rf "$work" "$sockdir"
}
trap cleanup EXIT
bench_context

# The socket a front end reaches through the published directory; a kubelet path is longer
# than a socket address may be (107 bytes), so go through the directory's /proc/self/fd path
# like a VMM in the pod would through its own short mount path.
# Sets $sock (call it directly, not in $(...): the directory fd must stay open in this shell).
sock_of() {
  sock=$1/vhost-user-blk.sock
  (( ${#sock} < 100 )) && return
  local dirfd
  exec {dirfd}<"$1"
  sock=/proc/$$/fd/$dirfd/vhost-user-blk.sock
}
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
pss_kib() { awk '/^Pss:/ {print $2}' "/proc/$1/smaps_rollup"; }
SIZE=$((64 << 20))
# The front ends run until they are killed (after each measurement, or by cleanup): setting up
# 50 exports while 49 clients keep 2 cores busy took longer than the 80 s the clients once had
# (2026-12-06, "a front end stopped" at 50 exports).
LOAD_SECONDS=36000

mkdir -p "$work/pool" "$work/kubelet" "$work/state"
"$CSI" --endpoint "unix://$sockdir/csi.sock" --node-id bench --state-dir "$work/state" \
  --vhost-dir "$sockdir/vh" --allowed-target-root "$work/kubelet" \
  --pool "name=local,kind=local,root=$work/pool,overprovisioning=off" > "$work/csi.log" 2>&1 &
csi_pid=$!
for _ in $(seq 100); do [[ -S $sockdir/csi.sock ]] && break; sleep 0.1; done
E=(--endpoint "unix://$sockdir/csi.sock")
sleep 2
idle=$(rss_kib "$csi_pid")
idle_pss=$(pss_kib "$csi_pid")

# One idle daemon, for the idle line.
truncate -s $SIZE "$work/idle.img"
qemu-storage-daemon --blockdev "driver=file,node-name=f0,filename=$work/idle.img,aio=io_uring,cache.direct=on" \
  --export "type=vhost-user-blk,id=e0,node-name=f0,addr.type=unix,addr.path=$sockdir/idle.sock,writable=on" \
  > "$work/qsd-idle.log" 2>&1 &
qidle=$!
pids+=("$qidle")
for _ in $(seq 100); do [[ -S $sockdir/idle.sock ]] && break; sleep 0.1; done
sleep 1
qsd_idle=$(rss_kib "$qidle")
echo "memory: idle: vdisk-csi RSS $idle KiB (PSS $idle_pss), qemu-storage-daemon RSS $qsd_idle KiB (PSS $(pss_kib "$qidle"))" >&2
bench_line memory-idle KiB "$idle" "qemu-storage-daemon (1 idle)" "$qsd_idle" 0
kill "$qidle"; wait "$qidle" 2>/dev/null || true

# vdisk-csi: exports added up to each count in turn, each with a busy front end.
made=0
declare -A vd_rss vd_pss
for n in $COUNTS; do
  while (( made < n )); do
    made=$((made + 1))
    id=$("$VDISK" volume create "mem-$made" --size $SIZE --mode filesystem --pool local \
         --param attach=vhost-user --json "${E[@]}" | jq -r .volume_id)
    stage=$work/kubelet/plugins/kubernetes.io/csi/vdisk.csi.io/$made/globalmount
    target=$work/kubelet/pods/pod-$made/volumes/kubernetes.io~csi/pvc-$made/mount
    mkdir -p "$(dirname "$target")"
    "$VDISK" volume stage "$id" --staging-path "$stage" --mode filesystem --context attach=vhost-user "${E[@]}" >/dev/null
    "$VDISK" volume publish "$id" --staging-path "$stage" --target "$target" --mode filesystem \
      --context attach=vhost-user "${E[@]}" >/dev/null
    echo "$id" > "$target.id"
    sock_of "$target"
    "$LOAD" --socket "$sock" --size $SIZE --rw randread --qd 1 \
      --seconds "$LOAD_SECONDS" > "$work/load-vdisk-$made.out" 2>&1 &
    pids+=($!)
  done
  sleep 3
  for f in "$work"/load-vdisk-*.out; do
    if [[ -s $f ]]; then echo "memory: a front end stopped: $(cat "$f")" >&2; exit 1; fi
  done
  vd_rss[$n]=$(rss_kib "$csi_pid")
  vd_pss[$n]=$(pss_kib "$csi_pid")
  c0=$(awk '{print $14 + $15}' "/proc/$csi_pid/stat"); sleep 1; c1=$(awk '{print $14 + $15}' "/proc/$csi_pid/stat")
  echo "memory: vdisk-csi with $n busy exports: RSS ${vd_rss[$n]} KiB, PSS ${vd_pss[$n]} KiB," \
    "$(ls "/proc/$csi_pid/task" | wc -l) threads, $((c1 - c0)) CPU ticks in 1 s (busy: > 0)" >&2
done
for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
wait "${pids[@]}" 2>/dev/null || true
pids=()

# qemu-storage-daemon: one per disk, each with a busy front end.
declare -a q_pids
started=0
for n in $COUNTS; do
  while (( started < n )); do
    started=$((started + 1))
    f=$work/qsd-$started.img
    truncate -s $SIZE "$f"
    s=$sockdir/q$started.sock
    qemu-storage-daemon --blockdev "driver=file,node-name=f0,filename=$f,aio=io_uring,cache.direct=on" \
      --export "type=vhost-user-blk,id=e0,node-name=f0,addr.type=unix,addr.path=$s,writable=on" \
      > "$work/qsd-$started.log" 2>&1 &
    q_pids+=($!)
    pids+=($!)
    for _ in $(seq 100); do [[ -S $s ]] && break; sleep 0.1; done
    "$LOAD" --socket "$s" --size $SIZE --rw randread --qd 1 --seconds "$LOAD_SECONDS" \
      > "$work/load-qsd-$started.out" 2>&1 &
    pids+=($!)
  done
  sleep 3
  sum=0 psum=0 per=()
  for p in "${q_pids[@]}"; do
    r=$(rss_kib "$p"); sum=$((sum + r)); psum=$((psum + $(pss_kib "$p"))); per+=("$r")
  done
  one=$(printf '%s\n' "${per[@]}" | median)
  echo "memory: $n qemu-storage-daemons with busy front ends: RSS sum $sum KiB (one: median $one, $(printf '%s\n' "${per[@]}" | minmax | tr ' ' '-')), PSS sum $psum KiB" >&2
  bench_line "memory-exports-$n" KiB "${vd_rss[$n]}" "$n x qemu-storage-daemon (RSS sum)" "$sum" 0
  bench_line "memory-exports-$n-pss" KiB "${vd_pss[$n]}" "$n x qemu-storage-daemon (PSS sum)" "$psum" 0
  per_export=$(( (vd_rss[$n] - idle) / n ))
  bench_line "memory-per-export-$n" KiB "$per_export" "qemu-storage-daemon per disk (RSS)" "$one" 0 1.0
done
