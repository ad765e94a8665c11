#!/usr/bin/env bash
# bench/run.sh nfs: the libnfs Device and the NFS pool against QEMU's libnfs driver and against
# csi-driver-nfs's snapshot method, on an nfs-ganesha this suite starts itself
# (tests/env/ganesha.sh, 40 GiB sparse reflink XFS export) and removes afterwards. QEMU's nfs://
# driver cannot name ports, so the suite re-runs itself in a private network namespace
# (tests/env/netns.sh) with a real rpcbind (GANESHA_RPCBIND=1); both clients then ask rpcbind.
#
#  nfs-io-*       `vdisk bench io --uri nfs://...` vs `qemu-img bench -f raw -t none` over nfs://
#                 (QEMU 7.2's libnfs driver) on the same fully written 1 GiB image, same block
#                 size, queue depth and direction. qemu-img bench only does sequential I/O, so
#                 both sides do; its -c is sized from vdisk's rate to run about as long.
#  nfs-copy       `vdisk copy --no-discard nfs://src nfs://dst` (sparse host copy, zeroes
#                 become holes, final COMMIT) into a fresh empty image vs `qemu-img convert -f raw
#                 -O raw nfs://src nfs://dst` creating the destination (so QEMU knows it is zero
#                 and skips zeroes too), 8 GiB image holding 1 GiB. Page cache dropped before
#                 every run. Neither client has SEEK over NFSv3: both read all 8 GiB.
#  nfs-snapshot-* CreateSnapshot of an 8 GiB volume holding 1 GiB (and 2 GiB) through
#                 `vdisk snapshot create` -> vdisk-csi -> the nfs pool, with server-side reflink
#                 (local_path) and with the sparse libnfs host copy (reflink=off), vs what
#                 kubernetes-csi/csi-driver-nfs does on CreateSnapshot (pkg/nfs/controllerserver.go:
#                 `tar -C <volume dir> -czvf <share>/<snapshot>/<volume>.tar.gz .` on its mount of
#                 the share), here `tar -czf` and `tar -cf` of the same volume directory run on the
#                 server's own file system (no NFS hop: faster than the driver's way), archive
#                 fsync'ed. Page cache dropped before every run.
# Lines are pairs_line()s (bench/lib.sh) of VDISK_BENCH_PAIRS A/B pairs (A first in odd pairs, B
# first in even ones) with their targets: io 1.0, copy 1.2, snapshot vs tar -czf 10. Times
# include process start-up.
#
# Environment: VDISK_BENCH_PAIRS (3), VDISK_BENCH_RUNTIME (s per I/O run, 5),
# VDISK_BENCH_PARTS (default "io copy snapshot"), VDISK_BENCH_SNAP_DATA_GIB ("1 2"),
# VDISK_BUILD (build dir with cli/vdisk and csi/vdisk-csi), VDISK_BENCH_DIR (work dir parent).
set -euo pipefail
shopt -s inherit_errexit  # a failed tool inside $(...) stops the suite, never becomes a sample
here=$(cd "$(dirname "$0")/.." && pwd)
source "$here/lib.sh"
if [[ ${VDISK_IN_NETNS:-0} != 1 ]]; then
  exec "$VDISK_SRC/tests/env/netns.sh" bash "$here/suites/nfs.sh" "$@"
fi
VDISK=${VDISK:-$VDISK_BUILD/cli/vdisk}
CSI=${VDISK_CSI:-$VDISK_BUILD/csi/vdisk-csi}
PAIRS=$BENCH_PAIRS
RUNTIME=${VDISK_BENCH_RUNTIME:-5}
PARTS=" ${VDISK_BENCH_PARTS:-io copy snapshot} "
SNAP_DATA=${VDISK_BENCH_SNAP_DATA_GIB:-1 2}
part() { [[ $PARTS == *" $1 "* ]]; }
[[ -x $VDISK && -x $CSI ]] || { echo "nfs.sh: build cli/vdisk and csi/vdisk-csi first (VDISK_BUILD=$VDISK_BUILD)" >&2; exit 1; }
[[ $(id -u) == 0 ]] || { echo "nfs.sh: needs root (XFS images, namespaces, drop_caches)" >&2; exit 1; }
bench_need jq
bench_need qemu-img "qemu-utils, qemu-block-extra"
((PAIRS >= 1)) || { echo "nfs.sh: VDISK_BENCH_PAIRS must be >= 1" >&2; exit 2; }

work=$(mktemp -d "${VDISK_BENCH_DIR:-$VDISK_BUILD}/bench-nfs.XXXXXX")
csi_pid=
cleanup() {
  [[ -n $csi_pid ]] && kill "$csi_pid" 2>/dev/null && wait "$csi_pid" 2>/dev/null || true
  "$VDISK_SRC/tests/env/ganesha.sh" down "$work/nfs" >&2 || true
  rm -rf "$work"
}
trap cleanup EXIT

GANESHA_RPCBIND=1 GANESHA_DATA_SIZE=${GANESHA_DATA_SIZE:-40G} "$VDISK_SRC/tests/env/ganesha.sh" up "$work/nfs" >&2
# shellcheck disable=SC1091
source "$work/nfs/nfs.env"
L=$NFS_LOCAL_PATH              # the export's root on the server's file system
U=nfs://127.0.0.1$NFS_EXPORT   # ... and over NFS (ports from rpcbind)
bench_context
echo "nfs: ganesha at $U (local $L), $RUNTIME s per I/O run" >&2

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.3f", b-a}'; }
drop_caches() { sync; echo 3 > /proc/sys/vm/drop_caches; }
# report <line> <unit> <peer-name> <higher-is-better> <target>: AB_A (vdisk) vs AB_B (peer).
report() { pairs_line "$1" "$2" "$3" "$4" "${AB_A[*]}" "${AB_B[*]}" "$5"; }
# Files on the export are written through NFS only (ganesha caches names, handles and
# attributes: a file replaced or removed behind its back is still served from its cache), and
# every run gets a file name never used before. uniq: such a name.
uniq() { echo "$1-$(date +%s%N)"; }
# fill <image URI> <size> <GiB of data>: the data in 64 MiB runs spread evenly over the image,
# written through NFS from a local sparse file.
fill() {
  local uri=$1 size=$2 runs=$(($3 * 16)) i stride f=$work/fill.img
  rm -f "$f"; truncate -s "$size" "$f"
  stride=$(($(numfmt --from=iec "$size") / 1048576 / runs))
  for ((i = 0; i < runs; i++)); do
    dd if=/dev/urandom of="$f" bs=1M count=64 seek=$((i * stride)) conv=notrunc status=none
  done
  "$VDISK" copy -q --no-discard "$f" "$uri" >/dev/null
  rm -f "$f"
}

# ---------------------------------------------------------------------------------------------
# I/O: the libnfs Device vs qemu-img bench (QEMU's libnfs driver), sequential.
if part io; then
dd if=/dev/urandom of="$L/io.img" bs=1M count=1024 status=none
io=$U/io.img
io_vdisk() {  # rw bs qd -> IOPS
  local out
  out=$("$VDISK" bench io --uri "$io" --rw "$1" --bs "$2" --qd "$3" --runtime "$RUNTIME" --json)
  jq ".iops * 10 | round / 10" <<<"$out"
}
io_qemu() {  # rw bs qd -> IOPS; runs about RUNTIME s at vdisk's last rate ($work/io_guess)
  local rw=$1 bs=$2 qd=$3 count max t0 t1 w=()
  [[ $rw == write ]] && w=(-w)
  count=$(awk -v i="$(cat "$work/io_guess")" -v t="$RUNTIME" 'BEGIN{n=int(i*t); if (n<256) n=256; printf "%d", n}')
  max=$(((1 << 30) / $(numfmt --from=iec "${bs^^}")))  # qemu-img bench steps through once
  ((count > max)) && count=$max
  t0=$(now)
  qemu-img bench -f raw -t none -c "$count" -d "$qd" -s "$bs" "${w[@]}" "$io" >/dev/null ||
    { echo "nfs: qemu-img bench failed" >&2; exit 1; }
  t1=$(now)
  awk -v n="$count" -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", n/(b-a)}'
}
io_vdisk_guess() { local r; r=$(io_vdisk "$@"); echo "$r" > "$work/io_guess"; echo "$r"; }
for w in "read-4k-qd1 read 4k 1 IOPS" "read-4k-qd32 read 4k 32 IOPS" \
         "write-4k-qd1 write 4k 1 IOPS" "write-4k-qd32 write 4k 32 IOPS" \
         "read-1m-qd8 read 1M 8 MiB/s" "write-1m-qd8 write 1M 8 MiB/s"; do
  read -r name rw bs qd unit <<<"$w"
  io_vdisk_guess "$rw" "$bs" "$qd" >/dev/null  # warm-up; sizes QEMU's first run
  ab_pairs "$PAIRS" io_vdisk_guess io_qemu "$rw" "$bs" "$qd"
  report "nfs-io-$name" "$unit" "qemu-img bench" 1 1.0
done
fi

# ---------------------------------------------------------------------------------------------
# Copy: vdisk's sparse host copy vs qemu-img convert, nfs -> nfs, 8 GiB holding 1 GiB.
if part copy; then
truncate -s 8G "$L/copy-src.img"  # a new name: ganesha has nothing cached for it
fill "$U/copy-src.img" 8G 1
# Each run writes a new destination, checked against the source and removed after the pairs:
# vdisk's an empty sparse file made beforehand (--no-discard: known empty), QEMU's created by
# qemu-img itself (which then knows it reads as zeroes and skips them too).
copy_vdisk() {
  local t0 t1 dst; dst=$(uniq copy-vdisk).img
  truncate -s 8G "$L/$dst"; drop_caches
  t0=$(now)
  "$VDISK" copy -q --no-discard "$U/copy-src.img" "$U/$dst" >/dev/null
  t1=$(now); elapsed "$t0" "$t1"
}
copy_qemu() {
  local t0 t1 dst; dst=$(uniq copy-qemu).img
  drop_caches
  t0=$(now)
  qemu-img convert -f raw -O raw "$U/copy-src.img" "$U/$dst" || { echo "nfs: qemu-img convert failed" >&2; exit 1; }
  t1=$(now); elapsed "$t0" "$t1"
}
ab_pairs "$PAIRS" copy_vdisk copy_qemu
for f in "$L"/copy-vdisk-*.img "$L"/copy-qemu-*.img; do
  qemu-img compare -q -f raw -F raw "$L/copy-src.img" "$f" ||
    { echo "nfs: $f differs from its source" >&2; exit 3; }
done
echo "nfs: copy allocation (bytes): source $(du -B1 "$L/copy-src.img" | cut -f1)," \
  "vdisk $(du -B1 "$L"/copy-vdisk-*.img | cut -f1 | sort -u | tr '\n' ' ')," \
  "qemu-img $(du -B1 "$L"/copy-qemu-*.img | cut -f1 | sort -u | tr '\n' ' ')" >&2
report nfs-copy-8g-1g s "qemu-img convert" 0 1.2
fi
part snapshot || exit 0

# ---------------------------------------------------------------------------------------------
# Snapshot: the nfs pool's three ways vs csi-driver-nfs's tar of the volume directory.
#   reflink  local_path + reflink=on: FICLONE on the server's file system, O(1)
#   mapped   local_path + reflink=off: allocation from the server's file system (SEEK_DATA),
#            only the data copied through libnfs: time follows the allocated bytes
#   remote   no local_path: the image read whole over NFSv3 (no SEEK in v3), zeroes detected,
#            data written: time follows the image size (reads) plus the data (writes)
sock=$(mktemp -d /tmp/vdisk-nfs-bench.XXXXXX)/csi.sock
pool() { echo "name=$1,kind=nfs,server=127.0.0.1,export=$NFS_EXPORT,dir=/$1$2"; }
"$CSI" --endpoint "unix://$sock" --node-id bench --state-dir "$work/state" \
  --pool "$(pool reflink ",local_path=$L,reflink=on")" \
  --pool "$(pool mapped ",local_path=$L,reflink=off")" --pool "$(pool remote ",reflink=off")" \
  >"$work/csi.log" 2>&1 &
csi_pid=$!
for _ in $(seq 100); do [[ -S $sock ]] && break; sleep 0.1; done
E=(--endpoint "unix://$sock")
mkdir -p "$L/tar-snapshots"
snap_vdisk() {  # volume-id -> seconds (the snapshot is deleted afterwards, untimed)
  local t0 t1 id; drop_caches
  t0=$(now)
  id=$("$VDISK" snapshot create "snap-$(date +%s%N)" --volume "$1" "${E[@]}" --json | jq -r .snapshot_id)
  t1=$(now)
  "$VDISK" snapshot delete "$id" "${E[@]}" >/dev/null
  elapsed "$t0" "$t1"
}
tar_snap() {  # flags volume-dir (on the server) -> seconds; the archive's size in $work/tar-<flags>
  local t0 t1 out=$L/tar-snapshots/vol.tar; drop_caches
  t0=$(now)
  tar -C "$2" "$1" "$out" .
  sync "$out"
  t1=$(now)
  du -B1 "$out" | cut -f1 > "$work/tar$1"; rm -f "$out"
  elapsed "$t0" "$t1"
}
declare -A samples median_of
for gib in $SNAP_DATA; do
  declare -A vol=() img=()
  for kind in reflink mapped remote; do
    j=$("$VDISK" volume create "$kind-$gib" --size 8G --mode filesystem --pool "$kind" "${E[@]}" --json)
    vol[$kind]=$(jq -r .volume_id <<<"$j"); img[$kind]=$L$(jq -r .volume_context.nfsPath <<<"$j")
  done
  for kind in reflink mapped remote; do fill "$U${img[$kind]#"$L"}" 8G "$gib"; done
  echo "nfs: snapshot sources: 8 GiB volumes, $(du -B1 "${img[remote]}" | cut -f1) bytes allocated" >&2
  voldir=$(dirname "${img[remote]}")  # tar archives one of the three (same size, same layout)
  sides=("reflink snap_vdisk ${vol[reflink]}" "mapped snap_vdisk ${vol[mapped]}"
         "remote snap_vdisk ${vol[remote]}" "czf tar_snap -czf $voldir" "cf tar_snap -cf $voldir")
  samples=()
  for ((p = 1; p <= PAIRS; p++)); do  # every side once per round, order reversed every other one
    order=("${sides[@]}"); ((p % 2)) || order=("${sides[4]}" "${sides[3]}" "${sides[2]}" "${sides[1]}" "${sides[0]}")
    for side in "${order[@]}"; do
      read -r key fn a b <<<"$side"
      samples[$key]+="$("$fn" "$a" ${b:+"$b"}) "
    done
  done
  echo "nfs: archives: tar -czf $(cat "$work/tar-czf") bytes, tar -cf $(cat "$work/tar-cf") bytes" >&2
  for key in reflink mapped remote; do
    read -ra AB_A <<<"${samples[$key]}"; read -ra AB_B <<<"${samples[czf]}"
    report "nfs-snapshot-$key-${gib}g" s "tar -czf" 0 10
    median_of[$key-$gib]=$(printf '%s\n' "${AB_A[@]}" | median)
  done
  read -ra AB_A <<<"${samples[remote]}"; read -ra AB_B <<<"${samples[cf]}"
  report "nfs-snapshot-remote-${gib}g-vs-tar-cf" s "tar -cf" 0
  median_of[czf-$gib]=$(printf '%s\n' ${samples[czf]} | median)
  for kind in reflink mapped remote; do "$VDISK" volume delete "${vol[$kind]}" "${E[@]}" >/dev/null; done
done
# Time against allocated data: 2 GiB over 1 GiB (ideal for a copy of the data only: 2).
if [[ -n ${median_of[mapped-1]:-} && -n ${median_of[mapped-2]:-} ]]; then
  for key in mapped remote czf; do
    echo "nfs: snapshot time 2 GiB / 1 GiB of data: $key $(awk -v a="${median_of[$key-2]}" \
      -v b="${median_of[$key-1]}" 'BEGIN{printf "%.2f", a/b}')" >&2
  done
  bench_line nfs-snapshot-mapped-2g-vs-1g ratio \
    "$(awk -v a="${median_of[mapped-2]}" -v b="${median_of[mapped-1]}" 'BEGIN{printf "%.3f", a/b}')" \
    "ideal (data ratio)" 2 0
fi
