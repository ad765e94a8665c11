#!/usr/bin/env bash
# A real iSCSI target (tgt 1.0.85) on 127.0.0.1 for tests and benchmarks, with its backing
# files on a reflink-capable XFS image. Everything lives in <dir>; tgtd is tracked by pid.
#
#   tests/env/tgt.sh up <dir> [xfs-size]   start tgtd (own control instance number -C and port,
#                                          both picked free) and mount <dir>/backing (XFS,
#                                          reflink=1, default 8G sparse); idempotent
#   tests/env/tgt.sh stop <dir>            stop tgtd the way tgt must be stopped (offline, delete
#                                          targets, delete the system), keep everything else
#   tests/env/tgt.sh kill <dir>            SIGKILL tgtd (a crash: its targets are gone)
#   tests/env/tgt.sh start <dir>           start tgtd again on the same port and number
#   tests/env/tgt.sh down <dir>            stop, unmount the XFS image, remove <dir>
#   tests/env/tgt.sh status <dir>          pid, targets
#
# Writes <dir>/tgt.env: TGT_CONTROL TGT_PORT TGT_PORTAL TGT_BACKING TGT_PID.
# Needs root (tgtd, loop device and mount) and the packages tgt, xfsprogs (scripts/deps.sh).
set -euo pipefail

usage() { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
log() { echo "tgt.sh: $*" >&2; }

cmd=${1:-}
dir=${2:-}
[[ -n $cmd && -n $dir ]] || usage
here=$(cd "$(dirname "$0")" && pwd)
if [[ $cmd == up ]]; then mkdir -p "$dir"; fi
if [[ ! -d $dir ]]; then
  [[ $cmd == down || $cmd == stop || $cmd == kill ]] && exit 0
  log "no directory $dir"; exit 1
fi
dir=$(cd "$dir" && pwd)
envf=$dir/tgt.env

pid_alive() {  # pid_alive <pid>: a live (not zombie) tgtd
  local pid=$1 state
  [[ -n $pid && -r /proc/$pid/stat ]] || return 1
  state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || return 1
  [[ $state != Z && $state != X ]] || return 1
  tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q -- tgtd
}

port_free() { [[ -z $(ss -Hltn "sport = :$1" 2>/dev/null) ]]; }

load_env() { [[ -f $envf ]] && source "$envf"; true; }

write_env() {
  cat > "$envf.tmp" <<EOT
TGT_CONTROL=$TGT_CONTROL
TGT_PORT=$TGT_PORT
TGT_PORTAL=127.0.0.1:$TGT_PORT
TGT_BACKING=$dir/backing
TGT_PID=${TGT_PID:-}
EOT
  mv "$envf.tmp" "$envf"
}

adm() { tgtadm -C "$TGT_CONTROL" "$@"; }

start_tgtd() {
  mkdir -p /var/run/tgtd "$dir/log"
  rm -f "/var/run/tgtd/socket.$TGT_CONTROL" "/var/run/tgtd/socket.$TGT_CONTROL.lock"
  setsid tgtd -f -C "$TGT_CONTROL" --iscsi "portal=127.0.0.1:$TGT_PORT" \
    >> "$dir/log/tgtd.log" 2>&1 < /dev/null &
  TGT_PID=$!
  write_env
  for _ in $(seq 1 100); do
    if adm --op show --mode sys > /dev/null 2>&1 && [[ -n $(ss -Hltn "sport = :$TGT_PORT") ]]; then
      log "tgtd pid $TGT_PID: -C $TGT_CONTROL, portal 127.0.0.1:$TGT_PORT, backing $dir/backing"
      return 0
    fi
    pid_alive "$TGT_PID" || break
    sleep 0.05
  done
  log "tgtd did not come up; its log:"; cat "$dir/log/tgtd.log" >&2 || true
  return 1
}

stop_tgtd() {
  load_env
  [[ -n ${TGT_CONTROL:-} ]] || return 0
  if pid_alive "${TGT_PID:-}"; then
    # SIGTERM does not stop tgtd while targets exist: offline, delete them, then the system.
    adm --op update --mode sys --name State --value offline > /dev/null 2>&1 || true
    for tid in $(adm --lld iscsi --op show --mode target 2>/dev/null | sed -n 's/^Target \([0-9]*\):.*/\1/p'); do
      adm --lld iscsi --op delete --mode target --tid "$tid" --force > /dev/null 2>&1 || true
    done
    adm --op delete --mode system > /dev/null 2>&1 || true
    for _ in $(seq 1 100); do pid_alive "$TGT_PID" || break; sleep 0.05; done
    if pid_alive "$TGT_PID"; then kill -9 "$TGT_PID" 2>/dev/null || true; fi
  fi
  rm -f "/var/run/tgtd/socket.$TGT_CONTROL" "/var/run/tgtd/socket.$TGT_CONTROL.lock"
}

case "$cmd" in
  up)
    load_env
    if pid_alive "${TGT_PID:-}"; then log "already running (pid $TGT_PID)"; exit 0; fi
    if ! mountpoint -q "$dir/backing"; then
      "$here/xfs.sh" up "$dir/xfs.img" "$dir/backing" "${3:-8G}" >&2
    fi
    if [[ -z ${TGT_CONTROL:-} ]]; then
      # A control instance number and a port nobody else uses (several worktrees run suites at
      # once): start from a value derived from the directory, step until both are free.
      seed=$(( $(printf '%s' "$dir" | cksum | cut -d' ' -f1) % 800 ))
      TGT_CONTROL=$((100 + seed))
      while [[ -e /var/run/tgtd/socket.$TGT_CONTROL ]]; do TGT_CONTROL=$((TGT_CONTROL + 1)); done
      TGT_PORT=$((13260 + seed))
      while ! port_free "$TGT_PORT"; do TGT_PORT=$((TGT_PORT + 1)); done
    fi
    start_tgtd
    ;;
  start)
    load_env
    [[ -n ${TGT_CONTROL:-} ]] || { log "no tgt.env in $dir: use up"; exit 1; }
    if pid_alive "${TGT_PID:-}"; then exit 0; fi
    start_tgtd
    ;;
  stop) stop_tgtd ;;
  kill)
    load_env
    if pid_alive "${TGT_PID:-}"; then kill -9 "$TGT_PID"; for _ in $(seq 1 100); do pid_alive "$TGT_PID" || break; sleep 0.02; done; fi
    rm -f "/var/run/tgtd/socket.${TGT_CONTROL:-x}" "/var/run/tgtd/socket.${TGT_CONTROL:-x}.lock"
    ;;
  down)
    stop_tgtd
    "$here/xfs.sh" down "$dir/backing" >&2 || true
    rm -rf "$dir"
    ;;
  status)
    load_env
    if pid_alive "${TGT_PID:-}"; then echo "tgtd pid $TGT_PID -C $TGT_CONTROL portal 127.0.0.1:$TGT_PORT"; adm --lld iscsi --op show --mode target | grep '^Target' || true
    else echo "tgtd not running"; exit 1; fi
    ;;
  *) usage ;;
esac
