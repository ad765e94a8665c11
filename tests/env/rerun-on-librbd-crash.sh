#!/usr/bin/env bash
# Runs a Ceph test binary and re-runs it once ONLY if it crashed inside librbd / librados.
#
#   rerun-on-librbd-crash.sh <test binary> [args...]
#
# Why: Debian's librbd 16.2.15 has a use-after-free in its io_context threads that a plain
# librbd program reproduces (tests/rbd/tools/librbd_clone_stress.cc). It showed up as a crash or
# a hang in roughly 1 of 15 runs of rbd_pool_test under heavy CPU load, before vdisk stopped
# opening images at a snapshot (docs/rbd.md "Pitfalls"). Kept as a safety net for a path not yet
# found — but a crash of OUR code must fail the test, so the decision is made from the stack:
#
# - The test runs with core dumps enabled, in its own working directory under
#   $VDISK_BINARY_DIR/test-cores/ (the kernel writes a relative core_pattern there; an absolute
#   pattern or systemd-coredump is looked up too). A run still going after VDISK_FIRST_ATTEMPT_S
#   seconds (default 300) is sent SIGABRT, so a hang leaves a core as well.
# - If it died from a signal, gdb reads the stack of the thread that took the signal from the
#   core. The innermost frame that is not in the C/C++ runtime (libc, libstdc++, libgcc, ld.so,
#   the signal trampoline) decides: in librbd, librados or Ceph's libceph-common / plugins -> the
#   test runs once more; anywhere else (vdisk, the test, gtest) or no readable core -> no re-run,
#   the crash fails the test. An exit status without a signal is never re-run.
# - The decision is printed with the stack. Each re-run also writes
#   $VDISK_BINARY_DIR/test-reruns/<test>.txt (decision, stack, the second run's result), which
#   the ctest test `ceph_test_reruns` and scripts/test.sh report at the end of the suite.
# Cores are removed once read, except the core of a crash that was not re-run (kept for
# debugging; its path is printed).
set -uo pipefail

if (($# < 1)); then
  echo "usage: $0 <test binary> [args...]" >&2
  exit 2
fi
exe=$(command -v "$1" 2>/dev/null || echo "$1")
[[ $exe == /* ]] || exe=$PWD/$exe
shift
set -- "$exe" "$@"
name=$(basename "$exe")
base=${VDISK_BINARY_DIR:-$PWD}
first=${VDISK_FIRST_ATTEMPT_S:-300}
cores=$base/test-cores/$name-$$
reruns=$base/test-reruns
say() { echo "=== rerun-on-librbd-crash: $name: $* ===" >&2; }

# Runs the test once in working directory $1 (so a relative core_pattern lands there; test
# arguments must therefore not be relative paths) with a watchdog; sets `rc` (128+N for signal
# N) and `pid`.
run_once() {
  local dir=$1
  shift
  mkdir -p "$dir"
  touch "$dir/.started"
  (
    cd "$dir" || exit 125
    ulimit -c unlimited 2>/dev/null || ulimit -c "$(ulimit -H -c)"
    exec "$@"
  ) &
  pid=$!
  (
    # Interruptible sleeps: the trap ends the sleep too, so nothing outlives the watchdog.
    trap 'kill "$s" 2>/dev/null; exit 0' TERM
    sleep "$first" </dev/null >/dev/null 2>&1 &
    s=$!
    wait "$s"
    kill -0 "$pid" 2>/dev/null || exit 0
    echo "=== rerun-on-librbd-crash: $name: still running after ${first}s: SIGABRT for a core ===" >&2
    kill -ABRT "$pid" 2>/dev/null
    sleep 20 </dev/null >/dev/null 2>&1 &
    s=$!
    wait "$s"
    kill -KILL "$pid" 2>/dev/null
  ) &
  local watchdog=$!
  wait "$pid"
  rc=$?
  kill "$watchdog" 2>/dev/null
  wait "$watchdog" 2>/dev/null
}

# Prints the path of the core of process $1 (run in directory $2), or nothing.
find_core() {
  local p=$1 dir=$2 pattern
  pattern=$(cat /proc/sys/kernel/core_pattern 2>/dev/null || echo core)
  local candidates=()
  if [[ $pattern == '|'* ]]; then
    if command -v coredumpctl >/dev/null 2>&1 &&
       coredumpctl dump "$p" --output="$dir/core.$p" >/dev/null 2>&1; then
      candidates+=("$dir/core.$p")
    fi
  elif [[ $pattern == /* ]]; then
    local d
    d=$(dirname "$pattern")
    while IFS= read -r f; do candidates+=("$f"); done < <(find "$d" -maxdepth 1 -type f -newer "$dir/.started" -name "*$p*" 2>/dev/null)
  else
    while IFS= read -r f; do candidates+=("$f"); done < <(find "$dir" -maxdepth 1 -type f -name 'core*' 2>/dev/null)
  fi
  local c
  for c in "${candidates[@]}"; do
    # Only the test's own core (a process the test started may have dumped one too).
    if gdb -batch -nx -ex 'info inferiors' "$exe" "$c" 2>/dev/null | grep -qw "process $p"; then
      echo "$c"
      return
    fi
  done
}

# Reads the crashing thread's stack from core $1. Prints frames as \x1f-separated
# "FRAME <n> <library or -> <SIGTRAMP or empty> <function>" (library "-": the executable
# itself), then gdb's bt.
read_stack() {
  gdb -batch -nx \
    -ex 'set pagination off' \
    -ex 'set print frame-arguments none' \
    -ex 'python
f = gdb.newest_frame()
n = 0
while f is not None and n < 64:
    lib = gdb.solib_name(f.pc()) or "-"
    kind = "SIGTRAMP" if f.type() == gdb.SIGTRAMP_FRAME else ""
    print("FRAME\x1f%d\x1f%s\x1f%s\x1f%s" % (n, lib, kind, f.name() or "??"))
    f = f.older()
    n += 1
end' \
    -ex 'bt 40' "$exe" "$1" 2>/dev/null |
    grep -vE '^(\[New LWP|\[Thread debugging|Using host libthread_db)'
}

# From read_stack's output: "ceph <frame line>" if the innermost non-runtime frame is in Ceph's
# libraries, "ours <frame line>" otherwise, "none" if there is no frame.
classify() {
  local tag n lib kind fn
  while IFS=$'\x1f' read -r tag n lib kind fn; do
    [[ $tag == FRAME ]] || continue
    [[ $kind == SIGTRAMP ]] && continue
    case $(basename "$lib") in
      libc.so*|libpthread.so*|libstdc++.so*|libgcc_s.so*|ld-linux*|libm.so*|linux-vdso*) continue ;;
    esac
    local where="#$n $fn in ${lib/#-/the test executable}"
    case $lib in
      */librbd.so*|*/librados.so*|*/libceph-common.so*|*/ceph/*) echo "ceph $where" ;;
      *) echo "ours $where" ;;
    esac
    return
  done
  echo none
}

run_once "$cores/attempt-1" "$@"
first_rc=$rc
if ((rc <= 128)); then
  rm -rf "$cores"
  exit "$rc"
fi
sig=$((rc - 128))
signame=$(kill -l "$sig" 2>/dev/null || echo "$sig")
core=$(find_core "$pid" "$cores/attempt-1")
if [[ -z $core ]]; then
  say "died from SIG$signame and left no readable core (core_pattern '$(cat /proc/sys/kernel/core_pattern 2>/dev/null)', ulimit -c $(ulimit -H -c)): the stack is unknown, so it is NOT re-run"
  rm -rf "$cores"
  exit "$rc"
fi
stack=$(read_stack "$core")
verdict=$(classify <<<"$stack")
if [[ $verdict != ceph* ]]; then
  say "died from SIG$signame outside librbd/librados (innermost frame: ${verdict#ours }): NOT re-run; core kept at $core"
  tr '\037' ' ' <<<"$stack" >&2
  exit "$rc"
fi
say "died from SIG$signame inside Ceph's libraries (${verdict#ceph }): known librbd 16.2.15 crash (docs/rbd.md), running it once more"
tr '\037' ' ' <<<"$stack" >&2
mkdir -p "$reruns"
marker=$reruns/$name.txt
{
  echo "$name: first run died from SIG$signame (status $first_rc) inside Ceph's libraries and was re-run"
  echo "innermost frame: ${verdict#ceph }"
  tr '\037' ' ' <<<"$stack"
} >"$marker"
rm -rf "$cores"
run_once "$cores/attempt-2" "$@"
echo "second run: status $rc" >>"$marker"
echo "VDISK-TEST-RERUN: $name re-run after SIG$signame in Ceph's libraries; second run status $rc (details: $marker)"
say "second run ended with status $rc"
if ((rc > 128)); then
  say "the second run crashed too; its core (if any) is under $cores"
else
  rm -rf "$cores"
fi
exit "$rc"
