#!/bin/sh
# Boot 2 of vhost_qemu_test: a new QEMU on the same export after the first was killed.
D=/dev/vda
M=1048576
echo "size=$(vdtool size $D)"
vdtool check $D 0 $((4 * M)) 1 && vdtool check $D $((64 * M)) $M 3 && echo "persist=ok"
vdtool fill $D $((20 * M)) $M 5 && vdtool flush $D && echo "write2=ok"
