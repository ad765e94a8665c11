#!/bin/sh
# csi_vhost_qemu_test: the guest's disk is a volume vdisk-csi published with attach: vhost-user.
D=/dev/vda
M=1048576
echo "size=$(vdtool size $D)"
echo "serial=$(cat /sys/block/vda/serial 2>/dev/null)"
vdtool fill $D $((2 * M)) $((4 * M)) 7 && vdtool flush $D && echo "write=ok"
vdtool check $D $((2 * M)) $((4 * M)) 7 && echo "check=ok"
