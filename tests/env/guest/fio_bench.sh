#!/bin/sh
# Guest side of bench/suites/vhost.sh: fio on /dev/vda, one terse line per workload.
# Kernel command line: vdisk.arg=rt=<seconds> vdisk.arg=wl=<workload>[,<workload>...]
RT=8
WL=randread-4k,randwrite-4k,read-1m,write-1m
for a in $VDISK_ARGS; do
  case "$a" in
    rt=*) RT=${a#rt=} ;;
    wl=*) WL=${a#wl=} ;;
  esac
done
command -v fio >/dev/null || { echo "fio missing in the initramfs"; exit 1; }
for w in $(echo "$WL" | tr ',' ' '); do
  case "$w" in
    randread-4k) args="--rw=randread --bs=4k --iodepth=32" ;;
    randwrite-4k) args="--rw=randwrite --bs=4k --iodepth=32" ;;
    randread-4k-qd1) args="--rw=randread --bs=4k --iodepth=1" ;;
    read-1m) args="--rw=read --bs=1m --iodepth=8" ;;
    write-1m) args="--rw=write --bs=1m --iodepth=8" ;;
    *) echo "unknown workload $w"; continue ;;
  esac
  line=$(fio --name="$w" --filename=/dev/vda --direct=1 --ioengine=libaio --time_based \
      --runtime="$RT" --ramp_time=1 --size=1g --output-format=terse --terse-version=3 $args 2>&1 | tail -1)
  echo "FIO $w $line"
done
