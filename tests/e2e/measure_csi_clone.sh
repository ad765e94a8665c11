#!/usr/bin/env bash
# Measures a clone end to end through the CSI socket (vdisk-csi + `vdisk clone`, i.e. the
# external-provisioner's CreateVolume with a volume content source) of a 10 GiB Block volume
# holding 2 GiB of random data, on a reflink XFS pool (offload) and on an ext4 pool (host copy),
# against cp of the same disk.img (reflink on XFS, --reflink=never --sparse=always on ext4),
# each followed by sync. Prints BENCH lines (bench/lib.sh). Root; leaves nothing behind.
#   tests/e2e/measure_csi_clone.sh [build-dir]
set -euo pipefail
R=$(cd "$(dirname "$0")/../.." && pwd)
B=$(cd "${1:-$R/build}" && pwd)
source "$R/bench/lib.sh"
W=$B/test-tmp/csi-clone-measure-$$
mkdir -p "$W"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  "$R/tests/env/xfs.sh" down "$W/xfs" >/dev/null 2>&1 || true
  rm -rf "$W" /tmp/csi-clone-measure-$$-*.sock
}
trap cleanup EXIT
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }

measure() {  # label pool-dir -> sets VDISK_MS PEER_MS
  local label=$1 pool=$2
  local sock=/tmp/csi-clone-measure-$$-$label.sock
  "$B/csi/vdisk-csi" -v --endpoint "unix://$sock" --node-id m --pool "local:$pool" --state-dir "$W/state-$label" \
    > "$W/$label.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 200); do [[ -S $sock ]] && break; sleep 0.05; done
  [[ -S $sock ]] || { cat "$W/$label.log" >&2; exit 1; }
  export VDISK_CSI_ENDPOINT=unix://$sock
  local id
  id=$("$B/cli/vdisk" volume create src --size 10G --json | sed -n 's/.*"volume_id": "\(.*\)".*/\1/p')
  mkdir -p "$W/k/st-$label"
  "$B/cli/vdisk" volume stage "$id" --staging-path "$W/k/st-$label" > /dev/null
  "$B/cli/vdisk" volume publish "$id" --staging-path "$W/k/st-$label" --target "$W/k/t-$label" > /dev/null
  dd if=/dev/urandom of="$W/k/t-$label" bs=1M count=2048 seek=1024 oflag=direct conv=notrunc status=none
  "$B/cli/vdisk" volume unpublish "$id" --target "$W/k/t-$label" > /dev/null
  "$B/cli/vdisk" volume unstage "$id" --staging-path "$W/k/st-$label" > /dev/null
  sync
  local t0
  t0=$(date +%s%N); "$B/cli/vdisk" clone c1 --from-volume "$id" > /dev/null; VDISK_MS=$(ms "$t0")
  echo "# $label: CreateVolume inside the driver: $(sed -n "s/.*rpc=CreateVolume code=OK ms=\([0-9.]*\).*/\1/p" "$W/$label.log" | tail -1) ms (the rest: CLI start-up, ControllerGetVolume, connection)"
  local img
  img=$(ls "$pool"/volumes/src-*/disk.img)
  if [[ $label == xfs ]]; then
    t0=$(date +%s%N); cp --reflink=always "$img" "$pool/peer.img"; sync; PEER_MS=$(ms "$t0")
  else
    t0=$(date +%s%N); cp --reflink=never --sparse=always "$img" "$pool/peer.img"; sync; PEER_MS=$(ms "$t0")
  fi
  rm -f "$pool/peer.img"
}

"$R/tests/env/xfs.sh" up "$W/xfs.img" "$W/xfs" 20G > /dev/null
measure xfs "$W/xfs/pool"
bench_line csi-clone-reflink-xfs-10g-2g ms "$VDISK_MS" "cp --reflink=always+sync" "$PEER_MS" 0
mkdir -p "$W/ext4"
measure ext4 "$W/ext4/pool"
bench_line csi-clone-hostcopy-ext4-10g-2g ms "$VDISK_MS" "cp --reflink=never --sparse=always+sync" "$PEER_MS" 0
