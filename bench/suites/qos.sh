#!/usr/bin/env bash
# bench/run.sh qos: per-volume QoS in the vhost-user export (blockdev/qos: token buckets in the
# I/O gate every vdisk-csi export serves through), measured with a real vhost-user front end
# (bench/tools/vhost_load.cc, a host-side virtio-blk driver) against `vdisk serve` on a 2 GiB
# raw file (fully written, io_uring, O_DIRECT) on the build disk:
#
#  qos-accuracy-iops   --qos iopsLimit=2000, 4 KiB random reads at queue depth 32 for
#                      VDISK_QOS_SECONDS (default 20): measured IOPS / 2000 (ideal 1.000; the
#                      initial bucket of a tenth of a second adds 0.5% over 20 s)
#  qos-accuracy-bps    --qos bpsLimit=200Mi, 1 MiB random reads at queue depth 8: MiB/s / 200
#  qos-overhead        the gate in the path without a limit (--gate) against no gate at all, 4 KiB
#                      random reads at queue depth 32: median of VDISK_BENCH_PAIRS (default 5)
#                      A-B pairs alternating the order (ratio >= 0.98 is the target)
# The "peer" of the accuracy lines is the configured limit itself.
#
# Environment: VDISK_BUILD, VDISK_BENCH_DIR (default the build dir), VDISK_QOS_SECONDS,
# VDISK_BENCH_PAIRS, VDISK_BENCH_RUNTIME (s per overhead run, default 10).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
source "$here/lib.sh"
VDISK=${VDISK:-$VDISK_BUILD/cli/vdisk}
LOAD=${VDISK_VHOST_LOAD:-$VDISK_BUILD/bench/tools/vdisk_vhost_load}
SECONDS_ACC=${VDISK_QOS_SECONDS:-20}
PAIRS=${VDISK_BENCH_PAIRS:-5}
RUNTIME=${VDISK_BENCH_RUNTIME:-10}
for b in "$VDISK" "$LOAD"; do
  [[ -x $b ]] || { echo "qos.sh: build $b first (VDISK_BUILD=$VDISK_BUILD)" >&2; exit 1; }
done
work=$(mktemp -d "${VDISK_BENCH_DIR:-$VDISK_BUILD}/bench-qos.XXXXXX")
sockdir=$(mktemp -d /tmp/vdisk-qos-bench.XXXXXX)
server=
cleanup() {
  [[ -n $server ]] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null || true
  rm -rf "$work" "$sockdir"
}
trap cleanup EXIT
echo "qos: $(date -u +%FT%TZ) $(uname -r), $(nproc) cpus, load $(cut -d' ' -f1-3 /proc/loadavg)" >&2

image=$work/disk.img
dd if=/dev/urandom of="$image" bs=4M count=512 oflag=direct status=none
size=$(stat -c %s "$image")
sock=$sockdir/qos.sock

serve() {  # extra serve flags...
  rm -f "$work/serve.out"  # else the last server's "ready" may be read before the shell truncates it
  "$VDISK" serve --socket "$sock" --uri "file:$image" "$@" >"$work/serve.out" 2>"$work/serve.err" &
  server=$!
  for _ in $(seq 200); do grep -q ready "$work/serve.out" 2>/dev/null && [[ -S $sock ]] && return 0; sleep 0.05; done
  echo "qos.sh: vdisk serve did not start: $(cat "$work/serve.err")" >&2
  exit 1
}
unserve() { kill "$server"; wait "$server" 2>/dev/null || true; server=; }
load() {  # rw bs qd seconds -> the vhost-load line
  "$LOAD" --socket "$sock" --size "$size" --rw "$1" --bs "$2" --qd "$3" --seconds "$4" --backend-pid "$server"
}
field() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p"; }

serve --qos iopsLimit=2000
iops=$(load randread 4096 32 "$SECONDS_ACC" | field iops)
unserve
echo "qos: iopsLimit=2000 measured $iops IOPS over $SECONDS_ACC s" >&2
bench_line qos-accuracy-iops IOPS "$iops" "configured limit" 2000 1

serve --qos bpsLimit=200Mi
mibs=$(load randread 1048576 8 "$SECONDS_ACC" | field mib_s)
unserve
echo "qos: bpsLimit=200Mi measured $mibs MiB/s over $SECONDS_ACC s" >&2
bench_line qos-accuracy-bps MiB/s "$mibs" "configured limit" 200 1

gated=() plain=()
for i in $(seq "$PAIRS"); do
  for which in $( (( i % 2 )) && echo "gate plain" || echo "plain gate"); do
    if [[ $which == gate ]]; then serve --gate; else serve; fi
    v=$(load randread 4096 32 "$RUNTIME" | field iops)
    unserve
    if [[ $which == gate ]]; then gated+=("$v"); else plain+=("$v"); fi
  done
  echo "qos: overhead pair $i: gate ${gated[-1]} IOPS, no gate ${plain[-1]} IOPS" >&2
done
spread() { sort -g | awk '{v[NR]=$1} END{if (NR) printf "min %s max %s", v[1], v[NR]}'; }
echo "qos: gate $(printf '%s\n' "${gated[@]}" | spread) / no gate $(printf '%s\n' "${plain[@]}" | spread)" >&2
ratios=$(for k in "${!gated[@]}"; do awk -v a="${gated[$k]}" -v b="${plain[$k]}" 'BEGIN{printf "%.3f\n", a/b}'; done)
echo "qos: per-pair gate/no-gate ratios $(echo $ratios), median $(median <<<"$ratios") (a loaded machine moves both runs of a pair together more than it moves pairs)" >&2
bench_line qos-overhead IOPS "$(printf '%s\n' "${gated[@]}" | median)" "no gate (QoS off)" \
  "$(printf '%s\n' "${plain[@]}" | median)" 1
