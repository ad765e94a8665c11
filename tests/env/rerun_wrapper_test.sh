#!/usr/bin/env bash
# Checks tests/env/rerun-on-librbd-crash.sh on real crashes (tests/env/crash_probe.cc): a crash
# inside librbd is re-run once (and reported), a crash or hang in our own code is not, a plain
# failure is not, a success passes through.
#   rerun_wrapper_test.sh <wrapper> <crash_probe binary> <scratch dir>
set -uo pipefail
wrapper=$1 probe=$2 dir=$3
rm -rf "$dir"
mkdir -p "$dir"
export VDISK_BINARY_DIR=$dir
failures=0
check() {  # <what> <condition...>
  local what=$1
  shift
  if "$@"; then echo "ok: $what"; else echo "FAILED: $what"; failures=$((failures + 1)); fi
}
runs() { [[ -f $1 ]] && wc -l <"$1" || echo 0; }

# <mode> [env...]: runs the probe under the wrapper; sets rc, out, counter.
probe() {
  local mode=$1
  shift
  counter=$dir/$mode.count
  rm -f "$counter" "$dir/test-reruns/crash_probe.txt"
  out=$(env "$@" "$wrapper" "$probe" "$mode" "$counter" 2>&1)
  rc=$?
  echo "--- $mode: status $rc, $(runs "$counter") run(s)"
  echo "$out" | grep -E '^(=== |VDISK-TEST-RERUN)' | head -5
}

probe ok
check "success passes through" test "$rc" -eq 0 -a "$(runs "$counter")" -eq 1

probe exit1
check "a failed assertion is not re-run" test "$rc" -eq 1 -a "$(runs "$counter")" -eq 1

probe own-segv
check "a SIGSEGV in our code fails the test" test "$rc" -eq 139
check "a SIGSEGV in our code is NOT re-run" test "$(runs "$counter")" -eq 1
check "the decision names our frame" grep -q "outside librbd/librados (innermost frame: .*CrashHere" <<<"$out"
check "no re-run marker" test ! -e "$dir/test-reruns/crash_probe.txt"

probe own-abort
check "an abort() in our code is NOT re-run" test "$rc" -eq 134 -a "$(runs "$counter")" -eq 1
check "the stack is printed" grep -q "main" <<<"$out"

probe own-hang VDISK_FIRST_ATTEMPT_S=2
check "a hang in our code is aborted and NOT re-run" test "$rc" -eq 134 -a "$(runs "$counter")" -eq 1
check "the hang's frame is ours" grep -q "innermost frame: .*HangHere" <<<"$out"

rm -rf "$dir/test-cores"  # the cores kept above (crashes of ours are kept for debugging)
probe librbd-segv
check "a SIGSEGV inside librbd is re-run once" test "$(runs "$counter")" -eq 2
check "the re-run's status is the result" test "$rc" -eq 0
check "the decision names librbd" grep -q "inside Ceph's libraries (.*librbd" <<<"$out"
check "the re-run is announced for the summary" grep -q "^VDISK-TEST-RERUN: crash_probe" <<<"$out"
check "the re-run marker holds the stack" grep -q "librbd" "$dir/test-reruns/crash_probe.txt"
check "cores of a re-run crash are removed" test -z "$(find "$dir/test-cores" -name 'core*' -type f 2>/dev/null)"

echo "$failures check(s) failed"
((failures == 0))
