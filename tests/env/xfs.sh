#!/usr/bin/env bash
# A reflink-capable XFS filesystem in a sparse image file, loop-mounted with direct I/O.
#   tests/env/xfs.sh up   <image-file> <mountpoint> [size, default 20G]
#   tests/env/xfs.sh down <mountpoint>        (unmounts, detaches the loop device, removes the image)
# The image file is sparse: it only takes the space the filesystem uses.
set -euo pipefail

cmd=${1:-}
case "$cmd" in
  up)
    image=$2 mnt=$3 size=${4:-20G}
    if mountpoint -q "$mnt"; then echo "xfs.sh: $mnt already mounted"; exit 0; fi
    mkdir -p "$(dirname "$image")" "$mnt"
    rm -f "$image"
    truncate -s "$size" "$image"
    mkfs.xfs -q -m reflink=1 "$image"
    loop=$(losetup --direct-io=on --find --show "$image")
    if ! mount -o discard "$loop" "$mnt"; then losetup -d "$loop"; exit 1; fi
    echo "$image" > "$mnt/.vdisk-xfs-image"
    echo "xfs.sh: $image ($size) on $loop mounted at $mnt"
    ;;
  down)
    mnt=$2
    if ! mountpoint -q "$mnt"; then exit 0; fi
    image=$(cat "$mnt/.vdisk-xfs-image" 2>/dev/null || true)
    loop=$(findmnt -n -o SOURCE --target "$mnt")
    umount "$mnt"
    [[ $loop == /dev/loop* ]] && losetup -d "$loop" 2>/dev/null || true
    [[ -n $image ]] && rm -f "$image"
    rmdir "$mnt" 2>/dev/null || true
    ;;
  *)
    echo "usage: $0 up <image> <mountpoint> [size] | down <mountpoint>" >&2
    exit 2
    ;;
esac
