#!/usr/bin/env bash
# bench/run.sh backup: backup of a VM disk to radosgw (its own single-node Ceph from
# tests/env/ceph.sh) — vdisk vs `aws s3 cp` (Debian's /usr/bin/aws, tuned: 16 concurrent
# requests, 64 MiB parts) of the same raw image to the same radosgw, and vs restic 0.14
# (Debian's `restic`: repository v2, zstd auto compression, content-defined chunking; the
# engine Velero/OADP used for file-system backups) on the same disk and the same radosgw.
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
command -v restic >/dev/null || { echo "backup.sh: restic missing (scripts/deps.sh installs it)" >&2; exit 1; }
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
bench_context
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

# The 1% change, made once for every pair: snapshot 2 = snapshot 1 with 1% of the disk's 1 MiB
# blocks rewritten.
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

export RESTIC_PASSWORD=bench-password AWS_ACCESS_KEY_ID=$S3_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$S3_SECRET_KEY
s3size() {  # <bucket>: bytes stored
  "$AWS" --endpoint-url "$S3_ENDPOINT" s3 ls --recursive --summarize "s3://$1/" | awk '/Total Size/{print $3}'
}
s3objects() { "$AWS" --endpoint-url "$S3_ENDPOINT" s3 ls --recursive "s3://$1/" | wc -l; }
s3drop() { "$AWS" --endpoint-url "$S3_ENDPOINT" s3 rb --force "s3://$1" >/dev/null 2>&1 || true; }

cold_timed() {  # <name> <stdout file> <command...>: seconds from a cold page cache; the
  # command's peak RSS (KiB, /usr/bin/time %M) into $work/<name>.rss
  local name=$1 out=$2 t0 t1
  shift 2
  cold
  t0=$(now)
  /usr/bin/time -f %M -o "$work/$name.rss" "$@" > "$out"
  t1=$(now)
  elapsed "$t0" "$t1"
}
vd_backup() {  # <repo> <snapshot file> <name> [more flags]: seconds; JSON in $work/<name>.json
  local repo=$1 snap=$2 name=$3
  shift 3
  cold_timed "$name" "$work/$name.json" "$VDISK" backup create --repo "$repo" --json \
    --progress none --disk rootdisk="$snap" --source-snapshot rootdisk="$(basename "$snap" .img)" "$@"
}
vd_restore() {  # <repo> <to> <name>: seconds through the fsync (vdisk restore flushes)
  cold_timed "$3" "$work/$3.json" "$VDISK" backup restore latest --repo "$1" --json \
    --progress none --to "$2"
}
rs_backup() {  # <repo> <snapshot file> <name>: seconds. The same path every time (as a pod's
  # volume), so restic's second run sees a changed file and reads it all, as vdisk does.
  rm -f "$mnt/restic-disk.img"
  cp --reflink=always "$2" "$mnt/restic-disk.img"
  cold_timed "$3" /dev/stderr restic -r "$1" backup --quiet --compression auto --host bench \
    "$mnt/restic-disk.img"
}
rs_restore() {  # <repo> <dir> <name>: seconds through the fsync
  # shellcheck disable=SC2016
  cold_timed "$3" /dev/stderr sh -c 'restic -r "$1" restore latest --target "$2" && sync -f "$2"' \
    sh "$1" "$2"
}

# both <pair> <vdisk array> <restic array> <vdisk command...> -- <restic command...>: runs the
# two in the pair's order (vdisk first in odd pairs) and appends each one's seconds.
both() {
  local p=$1
  local -n va=$2 ra=$3
  shift 3
  local vcmd=() rcmd=()
  while [[ $1 != -- ]]; do vcmd+=("$1"); shift; done
  shift
  rcmd=("$@")
  if (( p % 2 )); then
    va+=("$("${vcmd[@]}")"); ra+=("$("${rcmd[@]}")")
  else
    ra+=("$("${rcmd[@]}")"); va+=("$("${vcmd[@]}")")
  fi
}

declare -a aws_s full_s restic_full_s second_s restic_second_s vrestore_s rrestore_s incr_s \
  vstored rstored valloc ralloc vrss rrss vrrss rrrss restore_mibs backup_mibs
for p in $(seq "$BENCH_PAIRS"); do
  log "pair $p of $BENCH_PAIRS (load $(cut -d' ' -f1-3 /proc/loadavg))"
  vrepo=s3://bench-vdisk-$p/repo
  rbucket=bench-restic-$p
  rrepo=s3:$S3_ENDPOINT/$rbucket/repo
  "$VDISK" backup init --repo "$vrepo" --create >&2
  "$AWS" --endpoint-url "$S3_ENDPOINT" s3 mb "s3://$rbucket" >/dev/null
  restic -r "$rrepo" init --repository-version 2 >/dev/null

  # full: aws s3 cp of the raw image, vdisk and restic backups of snapshot 1
  cold
  t0=$(now)
  "$AWS" --endpoint-url "$S3_ENDPOINT" s3 cp --only-show-errors "$mnt/snap1.img" s3://bench-aws/disk.img
  t1=$(now)
  aws_s+=("$(elapsed "$t0" "$t1")")
  "$AWS" --endpoint-url "$S3_ENDPOINT" s3 rm --only-show-errors s3://bench-aws/disk.img
  both "$p" full_s restic_full_s vd_backup "$vrepo" "$mnt/snap1.img" "full-$p" -- \
    rs_backup "$rrepo" "$mnt/snap1.img" "rfull-$p"
  vrss+=("$(cat "$work/full-$p.rss")"); rrss+=("$(cat "$work/rfull-$p.rss")")
  log "full: aws ${aws_s[-1]} s, vdisk ${full_s[-1]} s ($(jq -c '.disks[0] | {bytes_read, bytes_stored_new, chunks_new}' "$work/full-$p.json")), restic ${restic_full_s[-1]} s; peak RSS vdisk ${vrss[-1]} KiB, restic ${rrss[-1]} KiB"
  if (( p == 1 )); then
    objects=$(s3objects "bench-vdisk-$p")
    per_gib=$(awk -v o="$objects" -v d="$data_bytes" 'BEGIN{printf "%.2f", o / (d / 1073741824)}')
    echo "backup: objects after the full backup: $objects ($per_gib per GiB of data), stored $(s3size "bench-vdisk-$p") bytes for $data_bytes data bytes" >&2
  fi
  backup_mibs+=("$(awk -v d="$data_bytes" -v s="${full_s[-1]}" 'BEGIN{printf "%.1f", d / 1048576 / s}')")

  # second backup of snapshot 2 without a change map (both read everything, deduplicate)
  both "$p" second_s restic_second_s vd_backup "$vrepo" "$mnt/snap2.img" "second-$p" -- \
    rs_backup "$rrepo" "$mnt/snap2.img" "rsecond-$p"
  log "second (no change map): vdisk ${second_s[-1]} s ($(jq -c '.disks[0] | {bytes_read, bytes_stored_new, chunks_new}' "$work/second-$p.json")), restic ${restic_second_s[-1]} s"
  vstored+=("$(s3size "bench-vdisk-$p")"); rstored+=("$(s3size "$rbucket")")

  # restores of the second backup
  rm -rf "$mnt/restored.img" "$mnt/restic-restore"
  both "$p" vrestore_s rrestore_s vd_restore "$vrepo" "$mnt/restored.img" "restore-$p" -- \
    rs_restore "$rrepo" "$mnt/restic-restore" "rrestore-$p"
  rfile=$(find "$mnt/restic-restore" -name restic-disk.img | head -1)
  [[ $(sha256sum "$mnt/restored.img" | cut -d' ' -f1) == "$sha2" ]] || { echo "backup.sh: vdisk's restore differs from snapshot 2!" >&2; exit 1; }
  [[ $(sha256sum "$rfile" | cut -d' ' -f1) == "$sha2" ]] || { echo "backup.sh: restic's restore differs from snapshot 2!" >&2; exit 1; }
  valloc+=("$(alloc "$mnt/restored.img")"); ralloc+=("$(alloc "$rfile")")
  vrrss+=("$(cat "$work/restore-$p.rss")"); rrrss+=("$(cat "$work/rrestore-$p.rss")")
  restore_mibs+=("$(awk -v d="$data_bytes" -v s="${vrestore_s[-1]}" 'BEGIN{printf "%.1f", d / 1048576 / s}')")
  log "restore: vdisk ${vrestore_s[-1]} s (allocation ${valloc[-1]}), restic ${rrestore_s[-1]} s (allocation ${ralloc[-1]}), source allocation $(alloc "$mnt/snap2.img"); both checksums identical; peak RSS vdisk ${vrrss[-1]} KiB, restic ${rrrss[-1]} KiB"
  rm -rf "$mnt/restored.img" "$mnt/restic-restore" "$mnt/restic-disk.img"

  # incremental with the FIEMAP change map, into its own repository holding only the full
  irepo=s3://bench-vdisk-incr-$p/repo
  "$VDISK" backup init --repo "$irepo" --create >&2
  vd_backup "$irepo" "$mnt/snap1.img" "ifull-$p" >/dev/null
  incr_s+=("$(vd_backup "$irepo" "$mnt/snap2.img" "incr-$p" --changed-since rootdisk="$mnt/snap1.img")")
  log "incremental with change map: ${incr_s[-1]} s ($(jq -c '.disks[0] | {change_map, bytes_read, chunks_new}' "$work/incr-$p.json"))"
  s3drop "bench-vdisk-$p"; s3drop "$rbucket"; s3drop "bench-vdisk-incr-$p"
done

pairs_line full seconds "aws s3 cp (16 requests, 64 MiB parts)" 0 "${full_s[*]}" "${aws_s[*]}" 1.5
pairs_line incremental seconds "full backup" 0 "${incr_s[*]}" "${full_s[*]}" 20
pairs_line restore MiB/s "full backup MiB/s" 1 "${restore_mibs[*]}" "${backup_mibs[*]}" 1.0
pairs_line restic-full seconds "restic 0.14 backup" 0 "${full_s[*]}" "${restic_full_s[*]}"
pairs_line restic-second seconds "restic 0.14 backup (no change map)" 0 "${second_s[*]}" "${restic_second_s[*]}"
pairs_line restic-restore seconds "restic 0.14 restore" 0 "${vrestore_s[*]}" "${rrestore_s[*]}"
pairs_line restic-stored bytes "restic 0.14 (bucket bytes)" 0 "${vstored[*]}" "${rstored[*]}"
pairs_line restic-restored-allocation bytes "restic 0.14 (restored file)" 0 "${valloc[*]}" "${ralloc[*]}"
pairs_line backup-peak-rss KiB "restic 0.14 backup" 0 "${vrss[*]}" "${rrss[*]}"
pairs_line restore-peak-rss KiB "restic 0.14 restore" 0 "${vrrss[*]}" "${rrrss[*]}"
echo "backup: snapshot checksums $sha1 / $sha2, restores identical" >&2
