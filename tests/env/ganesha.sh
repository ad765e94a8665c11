#!/usr/bin/env bash
# A real NFS server for tests and benchmarks: nfs-ganesha 4.3 with the VFS FSAL on 127.0.0.1,
# serving NFSv3 (and v4) from reflink-capable XFS images. Everything lives in <dir>; the daemon
# is tracked and stopped by pid.
#
#   tests/env/ganesha.sh up <dir>       start (reuses the file systems in <dir>, else makes them);
#                                       returns once the server answers NFSv3. Idempotent.
#   tests/env/ganesha.sh down <dir>     stop ganesha by pid, unmount, remove <dir>
#   tests/env/ganesha.sh stop <dir>     stop ganesha (SIGTERM), keep the data (start with up)
#   tests/env/ganesha.sh kill <dir>     SIGKILL ganesha (a crash), keep the data
#   tests/env/ganesha.sh restart <dir>  stop + up on the same ports (clients reconnect)
#   tests/env/ganesha.sh status <dir>   pid, ports, exports
#
# Exports (NFSv3 mount paths; Mount_Path_Pseudo, so clients name the short pseudo path):
#   /vdisk    <dir>/data/export    the main export, on a 20 GiB sparse XFS (reflink=1)
#   /small    <dir>/small/export   a 320 MiB XFS, for "export full" cases
#   /denied   <dir>/data/denied    exported to 192.0.2.1 only: this host's mounts are refused
#                                  (ganesha then hides it from the export list, as if unknown)
#   /squashed <dir>/data/squashed  everyone squashed to nobody over a root-owned 0755 directory:
#                                  mounts, but creating anything is refused (EACCES)
#   /readonly <dir>/data/readonly  read-only for everyone
# The others squash nothing (root stays root), AUTH_SYS.
#
# rpcbind: ganesha refuses to start when it cannot register NFSv3 with rpcbind, and Debian's
# rpcbind cannot be bound to loopback only. A tiny LD_PRELOAD library (built here with cc into
# <dir>/noreg.so) makes ntirpc's svc_reg() skip the registration; NFS and MOUNT then listen on
# fixed ports that clients name themselves (libnfs: nfs://127.0.0.1/vdisk?nfsport=N&mountport=M;
# QEMU: the same URL). The ports are the first free ones from 2049 / 20048 (or GANESHA_NFS_PORT /
# GANESHA_MNT_PORT), picked at creation and kept in <dir>/nfs.env, so several suites can run
# side by side and a restart keeps its ports.
#
# GANESHA_RPCBIND=1: register with a real rpcbind started here instead (no shim, standard
# ports 2049 / 20048 / 111), for clients that cannot name ports (QEMU's nfs:// driver). Only in a
# private network + mount namespace: run the caller under tests/env/netns.sh, which also gives
# rpcbind a private /run.
#
# <dir>/nfs.env: NFS_SERVER NFS_PORT MNT_PORT NFS_EXPORT NFS_LOCAL_PATH NFS_SMALL_EXPORT
#   NFS_SMALL_LOCAL_PATH NFS_DENIED_EXPORT NFS_SQUASHED_EXPORT NFS_RO_EXPORT NFS_URL_QUERY NFS_URL (nfs://.../vdisk?...)
# Needs root (loop devices, mounts) and the Debian packages nfs-ganesha nfs-ganesha-vfs xfsprogs
# (scripts/deps.sh).
set -euo pipefail

usage() {
  sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

cmd=${1:-}
dir=${2:-}
[[ -n $cmd && -n $dir ]] || usage
here=$(cd "$(dirname "$0")" && pwd)
if [[ $cmd == up ]]; then mkdir -p "$dir"; fi
if [[ ! -d $dir ]]; then
  [[ $cmd == down || $cmd == stop || $cmd == kill ]] && exit 0
  echo "ganesha.sh: no server directory $dir" >&2; exit 1
fi
dir=$(cd "$dir" && pwd)
MARK=$dir/.vdisk-ganesha
conf=$dir/ganesha.conf
pidfile=$dir/ganesha.pid

log() { echo "ganesha.sh: $*" >&2; }

pid_alive() {
  local pid=$1 state
  [[ -n $pid && -r /proc/$pid/stat ]] || return 1
  state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || return 1
  [[ $state != Z && $state != X ]] || return 1
  tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q -- "ganesha.nfsd" || return 1
}

daemon_pid() { cat "$dir/daemon.pid" 2>/dev/null || true; }

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

dump_log() {
  log "---- $dir/ganesha.log (last 40 lines) ----"
  tail -n 40 "$dir/ganesha.log" >&2 2>/dev/null || true
  tail -n 20 "$dir/ganesha.out" >&2 2>/dev/null || true
}

fail() {
  log "FAILED: $*"
  dump_log
  stop_daemon KILL
  exit 1
}

# ---------------------------------------------------------------------------------------------
# File systems: sparse XFS images on direct-I/O loop devices (tests/env/xfs.sh).

mount_fs() {  # mount_fs <name> <size>
  local name=$1 size=$2 loop
  if mountpoint -q "$dir/$name"; then return; fi
  if [[ -s $dir/$name.img && -e $dir/.created ]]; then
    # An existing server whose file systems were unmounted (e.g. a reboot): keep the data.
    mkdir -p "$dir/$name"
    loop=$(losetup --direct-io=on --find --show "$dir/$name.img")
    mount -o discard "$loop" "$dir/$name" || { losetup -d "$loop"; fail "mounting $name.img"; }
    return
  fi
  "$here/xfs.sh" up "$dir/$name.img" "$dir/$name" "$size" >/dev/null
}

unmount_fs() {
  local name=$1
  "$here/xfs.sh" down "$dir/$name" >/dev/null 2>&1 || log "could not unmount $dir/$name"
}

# ---------------------------------------------------------------------------------------------
# The LD_PRELOAD shim that skips rpcbind registration.

build_noreg() {
  [[ -s $dir/noreg.so ]] && return
  cat > "$dir/noreg.c" <<'EOF'
/* Loaded into ganesha.nfsd by tests/env/ganesha.sh: ntirpc's svc_reg() registers the program
 * with rpcbind (and ganesha exits when that fails). Tests name the ports themselves, so the
 * registration is skipped and reported as done. */
#include <stdbool.h>
bool svc_reg(void *xprt, unsigned long prog, unsigned long vers, void (*dispatch)(void *),
             const void *nconf) {
  (void)xprt; (void)prog; (void)vers; (void)dispatch; (void)nconf;
  return true;
}
bool rpcb_unset(unsigned long prog, unsigned long vers, const void *nconf) {
  (void)prog; (void)vers; (void)nconf;
  return true;
}
EOF
  cc -shared -fPIC -O2 -o "$dir/noreg.so" "$dir/noreg.c" || fail "building noreg.so with cc"
}

# ---------------------------------------------------------------------------------------------
# Configuration

write_conf() {
  local bind="Bind_addr = 127.0.0.1;"
  # With rpcbind, ganesha registers wildcard addresses; the namespace has only lo anyway.
  [[ ${GANESHA_RPCBIND:-0} == 1 ]] && bind=""
  cat > "$conf" <<EOF
# Test server written by tests/env/ganesha.sh. Not for production.
NFS_CORE_PARAM {
  $bind
  NFS_Port = $NFS_PORT;
  MNT_Port = $MNT_PORT;
  Enable_NLM = false;
  Enable_RQUOTA = false;
  Enable_UDP = false;
  Protocols = 3, 4;
  Mount_Path_Pseudo = true;
}
NFSV4 {
  Graceless = true;
  Minor_Versions = 0, 1, 2;
  RecoveryBackend = fs;
  RecoveryRoot = "$dir/recovery";
}
NFS_KRB5 { Active_krb5 = false; }
LOG {
  Default_Log_Level = EVENT;
  Facility { name = FILE; destination = "$dir/ganesha.log"; enable = active; }
}
EXPORT_DEFAULTS {
  SecType = sys;
  Squash = No_Root_Squash;
  Transports = TCP;
  Protocols = 3, 4;
}
EXPORT {
  Export_Id = 1;
  Path = "$dir/data/export";
  Pseudo = /vdisk;
  Access_Type = RW;
  FSAL { Name = VFS; }
}
EXPORT {
  Export_Id = 2;
  Path = "$dir/small/export";
  Pseudo = /small;
  Access_Type = RW;
  FSAL { Name = VFS; }
}
EXPORT {
  Export_Id = 3;
  Path = "$dir/data/denied";
  Pseudo = /denied;
  Access_Type = None;
  CLIENT { Clients = 192.0.2.1; Access_Type = RW; }
  FSAL { Name = VFS; }
}
EXPORT {
  Export_Id = 5;
  Path = "$dir/data/squashed";
  Pseudo = /squashed;
  Access_Type = RW;
  Squash = All_Squash;
  Anonymous_Uid = 65534;
  Anonymous_Gid = 65534;
  FSAL { Name = VFS; }
}
EXPORT {
  Export_Id = 4;
  Path = "$dir/data/readonly";
  Pseudo = /readonly;
  Access_Type = RO;
  FSAL { Name = VFS; }
}
EOF
}

write_env() {
  local q="nfsport=$NFS_PORT&mountport=$MNT_PORT"
  {
    echo "# NFS server of the test environment in $dir (nfs-ganesha, VFS FSAL)."
    echo "NFS_SERVER=127.0.0.1"
    echo "NFS_PORT=$NFS_PORT"
    echo "MNT_PORT=$MNT_PORT"
    echo "NFS_EXPORT=/vdisk"
    echo "NFS_LOCAL_PATH=$dir/data/export"
    echo "NFS_SMALL_EXPORT=/small"
    echo "NFS_SMALL_LOCAL_PATH=$dir/small/export"
    echo "NFS_DENIED_EXPORT=/denied"
    echo "NFS_SQUASHED_EXPORT=/squashed"
    echo "NFS_RO_EXPORT=/readonly"
    echo "NFS_URL_QUERY=$q"
    echo "NFS_URL=nfs://127.0.0.1/vdisk?$q"
  } > "$dir/nfs.env"
}

create() {
  log "creating a new server in $dir"
  stop_daemon KILL
  unmount_fs data
  unmount_fs small
  find "$dir" -mindepth 1 -delete
  touch "$MARK"
  mkdir -p "$dir/recovery"
  mount_fs data "${GANESHA_DATA_SIZE:-20G}"
  mount_fs small 320M
  mkdir -p "$dir/data/export" "$dir/data/denied" "$dir/data/readonly" "$dir/small/export" \
    "$dir/data/squashed"
  chmod 0755 "$dir/data/squashed"
  echo "read-only export of tests/env/ganesha.sh" > "$dir/data/readonly/README"
  if [[ ${GANESHA_RPCBIND:-0} == 1 ]]; then
    NFS_PORT=2049 MNT_PORT=20048
  else
    NFS_PORT=${GANESHA_NFS_PORT:-$(pick_port 2049)}
    MNT_PORT=${GANESHA_MNT_PORT:-$(pick_port 20048 "$NFS_PORT")}
  fi
  printf 'NFS_PORT=%s\nMNT_PORT=%s\n' "$NFS_PORT" "$MNT_PORT" > "$dir/ports.env"
  write_conf
  write_env
  touch "$dir/.created"
}

load_ports() {
  # shellcheck disable=SC1091
  source "$dir/ports.env"
}

# ---------------------------------------------------------------------------------------------
# The daemon

rpcbind_alive() {
  local pid
  pid=$(cat "$dir/rpcbind.pid" 2>/dev/null || true)
  [[ -n $pid && -r /proc/$pid/stat ]] && tr '\0' ' ' < "/proc/$pid/cmdline" | grep -q rpcbind
}

start_rpcbind() {
  rpcbind_alive && return
  if [[ $(readlink /proc/self/ns/net) == $(readlink /proc/1/ns/net) ]]; then
    fail "GANESHA_RPCBIND=1 outside a private network namespace (use tests/env/netns.sh)"
  fi
  mkdir -p /run/rpcbind
  chown _rpc /run/rpcbind 2>/dev/null || true
  setsid rpcbind -f </dev/null >>"$dir/rpcbind.out" 2>&1 &
  echo $! > "$dir/rpcbind.pid"
  local i
  for ((i = 0; i < 50; i++)); do rpcinfo -p 127.0.0.1 >/dev/null 2>&1 && return; sleep 0.1; done
  fail "rpcbind did not answer"
}

stop_rpcbind() {
  rpcbind_alive || { rm -f "$dir/rpcbind.pid"; return; }
  kill -TERM "$(cat "$dir/rpcbind.pid")" 2>/dev/null || true
  rm -f "$dir/rpcbind.pid"
}

start_daemon() {
  if pid_alive "$(daemon_pid)"; then return; fi
  local preload=()
  if [[ ${GANESHA_RPCBIND:-0} == 1 ]]; then
    start_rpcbind
  else
    build_noreg
    preload=(env "LD_PRELOAD=$dir/noreg.so")
  fi
  rm -f "$pidfile"
  : >> "$dir/ganesha.log"
  # setsid execs in place (we are not a group leader), so $! is ganesha's pid.
  "${preload[@]}" setsid ganesha.nfsd -F -f "$conf" -p "$pidfile" \
    -L "$dir/ganesha.log" -N NIV_EVENT </dev/null >>"$dir/ganesha.out" 2>&1 &
  echo $! > "$dir/daemon.pid"
}

stop_daemon() {  # stop_daemon [TERM|KILL]
  local sig=${1:-TERM} pid i
  pid=$(daemon_pid)
  if pid_alive "$pid"; then
    kill -"$sig" "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do pid_alive "$pid" || break; sleep 0.1; done
    if pid_alive "$pid"; then
      log "ganesha (pid $pid) still running 10s after SIG$sig; SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      for ((i = 0; i < 50; i++)); do pid_alive "$pid" || break; sleep 0.1; done
    fi
  fi
  rm -f "$dir/daemon.pid"
}

# NFSv3 answers: the MOUNT service lists the exports and a file of the read-only export reads.
answers() {
  nfs-ls "nfs://127.0.0.1/readonly?nfsport=$NFS_PORT&mountport=$MNT_PORT" 2>/dev/null |
    grep -q README
}

wait_ready() {
  local deadline=$((SECONDS + 30))
  until answers; do
    pid_alive "$(daemon_pid)" || fail "ganesha.nfsd exited"
    ((SECONDS < deadline)) || fail "timed out after 30s waiting for NFSv3 on 127.0.0.1:$NFS_PORT"
    sleep 0.1
  done
}

check_dir_is_ours() {
  if [[ -n $(ls -A "$dir") && ! -e $MARK ]]; then
    log "$dir is not empty and was not made by ganesha.sh; refusing to touch it"
    exit 1
  fi
}

up() {
  check_dir_is_ours
  local start=$SECONDS
  if [[ -e $dir/.created ]]; then
    mount_fs data "${GANESHA_DATA_SIZE:-20G}"
    mount_fs small 320M
  else
    create
  fi
  load_ports
  port_free "$NFS_PORT" || pid_alive "$(daemon_pid)" || fail "port $NFS_PORT is taken"
  start_daemon
  wait_ready
  log "up in $((SECONDS - start))s: nfs://127.0.0.1/vdisk?nfsport=$NFS_PORT&mountport=$MNT_PORT (pid $(daemon_pid))"
}

case "$cmd" in
  up)
    up
    ;;
  down)
    if [[ ! -e $MARK && -n $(ls -A "$dir") ]]; then
      log "$dir was not made by ganesha.sh; not removing it"; exit 1
    fi
    stop_daemon TERM
    stop_rpcbind
    unmount_fs data
    unmount_fs small
    rm -rf "$dir"
    ;;
  stop)
    stop_daemon TERM
    ;;
  kill)
    stop_daemon KILL
    ;;
  restart)
    stop_daemon TERM
    up
    ;;
  status)
    [[ -e $dir/.created ]] || { echo "no server in $dir"; exit 1; }
    load_ports
    if pid_alive "$(daemon_pid)"; then echo "ganesha: running (pid $(daemon_pid))"
    else echo "ganesha: stopped"; fi
    echo "NFS 127.0.0.1:$NFS_PORT, MOUNT 127.0.0.1:$MNT_PORT"
    cat "$dir/nfs.env"
    ;;
  *)
    usage
    ;;
esac
