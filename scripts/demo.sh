#!/usr/bin/env bash
# README command 1: install what is needed, build, start vdisk-csi on the embedded local pool and
# walk a VM disk's life through the CSI socket with the `vdisk` CLI, checking the bytes at every
# step:
#
#   create a Block volume (RWO) and a Filesystem volume (RWX)   CreateVolume
#   stage + publish both, write a known pattern, checksum it    NodeStageVolume, NodePublishVolume
#   snapshot both, change the originals                         CreateSnapshot
#   restore each snapshot into a new, larger volume             CreateVolume from a snapshot
#   clone a volume                                              CreateVolume from a volume
#   expand a published volume                                   ControllerExpandVolume, NodeExpandVolume
#   back up snapshots (full, then incremental) to a file:// repo  vdisk backup init/create/verify
#   restore onto a new volume and into a sparse file, compare   vdisk backup restore/show
#   stats, unpublish, unstage, delete everything                NodeGetVolumeStats, ... DeleteVolume
#
# The pool lives on a reflink-capable filesystem so snapshots and clones are O(1) reflinks: the
# data directory itself if it can reflink, else an XFS image loop-mounted there (tests/env/xfs.sh).
# Nothing stays mounted, attached or running afterwards (trap), and any checksum mismatch exits 3.
#
#   scripts/demo.sh [--skip-deps] [--skip-build] [--dir DIR] [--size-mib N]
#   (environment: VDISK_BUILD_DIR, default build)
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD

SKIP_DEPS=0 SKIP_BUILD=0
DEMO_DIR=${VDISK_DEMO_DIR:-/var/tmp/vdisk-demo}
PATTERN_MIB=64
while (($#)); do
  case $1 in
    --skip-deps) SKIP_DEPS=1 ;;
    --skip-build) SKIP_BUILD=1 ;;
    --dir) DEMO_DIR=$2; shift ;;
    --size-mib) PATTERN_MIB=$2; shift ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "demo.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

if [[ $(id -u) -ne 0 ]]; then
  echo "demo.sh: run as root (apt, loop devices and mounts)" >&2
  exit 1
fi

BUILD_DIR=${VDISK_BUILD_DIR:-build}
[[ $BUILD_DIR = /* ]] || BUILD_DIR=$REPO/$BUILD_DIR

bold= dim= reset=
if [[ -t 1 ]]; then bold=$(tput bold 2>/dev/null || true) dim=$(tput dim 2>/dev/null || true) reset=$(tput sgr0 2>/dev/null || true); fi
step() { echo; echo "${bold}==> $*${reset}"; }
say() { echo "    $*"; }
# Runs and shows a command.
run() { echo "${dim}    \$ $*${reset}" >&2; "$@"; }
fail() { echo "demo.sh: FAILED: $*" >&2; exit 3; }
ms_since() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }

# ------------------------------------------------------------------------------------------------
if ((!SKIP_DEPS)); then
  step "Installing dependencies (scripts/deps.sh)"
  scripts/deps.sh
fi
if ((!SKIP_BUILD)); then
  step "Building (scripts/build.sh -> $BUILD_DIR)"
  VDISK_BUILD_DIR=$BUILD_DIR scripts/build.sh
fi
VDISK=$BUILD_DIR/cli/vdisk
DRIVER=$BUILD_DIR/csi/vdisk-csi
[[ -x $VDISK && -x $DRIVER ]] || { echo "demo.sh: $VDISK or $DRIVER missing: build first" >&2; exit 1; }

# ------------------------------------------------------------------------------------------------
# Layout: DEMO_DIR/data (the pool; XFS if needed), DEMO_DIR/state, DEMO_DIR/kubelet/... (paths
# the way kubelet lays them out), DEMO_DIR/work (patterns, log).
if [[ -e $DEMO_DIR ]] && [[ -n $(ls -A "$DEMO_DIR" 2>/dev/null) ]]; then
  if grep -qs " $DEMO_DIR/" /proc/self/mountinfo; then
    echo "demo.sh: $DEMO_DIR has mounts from an earlier run; clean it up first" >&2
    exit 1
  fi
  rm -rf "$DEMO_DIR"
fi
mkdir -p "$DEMO_DIR"/{data,state,kubelet,work}
DATA=$DEMO_DIR/data
KUBELET=$DEMO_DIR/kubelet
WORK=$DEMO_DIR/work
KEPT_LOG=${DEMO_DIR%/}-vdisk-csi.log   # where the driver's log goes if a step fails
SOCK=/run/vdisk-demo-$$.sock
ENDPOINT=unix://$SOCK
export VDISK_CSI_ENDPOINT=$ENDPOINT
DRIVER_PID=
XFS_MOUNTED=0

# Everything the demo may have left: published targets, staged volumes, the driver, the XFS image.
declare -a PUBLISHED=() STAGED=() VOLUMES=() SNAPSHOTS=()
cleanup() {
  local rc=$?
  set +e
  if [[ -n $DRIVER_PID ]] && kill -0 "$DRIVER_PID" 2>/dev/null; then
    for p in "${PUBLISHED[@]}"; do [[ -n $p ]] && "$VDISK" volume unpublish ${p% *} --target "${p#* }" >/dev/null 2>&1; done
    for s in "${STAGED[@]}"; do [[ -n $s ]] && "$VDISK" volume unstage ${s% *} --staging-path "${s#* }" >/dev/null 2>&1; done
    for s in "${SNAPSHOTS[@]}"; do "$VDISK" snapshot delete "$s" >/dev/null 2>&1; done
    for v in "${VOLUMES[@]}"; do "$VDISK" volume delete "$v" >/dev/null 2>&1; done
    kill -TERM "$DRIVER_PID"; wait "$DRIVER_PID" 2>/dev/null
  fi
  # Belt and braces: nothing below the demo directory stays mounted or attached.
  for m in $(awk -v d="$DEMO_DIR/" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo | sort -r); do
    [[ $m == "$DATA" ]] && continue
    umount "$m" 2>/dev/null || umount -l "$m"
  done
  for l in /sys/block/loop*/loop/backing_file; do
    [[ -r $l ]] || continue
    if [[ $(cat "$l") == "$DATA"/* ]]; then losetup -d "/dev/$(basename "$(dirname "$(dirname "$l")")")" 2>/dev/null; fi
  done
  ((XFS_MOUNTED)) && "$REPO/tests/env/xfs.sh" down "$DATA" >/dev/null 2>&1
  # On failure the driver's log is what explains it: keep it outside the directory we remove.
  if ((rc != 0)) && [[ -s $WORK/vdisk-csi.log ]]; then
    cp "$WORK/vdisk-csi.log" "$KEPT_LOG" && echo "demo.sh: failed (exit $rc); the driver's log is kept at $KEPT_LOG" >&2
  fi
  rm -rf "$DEMO_DIR" "$SOCK"
  if ((rc == 0)); then echo; echo "${bold}demo.sh: all checks passed; nothing left mounted, attached or running.${reset}"; fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------------------------------------------------
# The mounted file system's type as the kernel names it (statfs says "ext2/ext3" for ext4).
fs_type() { findmnt -n -o FSTYPE --target "$1" 2>/dev/null || stat -f -c %T "$1"; }
step "Preparing a reflink-capable data directory for the local pool"
probe=$DATA/.reflink-probe
head -c 4096 /dev/urandom > "$probe"
if cp --reflink=always "$probe" "$probe.2" 2>/dev/null; then
  say "$DATA ($(fs_type "$DATA")) supports reflinks: snapshots and clones will be O(1)"
  rm -f "$probe" "$probe.2"
else
  rm -f "$probe" "$probe.2"
  say "$(fs_type "$DATA") at $DATA cannot reflink; loop-mounting a sparse 20 GiB XFS image (mkfs.xfs -m reflink=1)"
  run "$REPO/tests/env/xfs.sh" up "$DEMO_DIR/xfs.img" "$DATA" 20G
  XFS_MOUNTED=1
fi

step "Starting vdisk-csi on the embedded local pool"
DRIVER_ARGS=(--endpoint "$ENDPOINT" --node-id demo-node --pool "local:$DATA/pool"
  --state-dir "$DEMO_DIR/state" --allowed-target-root "$KUBELET" -v)
echo "${dim}    \$ $DRIVER ${DRIVER_ARGS[*]} &${reset}"
"$DRIVER" "${DRIVER_ARGS[@]}" > "$WORK/vdisk-csi.log" 2>&1 &
DRIVER_PID=$!  # the driver itself, so the trap can stop it
for _ in $(seq 100); do
  [[ -S $SOCK ]] && break
  kill -0 "$DRIVER_PID" 2>/dev/null || { cat "$WORK/vdisk-csi.log"; fail "vdisk-csi exited at start-up"; }
  sleep 0.1
done
[[ -S $SOCK ]] || fail "vdisk-csi did not create $SOCK"
say "serving on $SOCK (log: $WORK/vdisk-csi.log)"
run "$VDISK" volume capacity

# ------------------------------------------------------------------------------------------------
# Helpers: the paths kubelet would use, and byte checks.
staging_of() { echo "$KUBELET/plugins/kubernetes.io/csi/vdisk.csi.io/$1/globalmount"; }
target_of() { echo "$KUBELET/pods/$2/volumes/$1"; }
data_path() { if [[ $2 == block ]]; then echo "$1"; else echo "$1/disk.img"; fi; }
stage_publish() {  # id mode tag [access]
  local id=$1 mode=$2 tag=$3 access=${4:-rwo}
  local staging target
  staging=$(staging_of "$tag") target=$(target_of "$tag" "pod-$tag")
  mkdir -p "$staging" "$(dirname "$target")"   # kubelet creates these; the driver the target
  run "$VDISK" volume stage "$id" --staging-path "$staging" --access "$access"
  STAGED+=("$id $staging")
  run "$VDISK" volume publish "$id" --staging-path "$staging" --target "$target" --access "$access"
  PUBLISHED+=("$id $target")
  LAST_TARGET=$target LAST_STAGING=$staging
}
unpublish_unstage() {  # id tag
  local id=$1 staging target
  staging=$(staging_of "$2") target=$(target_of "$2" "pod-$2")
  run "$VDISK" volume unpublish "$id" --target "$target"
  PUBLISHED=("${PUBLISHED[@]/"$id $target"}")
  run "$VDISK" volume unstage "$id" --staging-path "$staging"
  STAGED=("${STAGED[@]/"$id $staging"}")
  [[ ! -e $target ]] || fail "$target still exists after NodeUnpublishVolume"
}
write_pattern() {  # file offset_mib pattern_file
  dd if="$3" of="$1" bs=1M seek="$2" conv=notrunc,fsync status=none
}
checksum() {  # file offset_mib
  dd if="$1" bs=1M skip="$2" count="$PATTERN_MIB" status=none | sha256sum | cut -d' ' -f1
}
expect_sum() {  # what file offset want
  local got
  got=$(checksum "$2" "$3")
  if [[ $got != "$4" ]]; then fail "$1: sha256 $got, expected $4"; fi
  say "ok  $1  sha256 ${got:0:16}…"
}

head -c $((PATTERN_MIB << 20)) /dev/urandom > "$WORK/pattern-a"
head -c $((PATTERN_MIB << 20)) /dev/urandom > "$WORK/pattern-b"
SUM_A=$(sha256sum < "$WORK/pattern-a" | cut -d' ' -f1)
SUM_B=$(sha256sum < "$WORK/pattern-b" | cut -d' ' -f1)

# ------------------------------------------------------------------------------------------------
step "Creating a Block volume (RWO) and a Filesystem volume (RWX), 1 GiB each"
out=$(run "$VDISK" volume create vm-root-disk --size 1G --mode block --access rwo); echo "$out"
BLK=$(sed -n 's/^volume \([^ ]*\) .*/\1/p' <<<"$out"); VOLUMES+=("$BLK")
out=$(run "$VDISK" volume create vm-data-disk --size 1G --mode filesystem --access rwx); echo "$out"
FSV=$(sed -n 's/^volume \([^ ]*\) .*/\1/p' <<<"$out"); VOLUMES+=("$FSV")
say "creating them again returns the same volumes (CreateVolume is idempotent by name):"
again=$("$VDISK" volume create vm-root-disk --size 1G --mode block --access rwo | sed -n 's/^volume \([^ ]*\) .*/\1/p')
[[ $again == "$BLK" ]] || fail "idempotent CreateVolume returned $again, not $BLK"
say "ok  vm-root-disk -> $again"
run "$VDISK" volume list

step "Staging and publishing them as kubelet would"
stage_publish "$BLK" block root; BLK_T=$LAST_TARGET
stage_publish "$FSV" filesystem data rwx; FSV_T=$LAST_TARGET
say "$BLK_T is a block device node: $(stat -c '%F' "$BLK_T"), $(blockdev --getsize64 "$BLK_T") bytes"
say "$FSV_T is a directory holding: $(ls "$FSV_T")"

step "Writing a known ${PATTERN_MIB} MiB pattern at 100 MiB into each and checking it"
write_pattern "$BLK_T" 100 "$WORK/pattern-a"
write_pattern "$(data_path "$FSV_T" fs)" 100 "$WORK/pattern-a"
expect_sum "block volume" "$BLK_T" 100 "$SUM_A"
expect_sum "filesystem volume disk.img" "$(data_path "$FSV_T" fs)" 100 "$SUM_A"
run "$VDISK" volume stats "$BLK" --path "$BLK_T"

step "Snapshotting both (CreateSnapshot), then changing the originals"
t0=$(date +%s%N)
out=$(run "$VDISK" snapshot create vm-root-disk-snap --volume "$BLK"); echo "$out"
SNAP_BLK=$(sed -n 's/^snapshot \([^ ]*\) .*/\1/p' <<<"$out"); SNAPSHOTS+=("$SNAP_BLK")
say "snapshot of the 1 GiB block volume took $(ms_since "$t0") ms"
out=$(run "$VDISK" snapshot create vm-data-disk-snap --volume "$FSV"); echo "$out"
SNAP_FSV=$(sed -n 's/^snapshot \([^ ]*\) .*/\1/p' <<<"$out"); SNAPSHOTS+=("$SNAP_FSV")
write_pattern "$BLK_T" 100 "$WORK/pattern-b"
write_pattern "$(data_path "$FSV_T" fs)" 100 "$WORK/pattern-b"
expect_sum "block volume now holds pattern B" "$BLK_T" 100 "$SUM_B"
run "$VDISK" snapshot list

step "Restoring each snapshot into a new 2 GiB volume: the snapshot's bytes, not the new ones"
t0=$(date +%s%N)
out=$(run "$VDISK" volume create vm-root-restored --size 2G --mode block --from-snapshot "$SNAP_BLK"); echo "$out"
RST_BLK=$(sed -n 's/^volume \([^ ]*\) .*/\1/p' <<<"$out"); VOLUMES+=("$RST_BLK")
say "restore took $(ms_since "$t0") ms"
out=$(run "$VDISK" volume create vm-data-restored --size 2G --mode filesystem --access rwx --from-snapshot "$SNAP_FSV"); echo "$out"
RST_FSV=$(sed -n 's/^volume \([^ ]*\) .*/\1/p' <<<"$out"); VOLUMES+=("$RST_FSV")
stage_publish "$RST_BLK" block root-restored; RST_BLK_T=$LAST_TARGET
stage_publish "$RST_FSV" filesystem data-restored rwx; RST_FSV_T=$LAST_TARGET
expect_sum "restored block volume" "$RST_BLK_T" 100 "$SUM_A"
expect_sum "restored filesystem volume" "$(data_path "$RST_FSV_T" fs)" 100 "$SUM_A"
[[ $(blockdev --getsize64 "$RST_BLK_T") == $((2 << 30)) ]] || fail "restored block volume is not 2 GiB"
say "ok  restored block volume is 2 GiB"
unpublish_unstage "$RST_BLK" root-restored
unpublish_unstage "$RST_FSV" data-restored

step "Cloning the (published, changed) block volume"
t0=$(date +%s%N)
out=$(run "$VDISK" clone vm-root-clone --from-volume "$BLK"); echo "$out"
CLN=$(sed -n 's/^volume \([^ ]*\) .*/\1/p' <<<"$out"); VOLUMES+=("$CLN")
say "clone of the 1 GiB volume took $(ms_since "$t0") ms"
stage_publish "$CLN" block clone; CLN_T=$LAST_TARGET
expect_sum "clone" "$CLN_T" 100 "$SUM_B"
write_pattern "$CLN_T" 100 "$WORK/pattern-a"
expect_sum "source unchanged after writing the clone" "$BLK_T" 100 "$SUM_B"
unpublish_unstage "$CLN" clone

step "Expanding the published block volume to 3 GiB (controller, then node) and the filesystem volume"
run "$VDISK" volume expand "$BLK" --size 3G --path "$BLK_T" --staging-path "$(staging_of root)"
[[ $(blockdev --getsize64 "$BLK_T") == $((3 << 30)) ]] || fail "the published device did not grow to 3 GiB"
say "ok  the published device now has $(blockdev --getsize64 "$BLK_T") bytes"
expect_sum "block data after expansion" "$BLK_T" 100 "$SUM_B"
run "$VDISK" volume expand "$FSV" --size 2G
[[ $(stat -c %s "$(data_path "$FSV_T" fs)") == $((2 << 30)) ]] || fail "disk.img did not grow to 2 GiB"
say "ok  disk.img is now $(stat -c %s "$(data_path "$FSV_T" fs)") bytes"
expect_sum "filesystem data after expansion" "$(data_path "$FSV_T" fs)" 100 "$SUM_B"
run "$VDISK" volume stats "$FSV" --path "$FSV_T"

# ------------------------------------------------------------------------------------------------
step "Backing up the VM's root disk OADP-style: from its snapshots, with its manifests, encrypted"
BACKUPS=file://$DEMO_DIR/backups   # any s3://bucket/prefix works the same (docs/backup.md)
export VDISK_BACKUP_PASSWORD="demo-$(head -c 18 /dev/urandom | base64)"
cat > "$WORK/vm.yaml" <<YAML
apiVersion: kubevirt.io/v1
kind: VirtualMachine
metadata: {name: demo-vm, namespace: demo}
spec:
  runStrategy: Halted
  template:
    spec:
      domain: {devices: {disks: [{name: rootdisk, disk: {bus: virtio}}]}, resources: {requests: {memory: 1Gi}}}
      volumes: [{name: rootdisk, persistentVolumeClaim: {claimName: vm-root-disk}}]
YAML
run "$VDISK" backup init --repo "$BACKUPS" --create
backup_of() {  # snapshot_id label -> prints the backup id
  local out
  out=$(run "$VDISK" backup create --repo "$BACKUPS" --progress none --pool "local:$DATA/pool" \
    --disk "rootdisk=snapshot:$1" --source-snapshot "rootdisk=$2" --volume "rootdisk=vm-root-disk" \
    --k8s "$WORK/vm.yaml")
  echo "$out" >&2
  sed -n 's/^backup \([^ ]*\) .*/\1/p' <<<"$out"
}
say "full backup of snapshot vm-root-disk-snap (pattern A, 1 GiB disk):"
FULL_ID=$(backup_of "$SNAP_BLK" vm-root-disk-snap)
[[ -n $FULL_ID ]] || fail "no backup id"
out=$(run "$VDISK" snapshot create vm-root-disk-snap2 --volume "$BLK"); echo "$out"
SNAP2=$(sed -n 's/^snapshot \([^ ]*\) .*/\1/p' <<<"$out"); SNAPSHOTS+=("$SNAP2")
say "incremental backup of snapshot vm-root-disk-snap2 (pattern B, grown to 3 GiB): the pool's change map says what to read"
INCR_ID=$(backup_of "$SNAP2" vm-root-disk-snap2)
[[ -n $INCR_ID ]] || fail "no backup id"
run "$VDISK" backup list --repo "$BACKUPS"
run "$VDISK" backup verify --repo "$BACKUPS" --deep --progress none

step "Restoring the latest backup onto a new Block volume, and the first one into a sparse file"
out=$(run "$VDISK" volume create vm-root-from-backup --size 3G --mode block --access rwo); echo "$out"
RB=$(sed -n 's/^volume \([^ ]*\) .*/\1/p' <<<"$out"); VOLUMES+=("$RB")
stage_publish "$RB" block from-backup; RB_T=$LAST_TARGET
t0=$(date +%s%N)
run "$VDISK" backup restore latest --repo "$BACKUPS" --disk rootdisk --to "$RB_T" --progress none
say "restore of the 3 GiB disk took $(ms_since "$t0") ms"
expect_sum "volume restored from backup $INCR_ID" "$RB_T" 100 "$SUM_B"
cmp -s "$RB_T" "$BLK_T" || fail "the restored volume differs from the source volume"
say "ok  all $(blockdev --getsize64 "$RB_T") bytes equal the source volume's (cmp)"
unpublish_unstage "$RB" from-backup
run "$VDISK" backup restore "$FULL_ID" --repo "$BACKUPS" --disk rootdisk --to "$WORK/rootdisk-full.img" --progress none
expect_sum "file restored from the full backup $FULL_ID" "$WORK/rootdisk-full.img" 100 "$SUM_A"
say "ok  $(stat -c %s "$WORK/rootdisk-full.img") bytes, $(( $(stat -c %b "$WORK/rootdisk-full.img") * 512 >> 20 )) MiB allocated (holes restored as holes)"
run "$VDISK" backup show latest --repo "$BACKUPS" --k8s-out "$WORK/k8s" >/dev/null
cmp -s "$WORK/k8s/vm.yaml" "$WORK/vm.yaml" || { ls -R "$WORK/k8s" >&2; fail "the VirtualMachine manifest did not come back"; }
say "ok  the VirtualMachine manifest came back with the backup ($WORK/k8s/vm.yaml)"

step "Unpublishing, unstaging and deleting everything"
unpublish_unstage "$BLK" root
unpublish_unstage "$FSV" data
for s in "${SNAPSHOTS[@]}"; do run "$VDISK" snapshot delete "$s"; done
SNAPSHOTS=()
for v in "${VOLUMES[@]}"; do run "$VDISK" volume delete "$v"; done
VOLUMES=()
left=$("$VDISK" volume list --json)
[[ $left == "[]" ]] || fail "volumes left: $left"
say "ok  no volumes left"
if grep -qs " $KUBELET/" /proc/self/mountinfo; then fail "mounts left under $KUBELET"; fi
say "ok  no mounts left under $KUBELET"
