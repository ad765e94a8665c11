#!/bin/sh
# csi_vhost_qemu_test, node plugin restart under writes: four writers each overwrite their own
# 1 MiB region (at r * 2 MiB) with a new seed per round and read it back, for 30 s of guest time,
# while the host kills and restarts vdisk-csi, the VM's disk back end. QEMU reconnects
# (chardev reconnect=1) and the restarted export resubmits what was in flight. A lost write fails
# a check; a completed write run again after a newer one would leave an older seed behind, which
# the next check or the final one catches. Two rewriters keep writes and flushes in flight at
# little guest CPU cost (regions at 8 and 10 MiB, seeds 7 and 8), so a kill finds some.
D=/dev/vda
M=1048576
RUN=30
start=$(cut -d. -f1 /proc/uptime)
writer() {
  r=$1
  off=$((r * 2 * M))
  s=0
  seed=0
  while [ $(($(cut -d. -f1 /proc/uptime) - start)) -lt $RUN ]; do
    s=$((s + 1))
    seed=$((r * 100000 + s))
    if ! vdtool fill $D $off $M $seed; then echo "w$r=write-failed-round-$s"; return 1; fi
    if ! vdtool check $D $off $M $seed; then echo "w$r=check-failed-round-$s"; return 1; fi
    [ $s -eq 2 ] && echo "VDISK-WRITING w$r"
  done
  if vdtool check $D $off $M $seed; then echo "w$r=ok"; else echo "w$r=final-check-failed"; fi
  echo "seed$r=$seed"
  echo "rounds$r=$s"
}
rewriter() {
  n=$(vdtool rewrite $D $(($1 * M)) $M $2 $RUN) && vdtool check $D $(($1 * M)) $M $2 && echo "rw$2=ok rounds=$n"
}
for r in 0 1 2 3; do writer $r & done
rewriter 8 7 &
rewriter 10 8 &
wait
vdtool flush $D && echo "flush=ok"
