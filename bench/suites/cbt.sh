#!/usr/bin/env bash
# bench/run.sh cbt: changed-block tracking through vdisk-csi's SnapshotMetadata service
# (`vdisk snapshot changes --base`, one GetMetadataDelta stream read to its end), against what a
# backup tool does without it, on the same snapshots in the same run:
#
#  cbt-delta-rbd    a 100 GiB thin RBD image (object map + fast-diff, the pool's default
#                   features) with 2 GiB of data, then about 1% of it rewritten (1 GiB of 4 MiB
#                   random writes, `rbd bench`) between two snapshots; peer: `rbd diff --from-snap
#                   --whole-object` (the same whole-object map from fast-diff, as JSON). The exact
#                   (per-extent) `rbd diff` is timed once for reference. Fits the test cluster's
#                   10 GiB OSD: only written objects take space.
#  cbt-delta-rbd-service  the same delta with both sides long-lived, so only the work per call
#                   is timed: `vdisk snapshot changes --repeat` (calls over one gRPC connection)
#                   against bench/tools/rbd_diff_loop.cc (one cluster connection; per call open
#                   the image, rbd_diff_iterate2 whole-object, close) — what a backup agent that
#                   links librbd itself does. 2 x 2*VDISK_BENCH_PAIRS calls each, blocks in
#                   alternating order.
#  cbt-delta-local  a local pool on a reflink XFS (tests/env/xfs.sh, sparse image under the
#                   bench dir): a 16 GiB volume with 4 GiB of data, 1% of the volume (164 MiB,
#                   64 KiB writes spread evenly) rewritten between two snapshots; vdisk answers
#                   from FIEMAP (shared extents); peer: read both snapshot images and compare them
#                   4 KiB by 4 KiB (bench/tools/cmp_ranges.cc, O_DIRECT), what a tool without
#                   CBT does.
# Times are wall clock of the client commands, process start-up included on both sides (vdisk
# CLI + gRPC to the running vdisk-csi; rbd CLI + cluster connect). Median of VDISK_BENCH_PAIRS
# (default 5) A-B pairs, alternating which goes first; the spread is printed on stderr.
#
# Environment: VDISK_BUILD (build dir), VDISK_BENCH_DIR (work dir, default the build dir),
# VDISK_BENCH_PAIRS, VDISK_CBT_SKIP_RBD=1 / VDISK_CBT_SKIP_LOCAL=1. Needs root (loop mounts).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
source "$here/lib.sh"
VDISK=${VDISK:-$VDISK_BUILD/cli/vdisk}
CSI=${VDISK_CSI:-$VDISK_BUILD/csi/vdisk-csi}
CMP=${VDISK_CMP:-$VDISK_BUILD/bench/tools/vdisk_cmp_ranges}
LOOP=${VDISK_RBD_DIFF_LOOP:-$VDISK_BUILD/bench/tools/vdisk_rbd_diff_loop}
PAIRS=${VDISK_BENCH_PAIRS:-5}
for b in "$VDISK" "$CSI" "$CMP" "$LOOP"; do
  [[ -x $b ]] || { echo "cbt.sh: build $b first (VDISK_BUILD=$VDISK_BUILD)" >&2; exit 1; }
done
bench_need jq

work=$(mktemp -d "${VDISK_BENCH_DIR:-$VDISK_BUILD}/bench-cbt.XXXXXX")
sockdir=$(mktemp -d /tmp/vdisk-cbt-bench.XXXXXX)
csi_pid=
ceph_up=
xfs_mnt=$work/xfs
cleanup() {
  [[ -n $csi_pid ]] && kill "$csi_pid" 2>/dev/null && wait "$csi_pid" 2>/dev/null || true
  [[ -n $ceph_up ]] && "$VDISK_SRC/tests/env/ceph.sh" down "$work/ceph" >/dev/null 2>&1 || true
  "$VDISK_SRC/tests/env/xfs.sh" down "$xfs_mnt" >/dev/null 2>&1 || true
  rm -rf "$work" "$sockdir"
}
trap cleanup EXIT
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.3f", b-a}'; }
spread() { sort -g | awk '{v[NR]=$1} END{if (NR) printf "min %s max %s", v[1], v[NR]}'; }
echo "cbt: $(date -u +%FT%TZ) $(uname -r), $(nproc) cpus, load $(cut -d' ' -f1-3 /proc/loadavg)" >&2

start_csi() {  # pool flags...
  "$CSI" --endpoint "unix://$sockdir/csi.sock" --node-id bench --state-dir "$work/state" \
    --snapshot-metadata "$@" >"$work/csi.log" 2>&1 &
  csi_pid=$!
  for _ in $(seq 200); do [[ -S $sockdir/csi.sock ]] && break; sleep 0.1; done
  [[ -S $sockdir/csi.sock ]] || { echo "cbt.sh: vdisk-csi did not start:" >&2; tail -5 "$work/csi.log" >&2; exit 1; }
}
stop_csi() { kill "$csi_pid"; wait "$csi_pid" 2>/dev/null || true; csi_pid=; }
V() { "$VDISK" "$@" --endpoint "unix://$sockdir/csi.sock"; }
# One timed delta: prints "<seconds> <bytes>".
vdisk_delta() {  # base target
  local t0 t1 out
  t0=$(now); out=$(V snapshot changes "$2" --base "$1" --summary --json); t1=$(now)
  echo "$(elapsed "$t0" "$t1") $(jq .bytes <<<"$out")"
}

# ---------------------------------------------------------------------------------------------
if [[ ${VDISK_CBT_SKIP_RBD:-0} != 1 ]]; then
  "$VDISK_SRC/tests/env/ceph.sh" up "$work/ceph" >&2
  ceph_up=1
  # shellcheck disable=SC1091
  source "$work/ceph/rbd.env"
  R=(rbd -c "$CEPH_CONF" --id "$CEPH_DRIVER_USER")
  start_csi --pool "name=ceph,kind=rbd,conf=$CEPH_CONF,user=$CEPH_DRIVER_USER,keyring=$CEPH_DRIVER_KEYRING,rbd_pool=$RBD_POOL,overprovisioning=off"
  j=$(V volume create cbt-100g --size 100G --mode block --access rwo --pool ceph --json)
  vid=$(jq -r .volume_id <<<"$j"); img=$(jq -r .volume_context.rbdImage <<<"$j")
  "${R[@]}" bench --io-type write --io-pattern rand --io-size 4M --io-threads 16 --io-total 2G \
    --rbd-cache=false "$img" >/dev/null
  s1=$(V snapshot create cbt-s1 --volume "$vid" --json | jq -r .snapshot_id)
  "${R[@]}" bench --io-type write --io-pattern rand --io-size 4M --io-threads 16 --io-total 1G \
    --rbd-cache=false "$img" >/dev/null
  s2=$(V snapshot create cbt-s2 --volume "$vid" --json | jq -r .snapshot_id)
  snap1=${s1##*.}; snap2=${s2##*.}
  echo "cbt: rbd image $img (100 GiB), snapshots $snap1 -> $snap2; used $("${R[@]}" du "$img" 2>/dev/null | awk 'END{print $3, $4}')" >&2
  peer_rbd() {
    local t0 t1 out
    t0=$(now); out=$("${R[@]}" diff --from-snap "$snap1" --whole-object --format json "$img@$snap2"); t1=$(now)
    echo "$(elapsed "$t0" "$t1") $(jq '[.[] | select(.exists == "true" or .exists == true) | .length] | add // 0' <<<"$out")"
  }
  vs=() ps=()
  for i in $(seq "$PAIRS"); do
    if (( i % 2 )); then a=$(vdisk_delta "$s1" "$s2"); b=$(peer_rbd); else b=$(peer_rbd); a=$(vdisk_delta "$s1" "$s2"); fi
    vs+=("${a% *}"); ps+=("${b% *}")
    echo "cbt: rbd pair $i: vdisk ${a% *} s (${a#* } bytes) rbd diff ${b% *} s (${b#* } bytes)" >&2
  done
  t0=$(now); "${R[@]}" diff --from-snap "$snap1" --format json "$img@$snap2" >/dev/null; t1=$(now)
  echo "cbt: rbd exact (per-extent) diff, for reference: $(elapsed "$t0" "$t1") s" >&2
  echo "cbt: rbd vdisk $(printf '%s\n' "${vs[@]}" | spread) / rbd diff $(printf '%s\n' "${ps[@]}" | spread)" >&2
  bench_line cbt-delta-rbd s "$(printf '%s\n' "${vs[@]}" | median)" "rbd diff --from-snap --whole-object" \
    "$(printf '%s\n' "${ps[@]}" | median)" 0
  # Service level: both sides long-lived (one gRPC connection / one cluster connection), so
  # process start-up (the vdisk CLI's ~100 ms of dynamic linking, the rbd CLI's connect) is out.
  rounds=$(( PAIRS * 2 ))
  vs=() ps=()
  for blk in 1 2; do
    vdisk_rounds() { V snapshot changes "$s2" --base "$s1" --summary --json --repeat "$rounds" | jq -r '.seconds[] * 1000'; }
    peer_rounds() { "$LOOP" "$CEPH_CONF" "$CEPH_DRIVER_USER" "$RBD_POOL" "$img" "$snap1" "$snap2" "$rounds" |
                    sed -n 's/^seconds=\([0-9.]*\).*/\1/p' | awk '{printf "%.3f\n", $1 * 1000}'; }
    if (( blk == 1 )); then mapfile -t -O "${#vs[@]}" vs < <(vdisk_rounds); mapfile -t -O "${#ps[@]}" ps < <(peer_rounds)
    else mapfile -t -O "${#ps[@]}" ps < <(peer_rounds); mapfile -t -O "${#vs[@]}" vs < <(vdisk_rounds); fi
  done
  "$LOOP" "$CEPH_CONF" "$CEPH_DRIVER_USER" "$RBD_POOL" "$img" "$snap1" "$snap2" 1 | sed 's/^/cbt: librbd loop: /' >&2
  echo "cbt: rbd service level, ${#vs[@]} calls each (ms): vdisk GetMetadataDelta $(printf '%s\n' "${vs[@]}" | spread) / librbd open+diff_iterate2 $(printf '%s\n' "${ps[@]}" | spread)" >&2
  bench_line cbt-delta-rbd-service ms "$(printf '%s\n' "${vs[@]}" | median)" \
    "librbd open + rbd_diff_iterate2(whole_object), long-lived" "$(printf '%s\n' "${ps[@]}" | median)" 0
  stop_csi
  "$VDISK_SRC/tests/env/ceph.sh" down "$work/ceph" >&2
  ceph_up=
fi

# ---------------------------------------------------------------------------------------------
if [[ ${VDISK_CBT_SKIP_LOCAL:-0} != 1 ]]; then
  "$VDISK_SRC/tests/env/xfs.sh" up "$work/xfs.img" "$xfs_mnt" 40G >&2
  start_csi --pool "name=xfs,kind=local,reflink=on,root=$xfs_mnt/pool"
  j=$(V volume create cbt-local --size 16G --mode block --access rwo --pool xfs --json)
  vid=$(jq -r .volume_id <<<"$j")
  local_id=${vid#v1.vol.xfs.}
  image=$xfs_mnt/pool/volumes/$local_id/disk.img
  [[ -f $image ]] || { echo "cbt.sh: no image at $image" >&2; exit 1; }
  # 4 GiB of data, then 1% of the volume rewritten in 64 KiB pieces spread over it.
  dd if=/dev/urandom of="$image" bs=4M count=1024 seek=512 oflag=direct conv=notrunc status=none
  s1=$(V snapshot create cbt-l1 --volume "$vid" --json | jq -r .snapshot_id)
  step=$(( 16 * 1024 * 1024 * 1024 / 2624 / 65536 ))   # 2624 x 64 KiB = 164 MiB = 1%
  for k in $(seq 0 2623); do
    dd if=/dev/urandom of="$image" bs=64K count=1 seek=$(( k * step )) oflag=direct conv=notrunc status=none
  done
  s2=$(V snapshot create cbt-l2 --volume "$vid" --json | jq -r .snapshot_id)
  img1=$xfs_mnt/pool/snapshots/${s1#v1.snap.xfs.}/disk.img
  img2=$xfs_mnt/pool/snapshots/${s2#v1.snap.xfs.}/disk.img
  peer_cmp() {
    local out
    out=$("$CMP" "$img1" "$img2")
    echo "$(sed -n 's/.*seconds=\([0-9.]*\).*/\1/p' <<<"$out") $(sed -n 's/.*changed_bytes=\([0-9]*\).*/\1/p' <<<"$out")"
  }
  vs=() ps=()
  lpairs=$(( PAIRS < 3 ? PAIRS : 3 ))  # the peer reads 32 GiB per run
  for i in $(seq "$lpairs"); do
    if (( i % 2 )); then a=$(vdisk_delta "$s1" "$s2"); b=$(peer_cmp); else b=$(peer_cmp); a=$(vdisk_delta "$s1" "$s2"); fi
    vs+=("${a% *}"); ps+=("${b% *}")
    echo "cbt: local pair $i: vdisk ${a% *} s (${a#* } bytes) read+compare ${b% *} s (${b#* } bytes changed)" >&2
  done
  echo "cbt: local vdisk $(printf '%s\n' "${vs[@]}" | spread) / read+compare $(printf '%s\n' "${ps[@]}" | spread)" >&2
  bench_line cbt-delta-local s "$(printf '%s\n' "${vs[@]}" | median)" "read both snapshots and compare" \
    "$(printf '%s\n' "${ps[@]}" | median)" 0
  stop_csi
fi
