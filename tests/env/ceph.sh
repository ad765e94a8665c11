#!/usr/bin/env bash
# A single-node Ceph 16.2 cluster (mon + mgr + one bluestore OSD + radosgw) on 127.0.0.1, for
# tests and benchmarks. Everything lives in <dir>; daemons are tracked and stopped by pid.
#
#   tests/env/ceph.sh up <dir>         start (reuses an existing cluster in <dir>, else creates
#                                      one); returns once RBD and S3 answer. Idempotent.
#   tests/env/ceph.sh down <dir>       stop every daemon by pid, remove <dir>
#   tests/env/ceph.sh stop <dir>       stop every daemon by pid, keep <dir> (restart with up)
#   tests/env/ceph.sh stop-rgw <dir>   stop radosgw only (S3 outage tests)
#   tests/env/ceph.sh start-rgw <dir>  start radosgw again, wait until S3 answers
#   tests/env/ceph.sh stop-osd <dir>   stop the OSD only (RADOS I/O blocks: fault tests); use a
#                                      cluster of your own, every client of this one stalls
#   tests/env/ceph.sh start-osd <dir>  start the OSD again, wait until RADOS I/O answers
#   tests/env/ceph.sh status <dir>     daemons, their pids, `ceph -s`
#
# Files written in <dir>:
#   ceph.conf, keyring (client.admin, and the other client keys), vdisk.keyring (client.vdisk
#            only: the restricted driver user)
#   rbd.env  CEPH_CONF CEPH_KEYRING CEPH_USER RBD_POOL MON_HOST CEPH_DRIVER_USER CEPH_DRIVER_KEY
#            CEPH_DRIVER_KEYRING CEPH_FSID
#   s3.env   S3_ENDPOINT S3_ACCESS_KEY S3_SECRET_KEY S3_REGION (+ the same as AWS_* for awscli)
#   log/     daemon logs (printed when bring-up fails)
#
# Ports (picked at creation, kept for the cluster's life, written to ports.env): mon v2 3300 and
# v1 6789, radosgw 7480 — or the next free ones if taken (a second cluster on the same host).
# Override with CEPH_MON_PORT / CEPH_MON_V1_PORT / CEPH_RGW_PORT. OSD and mgr bind in 6800-7300.
#
# Requires root only for nothing in particular; the Debian packages ceph-mon ceph-osd ceph-mgr
# radosgw ceph-common (scripts/deps.sh). Needs ~650 MB RAM and a few hundred MB of disk.
set -euo pipefail

usage() {
  sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

cmd=${1:-}
dir=${2:-}
[[ -n $cmd && -n $dir ]] || usage
if [[ $cmd == up ]]; then mkdir -p "$dir"; fi
if [[ ! -d $dir ]]; then
  [[ $cmd == down || $cmd == stop ]] && exit 0
  echo "ceph.sh: no cluster directory $dir" >&2; exit 1
fi
dir=$(cd "$dir" && pwd)
conf=$dir/ceph.conf
MARK=$dir/.vdisk-ceph
# Client commands of this script: admin identity, bounded waits.
C=(-c "$conf")

log() { echo "ceph.sh: $*" >&2; }

# ---------------------------------------------------------------------------------------------
# Processes: started detached (own session, stdio to a log), tracked by pid file.

pid_alive() {  # pid_alive <pid> <binary-name>
  local pid=$1 name=$2 state
  [[ -n $pid && -r /proc/$pid/stat ]] || return 1
  state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || return 1
  [[ $state != Z && $state != X ]] || return 1
  tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$name" || return 1
}

daemon_pid() { cat "$dir/pids/$1.pid" 2>/dev/null || true; }

daemon_running() {  # daemon_running <name> <binary>
  pid_alive "$(daemon_pid "$1")" "$2"
}

start_daemon() {  # start_daemon <name> <binary> args...
  local name=$1; shift
  if daemon_running "$name" "$1"; then return 0; fi
  mkdir -p "$dir/pids" "$dir/log"
  # Not a process-group leader here, so setsid execs in place and $! is the daemon's pid.
  setsid "$@" -f -c "$conf" </dev/null >>"$dir/log/$name.out" 2>&1 &
  echo $! > "$dir/pids/$name.pid"
}

stop_daemon() {  # stop_daemon <name> <binary> [grace seconds, default 10]
  local name=$1 bin=$2 grace=${3:-10} pid i
  pid=$(daemon_pid "$name")
  if pid_alive "$pid" "$bin"; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < grace * 10; i++)); do
      pid_alive "$pid" "$bin" || break
      sleep 0.1
    done
    if pid_alive "$pid" "$bin"; then
      [[ $name == rgw ]] || log "$name (pid $pid) still running ${grace}s after SIGTERM; SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      for ((i = 0; i < 50; i++)); do pid_alive "$pid" "$bin" || break; sleep 0.1; done
    fi
  fi
  rm -f "$dir/pids/$name.pid"
}

DAEMONS=("rgw radosgw" "osd ceph-osd" "mgr ceph-mgr" "mon ceph-mon")
# radosgw drains for ~5 s on SIGTERM; it holds no state of its own, so it gets 1 s.
RGW_GRACE=1

stop_all() {
  local d
  stop_daemon rgw radosgw "$RGW_GRACE"
  for d in "${DAEMONS[@]:1}"; do stop_daemon $d; done
}

dump_logs() {
  local f
  log "---- daemon logs in $dir/log (last 30 lines each) ----"
  for f in "$dir"/log/*; do
    [[ -f $f ]] || continue
    echo "==== $f" >&2
    # Timestamped lines only: skips the multi-line rocksdb statistics dumps.
    grep -a '^[0-9]\{4\}-' "$f" | grep -av 'audit \[DBG\]\|handle_command mon_command\| rocksdb: ' |
      tail -n 30 >&2 || true
  done
}

fail() {
  log "FAILED: $*"
  dump_logs
  stop_all  # leave nothing running; <dir> stays for inspection until `down`
  exit 1
}

# Fails early when a daemon started by this script has exited.
check_daemons_alive() {
  local d name bin
  for d in "${DAEMONS[@]}"; do
    read -r name bin <<<"$d"
    [[ -e $dir/pids/$name.pid ]] || continue
    daemon_running "$name" "$bin" || fail "$bin exited (see log/$name.out and log/*.log)"
  done
}

wait_for() {  # wait_for <seconds> <what> <command...>
  local secs=$1 what=$2; shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    check_daemons_alive
    ((SECONDS < deadline)) || fail "timed out after ${secs}s waiting for $what"
    sleep 0.2
  done
}

# ---------------------------------------------------------------------------------------------
# Ports

port_free() { ! ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; }

pick_port() {  # pick_port <preferred> [avoid...]
  local p=$1; shift
  while :; do
    local clash=0 a
    for a in "$@"; do [[ $a == "$p" ]] && clash=1; done
    if ((clash == 0)) && port_free "$p"; then echo "$p"; return; fi
    p=$((p + 1))
  done
}

# ---------------------------------------------------------------------------------------------
# Creation

write_conf() {
  cat > "$conf" <<EOF
# Single-node test cluster written by tests/env/ceph.sh. Not for production.
[global]
fsid = $FSID
mon_host = [v2:127.0.0.1:$MON_PORT,v1:127.0.0.1:$MON_V1_PORT]
public_addr = 127.0.0.1
cluster_addr = 127.0.0.1
auth_cluster_required = cephx
auth_service_required = cephx
auth_client_required = cephx
auth_allow_insecure_global_id_reclaim = false
osd_pool_default_size = 1
osd_pool_default_min_size = 1
mon_allow_pool_size_one = true
mon_allow_pool_delete = true
mon_warn_on_pool_no_redundancy = false
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
osd_pool_default_pg_autoscale_mode = off
osd_crush_chooseleaf_type = 0
mon_max_pg_per_osd = 1000
mon_data_avail_warn = 2
mon_data_avail_crit = 1
rbd_default_clone_format = 2
run_dir = $dir/run
crash_dir = $dir/crash
pid_file = $dir/run/\$name.pid
admin_socket = $dir/run/\$cluster-\$name.asok
log_file = $dir/log/\$cluster-\$name.log
ms_bind_port_min = 6800
ms_bind_port_max = 7300

[mon]
mon_data = $dir/mon/\$cluster-\$id
mon_initial_members = a
mon_cluster_log_file = $dir/log/\$cluster.log
# Commit map changes quickly (pool creation waits for each commit).
paxos_propose_interval = 0.1

[mgr]
mgr_data = $dir/mgr/\$cluster-\$id

[osd]
osd_data = $dir/osd/\$cluster-\$id
osd_objectstore = bluestore
bluestore_block_create = true
bluestore_block_size = ${CEPH_OSD_SIZE:-10737418240}
osd_memory_target = 1073741824
# A killed client's watch (and so its exclusive lock on an image) lapses after this long;
# the default 30 s makes every "client crashed" test wait half a minute.
osd_client_watch_timeout = 10
bluestore_fsck_on_mount = false

[client]
keyring = $dir/keyring
# One admin socket per client process, or concurrent clients clash.
admin_socket = $dir/run/\$cluster-\$name.\$pid.\$cctid.asok
log_to_file = false
client_mount_timeout = 30

[client.vdisk]
keyring = $dir/vdisk.keyring
# A test must fail, not hang until CTest's timeout, if the OSD dies under it (seen once when the
# host's disk filled: bluestore aborts on ENOSPC). Production clusters keep librados' defaults.
rados_osd_op_timeout = 90
rados_mon_op_timeout = 60

[client.rgw.gw]
keyring = $dir/rgw/keyring
admin_socket = $dir/run/\$cluster-\$name.asok
log_to_file = true
log_file = $dir/log/\$cluster-\$name.log
rgw_data = $dir/rgw
rgw_frontends = beast endpoint=127.0.0.1:$RGW_PORT
rgw_dns_name = 127.0.0.1
rgw_enable_usage_log = false
EOF
}

create_cluster() {
  log "creating a new cluster in $dir"
  # Start from an empty directory (a half-made one from an interrupted run is ours to wipe).
  stop_all
  find "$dir" -mindepth 1 -delete
  touch "$MARK"
  mkdir -p "$dir"/{run,log,crash,pids,mon,mgr/ceph-x,osd/ceph-0,rgw}

  FSID=$(cat /proc/sys/kernel/random/uuid)
  MON_PORT=${CEPH_MON_PORT:-$(pick_port 3300)}
  MON_V1_PORT=${CEPH_MON_V1_PORT:-$(pick_port 6789 "$MON_PORT")}
  RGW_PORT=${CEPH_RGW_PORT:-$(pick_port 7480 "$MON_PORT" "$MON_V1_PORT")}
  printf 'MON_PORT=%s\nMON_V1_PORT=%s\nRGW_PORT=%s\n' "$MON_PORT" "$MON_V1_PORT" "$RGW_PORT" \
    > "$dir/ports.env"
  write_conf

  # Keys: mon., client.admin in one keyring for mkfs; client.admin alone in <dir>/keyring.
  ceph-authtool --create-keyring "$dir/mon.keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
  ceph-authtool --create-keyring "$dir/keyring" --gen-key -n client.admin \
    --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' --cap mds 'allow *' >/dev/null
  ceph-authtool "$dir/mon.keyring" --import-keyring "$dir/keyring" >/dev/null
  chmod 600 "$dir/mon.keyring" "$dir/keyring"

  monmaptool --create --fsid "$FSID" \
    --addv a "[v2:127.0.0.1:$MON_PORT,v1:127.0.0.1:$MON_V1_PORT]" "$dir/monmap" >/dev/null
  ceph-mon -c "$conf" --mkfs -i a --monmap "$dir/monmap" --keyring "$dir/mon.keyring" \
    >>"$dir/log/mkfs.out" 2>&1 || fail "ceph-mon --mkfs"
  rm -f "$dir/monmap"
  start_daemon mon ceph-mon -i a
  wait_for 60 "the monitor" ceph "${C[@]}" mon stat
  log "mon up (${SECONDS}s)"

  # Manager.
  ceph "${C[@]}" auth get-or-create mgr.x mon 'allow profile mgr' osd 'allow *' mds 'allow *' \
    -o "$dir/mgr/ceph-x/keyring" || fail "mgr key"
  start_daemon mgr ceph-mgr -i x

  # One bluestore OSD on a sparse file (bluestore_block_create; leave bluestore_block_path unset).
  local osd_secret osd_id osd_uuid
  osd_secret=$(ceph-authtool --gen-print-key)
  osd_uuid=$(cat /proc/sys/kernel/random/uuid)
  osd_id=$(echo "{\"cephx_secret\": \"$osd_secret\"}" |
    ceph "${C[@]}" osd new "$osd_uuid" -i - -n client.admin) ||
    fail "ceph osd new"
  [[ $osd_id == 0 ]] || fail "unexpected osd id '$osd_id'"
  ceph-authtool --create-keyring "$dir/osd/ceph-0/keyring" --name osd.0 --add-key "$osd_secret" \
    >/dev/null
  ceph-osd -c "$conf" -i 0 --mkfs --osd-uuid "$osd_uuid" >>"$dir/log/mkfs.out" 2>&1 || fail "ceph-osd --mkfs"
  start_daemon osd ceph-osd -i 0
  wait_for 60 "osd.0 up" osd_up
  log "osd up (${SECONDS}s)"

  # Pools: rbd, and the 7 radosgw pools pre-created (radosgw answers in ~0.3 s instead of ~9 s).
  # Created in parallel: each monitor command waits for a map commit.
  local p pids=()
  for p in .rgw.root default.rgw.control default.rgw.meta default.rgw.log \
    default.rgw.buckets.index default.rgw.buckets.data default.rgw.buckets.non-ec; do
    { ceph "${C[@]}" osd pool create "$p" 8 8 && ceph "${C[@]}" osd pool application enable "$p" rgw
    } >>"$dir/log/mkfs.out" 2>&1 &
    pids+=($!)
  done
  { ceph "${C[@]}" osd pool create rbd 8 8 && rbd "${C[@]}" pool init rbd; } >>"$dir/log/mkfs.out" 2>&1 &
  pids+=($!)
  for p in "${pids[@]}"; do wait "$p" || fail "creating pools (see mkfs.out)"; done
  log "pools created (${SECONDS}s)"

  # The driver's restricted user: RBD on any pool (as ceph-csi's node/provisioner users).
  ceph "${C[@]}" auth get-or-create client.vdisk mon 'profile rbd' osd 'profile rbd' \
    mgr 'profile rbd' -o "$dir/vdisk.keyring" || fail "client.vdisk key"
  chmod 600 "$dir/vdisk.keyring"
  # <dir>/keyring holds every client key too: Ceph tools honour an exported CEPH_KEYRING
  # (rbd.env has one) over the conf file, and must still find client.vdisk / client.rgw.gw.
  ceph-authtool "$dir/keyring" --import-keyring "$dir/vdisk.keyring" >/dev/null

  # radosgw: key, daemon, an S3 user with generated keys.
  ceph "${C[@]}" auth get-or-create client.rgw.gw mon 'allow rw' osd 'allow rwx' \
    -o "$dir/rgw/keyring" || fail "rgw key"
  ceph-authtool "$dir/keyring" --import-keyring "$dir/rgw/keyring" >/dev/null
  local access secret
  access=VDISK$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n' | tr a-f A-F)
  secret=$(head -c 30 /dev/urandom | base64 | tr -d '/+=\n')
  radosgw-admin "${C[@]}" user create --uid=vdisk --display-name="vdisk tests" \
    --access-key="$access" --secret-key="$secret" >/dev/null 2>>"$dir/log/mkfs.out" ||
    fail "radosgw-admin user create"
  {
    echo "# S3 endpoint of the test cluster in $dir (radosgw, beast)."
    echo "S3_ENDPOINT=http://127.0.0.1:$RGW_PORT"
    echo "S3_ACCESS_KEY=$access"
    echo "S3_SECRET_KEY=$secret"
    echo "S3_REGION=default"
    echo "AWS_ACCESS_KEY_ID=$access"
    echo "AWS_SECRET_ACCESS_KEY=$secret"
    echo "AWS_DEFAULT_REGION=default"
    echo "AWS_ENDPOINT_URL=http://127.0.0.1:$RGW_PORT"
  } > "$dir/s3.env"

  local key
  key=$(ceph-authtool "$dir/vdisk.keyring" -n client.vdisk -p)
  {
    echo "# RBD access to the test cluster in $dir."
    echo "CEPH_CONF=$conf"
    echo "CEPH_KEYRING=$dir/keyring"
    echo "CEPH_USER=admin"
    echo "CEPH_FSID=$FSID"
    echo "RBD_POOL=rbd"
    echo "MON_HOST=127.0.0.1:$MON_V1_PORT"
    echo "MON_HOST_V2=[v2:127.0.0.1:$MON_PORT,v1:127.0.0.1:$MON_V1_PORT]"
    echo "CEPH_DRIVER_USER=vdisk"
    echo "CEPH_DRIVER_KEY=$key"
    echo "CEPH_DRIVER_KEYRING=$dir/vdisk.keyring"
  } > "$dir/rbd.env"
  chmod 600 "$dir/rbd.env" "$dir/s3.env"

  start_daemon rgw radosgw -n client.rgw.gw
  touch "$dir/.created"
}

osd_up() {
  ceph "${C[@]}" osd dump -f json 2>/dev/null | grep -q '"up":1'
}

rados_answers() {
  timeout 20 rados "${C[@]}" -p rbd put .vdisk-ceph-probe "$conf" &&
    timeout 20 rados "${C[@]}" -p rbd rm .vdisk-ceph-probe
}

# True if our own daemon <name> is the one listening on <port>: another cluster on this host may
# have taken the port between pick_port and the bind (its answers would look like ours).
port_is_ours() {  # port_is_ours <daemon> <port>
  local pid
  pid=$(daemon_pid "$1")
  [[ -n $pid ]] && ss -Hltnp "sport = :$2" 2>/dev/null | grep -q "pid=$pid,"
}

s3_answers() {
  local code
  if ! port_is_ours rgw "$RGW_PORT"; then
    if ss -Hltn "sport = :$RGW_PORT" 2>/dev/null | grep -q .; then
      log "127.0.0.1:$RGW_PORT is served by another process, not this cluster's radosgw"
    fi
    return 1
  fi
  code=$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:$RGW_PORT/") || return 1
  [[ $code == 200 ]]
}

load_ports() {
  # shellcheck disable=SC1091
  source "$dir/ports.env"
}

start_existing() {
  load_ports
  start_daemon mon ceph-mon -i a
  start_daemon mgr ceph-mgr -i x
  start_daemon osd ceph-osd -i 0
  start_daemon rgw radosgw -n client.rgw.gw
}

wait_ready() {
  wait_for 60 "the monitor" ceph "${C[@]}" mon stat
  wait_for 90 "osd.0 up" osd_up
  wait_for 90 "RADOS I/O on pool rbd" rados_answers
  wait_for 60 "radosgw on 127.0.0.1:$RGW_PORT" s3_answers
}

check_dir_is_ours() {
  if [[ -n $(ls -A "$dir") && ! -e $MARK ]]; then
    log "$dir is not empty and was not made by ceph.sh; refusing to touch it"
    exit 1
  fi
}

# ---------------------------------------------------------------------------------------------

case "$cmd" in
  up)
    check_dir_is_ours
    start=$SECONDS
    if [[ -e $dir/.created ]]; then
      start_existing
    else
      create_cluster
      load_ports
    fi
    wait_ready
    log "up in $((SECONDS - start))s: $dir (mon 127.0.0.1:$MON_PORT/$MON_V1_PORT, S3 http://127.0.0.1:$RGW_PORT)"
    ;;
  down)
    if [[ ! -e $MARK && -n $(ls -A "$dir") ]]; then
      log "$dir was not made by ceph.sh; not removing it"; exit 1
    fi
    stop_all
    rm -rf "$dir"
    ;;
  stop)
    stop_all
    ;;
  stop-rgw)
    stop_daemon rgw radosgw "$RGW_GRACE"
    ;;
  start-rgw)
    load_ports
    start_daemon rgw radosgw -n client.rgw.gw
    wait_for 60 "radosgw on 127.0.0.1:$RGW_PORT" s3_answers
    ;;
  stop-osd)
    stop_daemon osd ceph-osd
    ;;
  start-osd)
    load_ports
    start_daemon osd ceph-osd -i 0
    wait_for 90 "osd.0 up" osd_up
    wait_for 90 "RADOS I/O on pool rbd" rados_answers
    ;;
  status)
    [[ -e $dir/.created ]] || { echo "no cluster in $dir"; exit 1; }
    load_ports
    for d in "${DAEMONS[@]}"; do
      set -- $d
      if daemon_running "$1" "$2"; then echo "$1: running (pid $(daemon_pid "$1"))"
      else echo "$1: stopped"; fi
    done
    echo "mon: 127.0.0.1:$MON_PORT (v2) 127.0.0.1:$MON_V1_PORT (v1); S3: http://127.0.0.1:$RGW_PORT"
    timeout 20 ceph "${C[@]}" -s || true
    ;;
  *)
    usage
    ;;
esac
