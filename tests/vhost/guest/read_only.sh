#!/bin/sh
# vhost_qemu_test read-only boot: the guest sees a read-only disk, and writes forced past the
# guest's own check (blockdev --setrw) are failed by the export.
D=/dev/vda
M=1048576
echo "ro=$(cat /sys/block/vda/ro)"
vdtool check $D 0 $M 1 && echo "read=ok"
if vdtool fill $D 0 4096 9 2>/dev/null; then echo "write=accepted"; else echo "write=rejected"; fi
blockdev --setrw $D
if vdtool fill $D 0 4096 9 2>/dev/null; then echo "forced=accepted"; else echo "forced=rejected"; fi
if vdtool discard $D 0 4096 2>/dev/null; then echo "discard=accepted"; else echo "discard=rejected"; fi
