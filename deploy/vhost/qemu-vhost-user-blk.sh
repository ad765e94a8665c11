#!/usr/bin/env bash
# QEMU attached to a vdisk vhost-user-blk export (what tests/vhost and bench/suites/vhost.sh run).
#   deploy/vhost/qemu-vhost-user-blk.sh <socket> [extra qemu args]
# Start the export first, e.g.:
#   vdisk serve --socket /run/vdisk/vm1.sock --uri file:/var/lib/images/vm1.img --queues 2
# Shared guest memory (memory-backend-memfd share=on) is mandatory for vhost-user; its size must
# equal -m. num-queues must not exceed the export's --queues. reconnect=1: if the export restarts
# (vdisk serve again, or the node plugin), QEMU re-attaches and the requests that were in flight
# are resubmitted (INFLIGHT_SHMFD, docs/vhost.md).
set -euo pipefail
sock=${1:?usage: $0 <vhost-user socket> [qemu args]}
shift
exec qemu-system-x86_64 -accel kvm -cpu host -m 4G -smp 2 \
  -object memory-backend-memfd,id=mem0,size=4G,share=on \
  -machine q35,memory-backend=mem0 \
  -chardev socket,id=vdisk0,path="$sock",reconnect=1 \
  -device vhost-user-blk-pci,chardev=vdisk0,num-queues=2,bootindex=0 \
  -nographic "$@"
