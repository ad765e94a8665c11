#!/bin/sh
# Boot 1 of vhost_qemu_test: patterns on two queues at once, flush, discard, write-zeroes,
# checksums; then waits for the host to grow the disk, uses the new space, and keeps writing
# until QEMU is killed.
D=/dev/vda
M=1048576
size0=$(vdtool size $D)
echo "size0=$size0"
echo "queues=$(ls /sys/block/vda/mq | wc -l)"
echo "ro0=$(cat /sys/block/vda/ro)"
echo "serial=$(cat /sys/block/vda/serial 2>/dev/null)"
echo "discard_max=$(cat /sys/block/vda/queue/discard_max_bytes)"
taskset 1 vdtool fill $D 0 $((4 * M)) 1 & p1=$!
taskset 2 vdtool fill $D $((8 * M)) $((4 * M)) 2 & p2=$!
wait $p1; r1=$?
wait $p2; r2=$?
echo "fill=$r1$r2"
vdtool check $D 0 $((4 * M)) 1 && vdtool check $D $((8 * M)) $((4 * M)) 2 && echo "check=ok"
vdtool flush $D && echo "flush=ok"
vdtool discard $D $((8 * M)) $((2 * M)) && vdtool zeroes $D $((8 * M)) $((2 * M)) && echo "discard=ok"
vdtool zeroout $D $((11 * M)) $M && vdtool zeroes $D $((11 * M)) $M && echo "zeroout=ok"
vdtool check $D $((10 * M)) $M 2 && echo "untouched=ok"
echo "fnv=$(vdtool sha $D 0 $((16 * M)))"
echo "VDISK-READY-RESIZE"
i=0
while [ "$(vdtool size $D)" = "$size0" ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
echo "size1=$(vdtool size $D)"
vdtool fill $D $((64 * M)) $M 3 && vdtool check $D $((64 * M)) $M 3 && echo "grown=ok"
vdtool flush $D
echo "VDISK-LOOPING"
while true; do vdtool fill $D $((32 * M)) $((4 * M)) 4 >/dev/null 2>&1; done
