#!/usr/bin/env bash
# bench/run.sh iscsi: the libiscsi Device and the iSCSI pool against QEMU's own iSCSI client, on
# a tgtd this suite starts itself (tests/env/tgt.sh: its own -C number and port, backing files on
# a reflink XFS image) and removes afterwards.
#
#  iscsi-io-*   `vdisk bench io --uri iscsi://...` vs `qemu-img bench` over iscsi:// (QEMU's
#               libiscsi driver) on the same fully written 1 GiB LUN, same block size, same
#               queue depth, same direction. qemu-img bench only does sequential I/O, so both
#               sides run sequential workloads. qemu-img bench -c is sized from vdisk's rate to
#               run about as long. A-B-B-A per round, VDISK_BENCH_ROUNDS rounds, median.
#  iscsi-clone  CreateVolume from a snapshot through `vdisk clone` -> vdisk-csi -> the iscsi
#               pool (target-side reflink: no data through the initiator) vs the host copy a
#               client does without offload, `qemu-img convert -n` from the source LUN into an
#               empty LUN of the same size, for a 10 GiB LUN holding 1 GiB (and a 1 GiB LUN
#               with the same 1 GiB, to show the offload does not follow the size).
#  iscsi-copy   `vdisk copy iscsi://src iscsi://dst` (sparse by GET LBA STATUS, zeroes not
#               written, at depth, final SYNCHRONIZE CACHE) vs `qemu-img convert -n -f raw -O raw`
#               between the same two LUNs (QEMU also skips unmapped ranges via GET LBA STATUS),
#               10 GiB LUN holding 1 GiB; the destination is emptied (WRITE SAME/UNMAP) before
#               every run.
# Times include process start-up on both sides. EXTENDED COPY is not measured: tgt has none.
#
# Environment: VDISK_BENCH_RUNTIME (s per I/O run, default 5), VDISK_BENCH_ROUNDS (default 3),
# VDISK_BENCH_PARTS (default "io copy clone"), VDISK_BUILD (build dir with cli/vdisk and
# csi/vdisk-csi), VDISK_BENCH_DIR (work dir parent).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
source "$here/lib.sh"
VDISK=${VDISK:-$VDISK_BUILD/cli/vdisk}
CSI=${VDISK_CSI:-$VDISK_BUILD/csi/vdisk-csi}
RUNTIME=${VDISK_BENCH_RUNTIME:-5}
ROUNDS=${VDISK_BENCH_ROUNDS:-3}
PARTS=" ${VDISK_BENCH_PARTS:-io copy clone} "
part() { [[ $PARTS == *" $1 "* ]]; }
[[ -x $VDISK && -x $CSI ]] || { echo "iscsi.sh: build cli/vdisk and csi/vdisk-csi first (VDISK_BUILD=$VDISK_BUILD)" >&2; exit 1; }
bench_need jq
bench_need qemu-img "qemu-utils, qemu-block-extra"

work=$(mktemp -d "${VDISK_BENCH_DIR:-$VDISK_BUILD}/bench-iscsi.XXXXXX")
tgt_dir=$work/tgt
csi_pid=
cleanup() {
  [[ -n $csi_pid ]] && kill "$csi_pid" 2>/dev/null && wait "$csi_pid" 2>/dev/null || true
  "$VDISK_SRC/tests/env/tgt.sh" down "$tgt_dir" >&2 || true
  rm -rf "$work"
}
trap cleanup EXIT

"$VDISK_SRC/tests/env/tgt.sh" up "$tgt_dir" 40G >&2
# shellcheck disable=SC1091
source "$tgt_dir/tgt.env"
ADM=(tgtadm -C "$TGT_CONTROL" --lld iscsi)
echo "iscsi: tgtd -C $TGT_CONTROL at $TGT_PORTAL, backing $TGT_BACKING, $RUNTIME s per I/O run, $ROUNDS rounds," \
  "$(uname -r), $(nproc) cpus, load $(cut -d' ' -f1-3 /proc/loadavg)" >&2

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.3f", b-a}'; }

# A LUN of our own for the I/O and copy runs: target <iqn>, LUN 1, thin, any initiator. Target ids
# 801-903 (the pool of the clone runs numbers its targets after the highest one in use).
lun() {  # name size tid -> iscsi:// URI
  local name=$1 size=$2 tid=$3 iqn="iqn.2024-01.io.vdisk.bench:$1"
  truncate -s "$size" "$TGT_BACKING/$name.img"
  "${ADM[@]}" --op new --mode target --tid "$tid" -T "$iqn"
  "${ADM[@]}" --op new --mode logicalunit --tid "$tid" --lun 1 --bstype rdwr --backing-store "$TGT_BACKING/$name.img"
  "${ADM[@]}" --op update --mode logicalunit --tid "$tid" --lun 1 --params thin_provisioning=1
  "${ADM[@]}" --op bind --mode target --tid "$tid" -I ALL
  echo "iscsi://$TGT_PORTAL/$iqn/1"
}

# ---------------------------------------------------------------------------------------------
# I/O: the libiscsi Device vs qemu-img bench (QEMU's libiscsi driver).
if part io; then
io=$(lun bench-io 1G 901)
dd if=/dev/urandom of="$work/fill.img" bs=1M count=1024 status=none
"$VDISK" copy -q --no-discard "$work/fill.img" "$io" >/dev/null
rm -f "$work/fill.img"

run_vdisk() {  # rw bs qd -> IOPS
  "$VDISK" bench io --uri "$io" --rw "$1" --bs "$2" --qd "$3" --runtime "$RUNTIME" --json | jq .iops
}
run_qemu() {  # rw bs qd iops-guess -> IOPS
  local rw=$1 bs=$2 qd=$3 guess=$4 count t0 t1 w=()
  [[ $rw == write ]] && w=(-w)
  count=$(awk -v i="$guess" -v t="$RUNTIME" 'BEGIN{n=int(i*t); if (n<256) n=256; printf "%d", n}')
  # The 1 GiB LUN wraps: qemu-img bench steps through it sequentially (offset mod size).
  local bytes; bytes=$(numfmt --from=iec "${bs^^}")
  local max=$(( (1024 * 1024 * 1024) / bytes ))
  (( count > max )) && count=$max
  t0=$(now)
  qemu-img bench -f raw -t none -c "$count" -d "$qd" -s "$bs" "${w[@]}" "$io" >/dev/null
  t1=$(now)
  awk -v n="$count" -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", n/(b-a)}'
}

workloads=(
  "read-4k-qd1 read 4k 1 IOPS"
  "read-4k-qd32 read 4k 32 IOPS"
  "write-4k-qd1 write 4k 1 IOPS"
  "write-4k-qd32 write 4k 32 IOPS"
  "read-1m-qd8 read 1M 8 MiB/s"
  "write-1m-qd8 write 1M 8 MiB/s"
)
for w in "${workloads[@]}"; do
  read -r name rw bs qd unit <<<"$w"
  vs=() ps=()
  for _ in $(seq "$ROUNDS"); do
    v1=$(run_vdisk "$rw" "$bs" "$qd"); p1=$(run_qemu "$rw" "$bs" "$qd" "$v1")
    p2=$(run_qemu "$rw" "$bs" "$qd" "$v1"); v2=$(run_vdisk "$rw" "$bs" "$qd")
    vs+=("$v1" "$v2"); ps+=("$p1" "$p2")
  done
  v=$(printf '%s\n' "${vs[@]}" | median); p=$(printf '%s\n' "${ps[@]}" | median)
  echo "iscsi: $name vdisk ${vs[*]} qemu-img-bench ${ps[*]}" >&2
  bench_line "iscsi-io-$name" "$unit" "$v" "qemu-img bench" "$p" 1
done
fi

# ---------------------------------------------------------------------------------------------
# Copy: vdisk's sparse host copy vs qemu-img convert, iscsi -> iscsi, 10 GiB holding 1 GiB.
# (the copy source is also the clone section's data)
src=$(lun copy-src 10G 902)
dst=$(lun copy-dst 10G 903)
# 1 GiB of data in 16 runs of 64 MiB spread over the 10 GiB.
truncate -s 10G "$work/data.img"
for i in $(seq 0 15); do
  dd if=/dev/urandom of="$work/data.img" bs=1M count=64 seek=$((i * 640)) conv=notrunc status=none
done
"$VDISK" copy -q --no-discard "$work/data.img" "$src" >/dev/null
rm -f "$work/data.img"
truncate -s 10G "$work/empty.img"
# Empties the destination: a copy of an empty image discards whatever GET LBA STATUS says is mapped.
empty_dst() { "$VDISK" copy -q "$work/empty.img" "$dst" >/dev/null; }
if part copy; then
vs=() ps=()
for _ in $(seq "$ROUNDS"); do
  empty_dst; t0=$(now); "$VDISK" copy -q "$src" "$dst" >/dev/null; t1=$(now); v1=$(elapsed "$t0" "$t1")
  empty_dst; t0=$(now); qemu-img convert -n -f raw -O raw "$src" "$dst"; t1=$(now); p1=$(elapsed "$t0" "$t1")
  empty_dst; t0=$(now); qemu-img convert -n -f raw -O raw "$src" "$dst"; t1=$(now); p2=$(elapsed "$t0" "$t1")
  empty_dst; t0=$(now); "$VDISK" copy -q "$src" "$dst" >/dev/null; t1=$(now); v2=$(elapsed "$t0" "$t1")
  vs+=("$v1" "$v2"); ps+=("$p1" "$p2")
done
qemu-img compare -f raw -F raw "$src" "$dst" >/dev/null || { echo "iscsi: copy differs from its source" >&2; exit 3; }
echo "iscsi: copy-10g-1g vdisk ${vs[*]} qemu-img-convert ${ps[*]}" >&2
bench_line iscsi-copy-10g-1g s "$(printf '%s\n' "${vs[@]}" | median)" "qemu-img convert" "$(printf '%s\n' "${ps[@]}" | median)" 0
fi
part clone || exit 0

# ---------------------------------------------------------------------------------------------
# Clone: target-side offload through vdisk-csi vs a host copy between LUNs.
sock=$(mktemp -d /tmp/vdisk-iscsi-bench.XXXXXX)/csi.sock
"$CSI" --endpoint "unix://$sock" --node-id bench --state-dir "$work/state" \
  --pool "name=iscsi,kind=iscsi,portal=$TGT_PORTAL,backing_dir=$TGT_BACKING/pool,tgt_control=$TGT_CONTROL,acl=open,export_check=0" \
  >"$work/csi.log" 2>&1 &
csi_pid=$!
for _ in $(seq 100); do [[ -S $sock ]] && break; sleep 0.1; done
E=(--endpoint "unix://$sock")
for size in 1G 10G; do
  j=$("$VDISK" volume create "src-$size" --size "$size" --pool iscsi "${E[@]}" --json)
  id=$(jq -r '.volume_id // .id' <<<"$j")
  iqn=$(jq -r '.volume_context["iscsi.iqn"] // .context["iscsi.iqn"]' <<<"$j")
  vuri="iscsi://$TGT_PORTAL/$iqn/1"
  if [[ $size == 10G ]]; then
    "$VDISK" copy -q --no-discard "$src" "$vuri" >/dev/null  # the 1 GiB spread over 10 GiB
  else
    dd if=/dev/urandom of="$work/one.img" bs=1M count=1024 status=none
    "$VDISK" copy -q --no-discard "$work/one.img" "$vuri" >/dev/null
    rm -f "$work/one.img"
  fi
  snap=$("$VDISK" snapshot create "snap-$size" --volume "$id" "${E[@]}" --json | jq -r '.snapshot_id // .id')
  peer_dst=$(lun "peer-${size,,}" "$size" "$([[ $size == 1G ]] && echo 801 || echo 802)")
  vs=() ps=()
  for r in $(seq "$ROUNDS"); do
    t0=$(now); "$VDISK" clone "clone-$size-$r" --from-snapshot "$snap" "${E[@]}" --json >/dev/null; t1=$(now)
    vs+=("$(elapsed "$t0" "$t1")")
    truncate -s "$size" "$work/empty-$size.img"; "$VDISK" copy -q "$work/empty-$size.img" "$peer_dst" >/dev/null
    t0=$(now); qemu-img convert -n -f raw -O raw "$vuri" "$peer_dst"; t1=$(now)
    ps+=("$(elapsed "$t0" "$t1")")
  done
  vd=$(printf '%s\n' "${vs[@]}" | median); pr=$(printf '%s\n' "${ps[@]}" | median)
  echo "iscsi: clone-$size (1 GiB of data) vdisk ${vs[*]} qemu-img-convert ${ps[*]}" >&2
  bench_line "iscsi-clone-$size" s "$vd" "qemu-img convert (host copy)" "$pr" 0
  eval "clone_$size=$vd"
done
bench_line "iscsi-clone-10g-vs-1g" ratio "$(awk -v a="$clone_10G" -v b="$clone_1G" 'BEGIN{printf "%.3f", a/b}')" "ideal" 1 0
