#!/usr/bin/env bash
# bench/run.sh rbd: the librbd Device vs `rbd bench`, and RBD snapshot / clone / flatten through
# vdisk-csi vs the rbd CLI, on a single-node Ceph this suite starts itself (tests/env/ceph.sh)
# and removes afterwards.
#
#  I/O   `vdisk bench io --uri rbd:...` vs `rbd bench` on the same fully written 1 GiB image,
#        same io size, same queue depth (rbd bench --io-threads = I/Os in flight), both with
#        rbd_cache=false (every write reaches the OSD; librbd's default cache would acknowledge
#        depth-1 writes from client memory). VDISK_BENCH_PAIRS A/B pairs (order alternating),
#        medians and min-max (bench/lib.sh). rbd bench has no time limit:
#        its --io-total is sized from vdisk's rate to run about as long. Sequential workloads
#        use rbd bench --io-pattern full-seq (one stream, like vdisk's), not its default "seq".
#  clone time of CreateVolume from a snapshot of a 1 GiB and a 10 GiB volume (each with the
#        same 256 MiB of data) through `vdisk clone` -> vdisk-csi -> the rbd pool, vs
#        `rbd clone` of the same snapshots; clone time must not depend on the size.
#  snapshot / clone-from-volume / flatten: `vdisk snapshot create` vs `rbd snap create`;
#        `vdisk clone --from-volume` (hidden snapshot + clone) vs `rbd snap create && rbd clone`;
#        a restore past the hard depth limit (cloneHardDepth=0: CreateVolume returns after the
#        flatten) vs `rbd clone && rbd flatten`, on a 1 GiB image holding 1 GiB of data.
# CLI lines include process start-up on both sides (vdisk CLI + gRPC, rbd CLI + cluster
# connect); the vdisk CLI is a large C++ binary (~55 ms to start here, rbd ~30 ms). The -rpc
# lines compare what a CO waits for, the CSI call as vdisk-csi timed it (its log's
# rpc=... ms=), with the same librbd work in an already connected client
# (bench/tools/rbd_bare.py: open + snap create + close; clone): the driver's own overhead.
# The -overhead lines are that difference in ms against the 20 ms budget (ratio = 20 / ms).
#
# Environment: VDISK_BENCH_RUNTIME (s per I/O run, default 5), VDISK_BUILD (build dir with
# cli/vdisk and csi/vdisk-csi), VDISK_BENCH_DIR (where the cluster lives; default the build dir).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
source "$here/lib.sh"
VDISK=${VDISK:-$VDISK_BUILD/cli/vdisk}
CSI=${VDISK_CSI:-$VDISK_BUILD/csi/vdisk-csi}
RUNTIME=${VDISK_BENCH_RUNTIME:-5}
[[ -x $VDISK && -x $CSI ]] || { echo "rbd.sh: build cli/vdisk and csi/vdisk-csi first (VDISK_BUILD=$VDISK_BUILD)" >&2; exit 1; }
bench_need jq

work=$(mktemp -d "${VDISK_BENCH_DIR:-$VDISK_BUILD}/bench-rbd.XXXXXX")
ceph_dir=$work/ceph
csi_pid=
cleanup() {
  [[ -n $csi_pid ]] && kill "$csi_pid" 2>/dev/null && wait "$csi_pid" 2>/dev/null || true
  "$VDISK_SRC/tests/env/ceph.sh" down "$ceph_dir" || true
  rm -rf "$work"
}
trap cleanup EXIT

"$VDISK_SRC/tests/env/ceph.sh" up "$ceph_dir" >&2
# shellcheck disable=SC1091
source "$ceph_dir/rbd.env"
R=(rbd -c "$CEPH_CONF" --id "$CEPH_DRIVER_USER")
CREDS="conf=$CEPH_CONF&id=$CEPH_DRIVER_USER&keyring=$CEPH_DRIVER_KEYRING"
echo "rbd: cluster $ceph_dir, $RUNTIME s per I/O run" >&2
bench_context

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.3f", b-a}'; }

# ---------------------------------------------------------------------------------------------
# I/O: librbd Device vs rbd bench.
img=bench-io
"${R[@]}" create -s 1G "$img"
"${R[@]}" bench --io-type write --io-pattern seq --io-size 4M --io-threads 16 --io-total 1G \
  --rbd-cache=false "$img" >/dev/null
# One full read first, so neither side's first run pays for a cold OSD cache.
"${R[@]}" bench --io-type read --io-pattern seq --io-size 4M --io-threads 16 --io-total 1G \
  --rbd-cache=false "$img" >/dev/null
uri="rbd:$RBD_POOL/$img?$CREDS&cache=false"

run_vdisk() {  # rw bs qd -> IOPS
  "$VDISK" bench io --uri "$uri" --rw "$1" --bs "$2" --qd "$3" --runtime "$RUNTIME" --json | jq .iops
}
run_rbd() {  # rw bs qd iops-guess -> IOPS
  local rw=$1 bs=$2 qd=$3 guess=$4 type pattern bytes total
  type=$([[ $rw == *read ]] && echo read || echo write)
  # full-seq: one sequential stream, as vdisk's read/write; rbd bench's "seq" gives each of its
  # --io-threads its own stream in its own part of the image (other objects, other PGs), which
  # is a different workload (~1.6x faster on one OSD: no two I/Os share an object).
  pattern=$([[ $rw == rand* ]] && echo rand || echo full-seq)
  bytes=$(numfmt --from=iec "${bs^^}")
  total=$(awk -v i="$guess" -v t="$RUNTIME" -v b="$bytes" 'BEGIN{n=int(i*t); if (n<256) n=256; printf "%d", n*b}')
  "${R[@]}" bench --io-type "$type" --io-pattern "$pattern" --io-size "${bs^^}" --io-threads "$qd" \
    --io-total "$total" --rbd-cache=false "$img" 2>&1 | awk '/^elapsed:/ {print $6}'
}

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
  vs=() ps=()
  for p in $(seq "$BENCH_PAIRS"); do
    if (( p % 2 )); then
      v=$(run_vdisk "$rw" "$bs" "$qd"); r=$(run_rbd "$rw" "$bs" "$qd" "$v")
    else
      r=$(run_rbd "$rw" "$bs" "$qd" "${vs[0]}"); v=$(run_vdisk "$rw" "$bs" "$qd")
    fi
    vs+=("$(awk -v a="$v" 'BEGIN{printf "%.1f", a}')"); ps+=("$(awk -v a="$r" 'BEGIN{printf "%.1f", a}')")
  done
  pairs_line "rbd-$name" "$unit" "rbd bench" 1 "${vs[*]}" "${ps[*]}" 0.9
done
"${R[@]}" rm "$img" >/dev/null 2>&1

# ---------------------------------------------------------------------------------------------
# Control plane through vdisk-csi.
sock=$(mktemp -d /tmp/vdisk-rbd-bench.XXXXXX)/csi.sock
"$CSI" --endpoint "unix://$sock" --node-id bench --state-dir "$work/state" \
  --pool "name=ceph,kind=rbd,conf=$CEPH_CONF,user=$CEPH_DRIVER_USER,keyring=$CEPH_DRIVER_KEYRING,rbd_pool=$RBD_POOL,overprovisioning=off" \
  -v >"$work/csi.log" 2>&1 &
csi_pid=$!
for _ in $(seq 100); do [[ -S $sock ]] && break; sleep 0.1; done
vol() { "$VDISK" volume create "$@" --endpoint "unix://$sock" --json --pool ceph; }
image_of() { jq -r '.volume_context.rbdImage // .context.rbdImage // empty'; }
id_of() { jq -r '.volume_id // .id'; }
fill() {  # image bytes
  "${R[@]}" bench --io-type write --io-pattern seq --io-size 4M --io-threads 16 --io-total "$2" \
    --rbd-cache=false "$1" >/dev/null
}

rpc_ms() {  # <rpc name>: the last such call's time as vdisk-csi logged it
  grep -o "rpc=$1 code=OK ms=[0-9.]*" "$work/csi.log" | tail -1 | sed 's/.*ms=//'
}
bare() { /usr/bin/python3 "$here/tools/rbd_bare.py" "$CEPH_CONF" "$CEPH_DRIVER_USER" "$CEPH_DRIVER_KEYRING" "$RBD_POOL" "$@"; }
overhead_line() {  # <name> "<vdisk rpc ms>" "<bare ms>": the driver's extra ms against 20 ms
  local -a a b
  read -r -a a <<<"$2"; read -r -a b <<<"$3"
  local d=() i
  for i in "${!a[@]}"; do d+=("$(awk -v x="${a[$i]}" -v y="${b[$i]}" 'BEGIN{v = x - y; if (v < 0.1) v = 0.1; printf "%.1f", v}')"); done
  local budget=()
  for i in "${!d[@]}"; do budget+=(20); done
  pairs_line "$1" "ms over librbd" "budget" 0 "${d[*]}" "${budget[*]}" 1.0
}

# Clone of a 1 GiB and a 10 GiB volume: same data, time should not follow the size.
for size in 1G 10G; do
  j=$(vol "src-$size" --size "$size")
  id=$(id_of <<<"$j"); image=$(image_of <<<"$j")
  fill "$image" 256M
  snap=$("$VDISK" snapshot create "snap-$size" --volume "$id" --endpoint "unix://$sock" --json | jq -r '.snapshot_id // .id')
  "${R[@]}" snap create "$image@peer" >/dev/null 2>&1
  vs=() ps=() rpcs=() bares=()
  for p in $(seq "$BENCH_PAIRS"); do
    t0=$(now)
    "$VDISK" clone "clone-$size-$p" --from-snapshot "$snap" --endpoint "unix://$sock" --json >/dev/null
    t1=$(now)
    "${R[@]}" clone "$image@peer" "peer-clone-$size-$p" >/dev/null
    t2=$(now)
    vs+=("$(elapsed "$t0" "$t1")"); ps+=("$(elapsed "$t1" "$t2")")
    rpcs+=("$(rpc_ms CreateVolume)"); bares+=("$(bare clone "$image" peer "bare-clone-$size-$p")")
  done
  pairs_line "rbd-clone-$size" s "rbd clone" 0 "${vs[*]}" "${ps[*]}"
  pairs_line "rbd-clone-$size-rpc" ms "librbd clone (connected)" 0 "${rpcs[*]}" "${bares[*]}"
  [[ $size == 1G ]] && overhead_line rbd-clone-overhead "${rpcs[*]}" "${bares[*]}"
  eval "clone_$size=$(printf '%s\n' "${vs[@]}" | median)"
done
bench_line "rbd-clone-10g-vs-1g" "ratio" "$(awk -v a="$clone_10G" -v b="$clone_1G" 'BEGIN{printf "%.3f", a/b}')" "ideal" 1 0

# Snapshot, clone from a volume, flatten: 1 GiB of data.
j=$(vol flat-src --size 1G)
id=$(id_of <<<"$j"); image=$(image_of <<<"$j")
fill "$image" 1G
vs=() ps=() rpcs=() bares=()
for p in $(seq "$BENCH_PAIRS"); do
  t0=$(now); snap=$("$VDISK" snapshot create "flat-snap-$p" --volume "$id" --endpoint "unix://$sock" --json | jq -r '.snapshot_id // .id'); t1=$(now)
  "${R[@]}" snap create "$image@peer-snap-$p" >/dev/null 2>&1; t2=$(now)
  vs+=("$(elapsed "$t0" "$t1")"); ps+=("$(elapsed "$t1" "$t2")")
  rpcs+=("$(rpc_ms CreateSnapshot)"); bares+=("$(bare snapshot "$image" "bare-snap-$p")")
done
pairs_line rbd-snapshot s "rbd snap create" 0 "${vs[*]}" "${ps[*]}"
pairs_line rbd-snapshot-rpc ms "librbd snap create (connected)" 0 "${rpcs[*]}" "${bares[*]}"
overhead_line rbd-snapshot-overhead "${rpcs[*]}" "${bares[*]}"

vs=() ps=()
for p in $(seq "$BENCH_PAIRS"); do
  t0=$(now); "$VDISK" clone "vclone-$p" --from-volume "$id" --endpoint "unix://$sock" --json >/dev/null; t1=$(now)
  "${R[@]}" snap create "$image@peer-vclone-$p" >/dev/null 2>&1; "${R[@]}" clone "$image@peer-vclone-$p" "peer-vclone-$p" >/dev/null; t2=$(now)
  vs+=("$(elapsed "$t0" "$t1")"); ps+=("$(elapsed "$t1" "$t2")")
done
pairs_line rbd-clone-from-volume s "rbd snap create + clone" 0 "${vs[*]}" "${ps[*]}"

vs=() ps=()
for p in $(seq "$BENCH_PAIRS"); do
  t0=$(now)
  "$VDISK" clone "flat-restore-$p" --from-snapshot "$snap" --param cloneHardDepth=0 --endpoint "unix://$sock" --json >/dev/null
  t1=$(now)
  "${R[@]}" clone "$image@peer-snap-1" "peer-flat-$p" >/dev/null; "${R[@]}" flatten "peer-flat-$p" >/dev/null 2>&1; t2=$(now)
  vs+=("$(elapsed "$t0" "$t1")"); ps+=("$(elapsed "$t1" "$t2")")
done
pairs_line rbd-restore-flatten-1g s "rbd clone + flatten" 0 "${vs[*]}" "${ps[*]}"
