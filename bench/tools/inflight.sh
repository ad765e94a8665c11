#!/usr/bin/env bash
# bench/tools/inflight.sh <device path or file> -- <command...>: runs the command under a
# system-wide perf trace of the block layer (request issue / completion) and of io_uring_enter,
# then prints (on stderr) how many requests the command really kept in flight at the device over time
# (bench/tools/inflight.py). For a file, the device is the one holding it; for a loop device,
# the loop device itself (what the engine submits to). Needs root and perf.
# Load-independent evidence of a queue that does not hold its depth (lockstep bursts).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
target=$1
shift
[[ ${1:-} == -- ]] && shift
if [[ -b $target ]]; then
  majmin=$(stat -L -c '%t %T' "$target" | while read -r a b; do echo "$((16#$a)),$((16#$b))"; done)
else
  majmin=$(stat -c '%d' "$target" | awk '{printf "%d,%d", int($1 / 256) % 4096, $1 % 256}')
fi
comm=$(basename "$1" | cut -c1-15)
data=$(mktemp /tmp/inflight.XXXXXX)
trap 'rm -f "$data" "$data.txt"' EXIT
perf record -q -m 16M -a -o "$data" -e block:block_rq_issue,block:block_rq_complete \
  -e syscalls:sys_enter_io_uring_enter -- "$@"
perf script -i "$data" 2>/dev/null > "$data.txt"
echo "inflight: device $majmin, requests issued by '$comm'" >&2
/usr/bin/python3 "$here/inflight.py" "$majmin" "$comm" < "$data.txt" >&2
