#!/usr/bin/env bash
# Runs a command in a private network + mount namespace: only a loopback interface (up), and a
# private tmpfs on /run, so servers that insist on well-known ports and paths (rpcbind on 111,
# /run/rpcbind.sock; ganesha registering with it) can run beside other suites and the host's own.
#   tests/env/netns.sh <command> [args...]
# Mounts made inside (XFS images of tests/env/xfs.sh) are private to the namespace and vanish
# with it; loop devices are not, so the command must still clean up what it made. Needs root.
set -euo pipefail
(($# > 0)) || { echo "usage: $0 <command> [args...]" >&2; exit 2; }
if [[ ${VDISK_IN_NETNS:-0} == 1 ]]; then exec "$@"; fi
exec unshare --net --mount --propagation private -- env VDISK_IN_NETNS=1 bash -c '
  set -e
  ip link set lo up
  mount -t tmpfs -o mode=0755 vdisk-netns-run /run
  exec "$@"' netns "$@"
