#!/bin/sh
# vhost_rbd_qemu_test: a guest on an RBD image served by the vhost-user-blk export (librbd).
D=/dev/vda
M=1048576
echo "size=$(vdtool size $D)"
vdtool fill $D 0 $((4 * M)) 11 && vdtool check $D 0 $((4 * M)) 11 && echo "rw=ok"
vdtool fill $D $((8 * M)) $((2 * M)) 12 && vdtool discard $D $((8 * M)) $M && vdtool zeroes $D $((8 * M)) $M && echo "discard=ok"
vdtool zeroout $D $((9 * M)) $M && vdtool zeroes $D $((9 * M)) $M && echo "zeroout=ok"
vdtool flush $D && echo "flush=ok"
echo "fnv=$(vdtool sha $D 0 $((16 * M)))"
