#!/usr/bin/env bash
# bench/run.sh backup: backup of a VM disk to radosgw (its own single-node Ceph from
# tests/env/ceph.sh) — vdisk vs `aws s3 cp` (Debian's /usr/bin/aws, tuned: 16 concurrent
# requests, 64 MiB parts) of the same raw image to the same radosgw.
#
# The disk: an 8 GiB sparse image on a reflink XFS (tests/env/xfs.sh, as the local pool uses it)
# holding 4 GiB of data in 4 MiB extents every 8 MiB, alternately random (incompressible) and
# half-compressible (2 KiB random + 2 KiB pattern per 4 KiB block: ~2x with zstd). A "snapshot" is a FICLONE reflink of
# the image, exactly what the local pool's snapshots are.
#
# Lines (bench/lib.sh; ratio > 1 = vdisk better):
#   full         vdisk backup of snapshot 1, seconds      peer: aws s3 cp of the raw image
#   incremental  after rewriting 1% of the disk's 1 MiB blocks (82 random blocks) and taking
#                snapshot 2; change map = FIEMAP difference of the two snapshots, seconds
#                                                          peer: the full backup (full/incr)
#   restore      restore of the incremental backup to a new sparse file, MiB/s of disk data
#                                                          peer: full backup MiB/s (restore/backup)
# plus info lines: objects created per GiB of data, stored bytes, checksums.
# Every timed step starts with a cold page cache; restore is timed through its final fsync.
#
# Environment: VDISK_BENCH_BACKUP_SIZE (8G), VDISK_BENCH_BACKUP_DATA_GIB (4),
# VDISK_BENCH_DIR (default: the build dir). Needs root (XFS loop image, drop_caches).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
source "$here/lib.sh"
VDISK=${VDISK:-$VDISK_BUILD/cli/vdisk}
AWS=/usr/bin/aws
SIZE=${VDISK_BENCH_BACKUP_SIZE:-8G}
DATA_GIB=${VDISK_BENCH_BACKUP_DATA_GIB:-4}
[[ -x $VDISK ]] || { echo "backup.sh: $VDISK not built (set VDISK_BUILD)" >&2; exit 1; }
[[ -x $AWS ]] || { echo "backup.sh: $AWS missing (scripts/deps.sh installs awscli)" >&2; exit 1; }
[[ $(id -u) == 0 ]] || { echo "backup.sh: needs root (XFS image, drop_caches)" >&2; exit 1; }

work=$(mktemp -d "${VDISK_BENCH_DIR:-$VDISK_BUILD}/bench-backup.XXXXXX")
mnt=$work/mnt
ceph=$work/ceph
cleanup() {
  "$VDISK_SRC/tests/env/ceph.sh" down "$ceph" >/dev/null 2>&1 || true
  for _ in 1 2 3 4 5; do
    "$VDISK_SRC/tests/env/xfs.sh" down "$mnt" >/dev/null 2>&1 && ! mountpoint -q "$mnt" && break
    sleep 0.5
  done
  rm -rf "$work"
}
trap cleanup EXIT

log() { echo "backup: $*" >&2; }
cold() { sync; echo 3 > /proc/sys/vm/drop_caches; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.3f", b-a}'; }
alloc() { echo $(( $(stat -c %b "$1") * 512 )); }

"$VDISK_SRC/tests/env/xfs.sh" up "$work/xfs.img" "$mnt" 48G >&2
CEPH_OSD_SIZE=$((40 << 30)) "$VDISK_SRC/tests/env/ceph.sh" up "$ceph" >&2
set -a
source "$ceph/s3.env"
set +a
export AWS_CONFIG_FILE=$work/aws-config
cat > "$AWS_CONFIG_FILE" <<EOF
[default]
region = $S3_REGION
s3 =
  max_concurrent_requests = 16
  multipart_chunksize = 64MB
  multipart_threshold = 64MB
EOF
unset AWS_CA_BUNDLE
"$AWS" --endpoint-url "$S3_ENDPOINT" s3 mb s3://bench-aws >/dev/null
export VDISK_BACKUP_PASSWORD=bench-password
repo=s3://bench-vdisk/repo
"$VDISK" backup init --repo "$repo" --create >&2

# --- the disk -----------------------------------------------------------------------------------
img=$mnt/disk.img
truncate -s "$SIZE" "$img"
# 4 MiB data extents spread evenly over the disk; even ones random, odd ones half-compressible
# (every 4 KiB block: 2 KiB random + 2 KiB of a repeated pattern, ~2x with zstd).
slots=$(( DATA_GIB * 1024 / 4 ))
log "making $SIZE image with $DATA_GIB GiB of data ($slots extents of 4 MiB)"
/usr/bin/python3 - "$img" "$slots" <<'EOF'
import os, sys
path, slots = sys.argv[1], int(sys.argv[2])
size = os.stat(path).st_size
stride = size // slots // (1 << 20) << 20
fd = os.open(path, os.O_WRONLY)
pattern = (b"vdisk-backup-bench " * 108)[:2048]
for i in range(slots):
    if i % 2 == 0:
        buf = os.urandom(4 << 20)
    else:
        r = os.urandom(2 << 20)
        buf = b"".join(r[j:j + 2048] + pattern for j in range(0, len(r), 2048))
    os.pwrite(fd, buf, i * stride)
os.fsync(fd)
os.close(fd)
EOF
data_bytes=$(alloc "$img")
log "image allocation $data_bytes bytes"
cp --reflink=always "$img" "$mnt/snap1.img"
sha1=$(sha256sum "$mnt/snap1.img" | cut -d' ' -f1)

# --- full: aws s3 cp of the raw image vs vdisk backup -------------------------------------------
cold
t0=$(now)
"$AWS" --endpoint-url "$S3_ENDPOINT" s3 cp --only-show-errors "$mnt/snap1.img" s3://bench-aws/disk.img
t1=$(now)
aws_s=$(elapsed "$t0" "$t1")
log "aws s3 cp: $aws_s s"
"$AWS" --endpoint-url "$S3_ENDPOINT" s3 rm --only-show-errors s3://bench-aws/disk.img

cold
t0=$(now)
"$VDISK" backup create --repo "$repo" --json --progress none --disk rootdisk="$mnt/snap1.img" \
  --source-snapshot rootdisk=snap1 > "$work/full.json"
t1=$(now)
full_s=$(elapsed "$t0" "$t1")
log "vdisk full backup: $full_s s ($(jq -c '.disks[0] | {bytes_read, bytes_stored_new, chunks_new}' "$work/full.json"))"
bench_line full seconds "$full_s" "aws s3 cp (16 requests, 64 MiB parts)" "$aws_s" 0

objects=$("$AWS" --endpoint-url "$S3_ENDPOINT" s3 ls --recursive s3://bench-vdisk/ | wc -l)
stored=$("$AWS" --endpoint-url "$S3_ENDPOINT" s3 ls --recursive --summarize s3://bench-vdisk/ |
         awk '/Total Size/{print $3}')
per_gib=$(awk -v o="$objects" -v d="$data_bytes" 'BEGIN{printf "%.2f", o / (d / 1073741824)}')
echo "backup: objects after the full backup: $objects ($per_gib per GiB of data), stored $stored bytes for $data_bytes data bytes"

# --- incremental after rewriting 1% of the disk's 1 MiB blocks ----------------------------------
blocks=$(( $(stat -c %s "$img") / 1048576 ))
changes=$(( blocks / 100 ))
log "rewriting $changes random 1 MiB blocks"
/usr/bin/python3 - "$img" "$blocks" "$changes" <<'EOF'
import os, random, sys
path, blocks, changes = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
fd = os.open(path, os.O_WRONLY)
for b in random.sample(range(blocks), changes):
    os.pwrite(fd, os.urandom(1 << 20), b << 20)
os.fsync(fd)
os.close(fd)
EOF
cp --reflink=always "$img" "$mnt/snap2.img"
sha2=$(sha256sum "$mnt/snap2.img" | cut -d' ' -f1)
cold
t0=$(now)
"$VDISK" backup create --repo "$repo" --json --progress none --disk rootdisk="$mnt/snap2.img" \
  --source-snapshot rootdisk=snap2 --changed-since rootdisk="$mnt/snap1.img" > "$work/incr.json"
t1=$(now)
incr_s=$(elapsed "$t0" "$t1")
log "vdisk incremental backup: $incr_s s ($(jq -c '.disks[0] | {change_map, bytes_read, chunks_new}' "$work/incr.json"))"
bench_line incremental seconds "$incr_s" "full backup" "$full_s" 0

# --- restore of the incremental (complete on its own) to a new sparse file ----------------------
restored=$mnt/restored.img
cold
t0=$(now)
"$VDISK" backup restore latest --repo "$repo" --json --progress none --to "$restored" > "$work/restore.json"
t1=$(now)
restore_s=$(elapsed "$t0" "$t1")
sha3=$(sha256sum "$restored" | cut -d' ' -f1)
[[ $sha3 == "$sha2" ]] || { echo "backup.sh: restored image differs from snapshot 2!" >&2; exit 1; }
log "restore: $restore_s s, allocation $(alloc "$restored") (source $(alloc "$mnt/snap2.img")), checksum identical"
backup_mibs=$(awk -v d="$data_bytes" -v s="$full_s" 'BEGIN{printf "%.1f", d / 1048576 / s}')
restore_mibs=$(awk -v d="$data_bytes" -v s="$restore_s" 'BEGIN{printf "%.1f", d / 1048576 / s}')
bench_line restore MiB/s "$restore_mibs" "full backup MiB/s" "$backup_mibs" 1
echo "backup: snapshot checksums $sha1 / $sha2, restore identical"
