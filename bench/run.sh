#!/usr/bin/env bash
# bench/run.sh <suite> [args]: sets up its own data, runs vdisk and the peer tool on the same
# data in the same run, prints one BENCH line per comparison (see bench/lib.sh).
# bench/run.sh all: every suite in bench/suites/ (whatever is there, in name order), each one's
# stderr in <out>/<suite>.log, then one summary table of all lines (median, spread, ratio,
# target); a suite that fails is listed as FAILED and the others still run. Exit status 1 if a
# suite failed or a line with a target is below it.
# bench/run.sh summary <BENCH lines file>: the table alone, for lines collected earlier.
# Env for all: VDISK_BENCH_SUITES (space list, default every suite), VDISK_BENCH_OUT (directory
# for the logs and bench.jsonl, default a new one under /var/tmp).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
suites() { ls "$here/suites" 2>/dev/null | sed -n 's/\.sh$//p'; }

summary() {  # <file of BENCH lines>: prints the table; returns 1 if a line misses its target
  local file=$1
  command -v jq >/dev/null || { echo "bench: jq is needed for the summary" >&2; return 2; }
  printf '%-8s %-34s %-30s %-40s %-8s %-7s %s\n' suite line vdisk "peer" ratio target ""
  local missed=0
  while IFS= read -r line; do
    local suite=${line%% *} json=${line#* }
    json=${json#BENCH }
    local row
    row=$(jq -r --arg s "$suite" '
      def num: if . == null then "-" elif (type == "number") then
                 (if . >= 1000 then (. | floor | tostring) else (. * 1000 | round / 1000 | tostring) end)
               else tostring end;
      def span(lo; hi): if lo == null then "" else " (" + (lo|num) + "-" + (hi|num) + ")" end;
      [$s, .name,
       ((.vdisk|num) + span(.vdisk_min; .vdisk_max) + " " + .unit),
       (.peer + " " + (.peer_value|num) + span(.peer_min; .peer_max)),
       (.ratio|num), (.target|num),
       (if .target == null or .ratio == null then ""
        elif .ratio >= .target then "met" else "NOT MET" end),
       (.pairs // 1 | tostring)] | join("|")' <<<"$json")
    IFS="|" read -r s name v p r t st n <<<"$row"
    [[ $st == "NOT MET" ]] && missed=1
    printf '%-8s %-34s %-30s %-40s %-8s %-7s %s\n' "$s" "$name" "$v" "$p" "$r" "$t" "$st${n:+ [$n pairs]}"
  done < "$file"
  return $missed
}

suite=${1:-}
case $suite in
  all)
    shift
    out=${VDISK_BENCH_OUT:-$(mktemp -d /var/tmp/vdisk-bench.XXXXXX)}
    mkdir -p "$out"
    : > "$out/bench.jsonl"
    failed=()
    for s in ${VDISK_BENCH_SUITES:-$(suites)}; do
      echo "bench all: suite $s ($(date -u +%H:%M:%S) UTC, load $(cut -d' ' -f1-3 /proc/loadavg))" >&2
      if ! BENCH_OUT= bash "$here/suites/$s.sh" 2> "$out/$s.log" | tee "$out/$s.out" |
           sed -n "s/^BENCH /$s BENCH /p" >> "$out/bench.jsonl" || [[ ${PIPESTATUS[0]} != 0 ]]; then
        failed+=("$s")
        echo "bench all: suite $s FAILED (see $out/$s.log)" >&2
        tail -5 "$out/$s.log" >&2
      fi
    done
    echo "== bench summary ($(date -u +%Y-%m-%dT%H:%M:%SZ), load $(cut -d' ' -f1-3 /proc/loadavg), logs in $out)"
    rc=0
    summary "$out/bench.jsonl" || rc=1
    for s in "${failed[@]}"; do printf '%-8s %s\n' "$s" "FAILED (see $out/$s.log)"; rc=1; done
    exit $rc
    ;;
  summary)
    summary "$2"
    exit $?
    ;;
esac
if [[ -z $suite || ! -f $here/suites/$suite.sh ]]; then
  echo "usage: bench/run.sh <suite>|all|summary <file>   suites: $(suites | tr '\n' ' ')" >&2
  exit 2
fi
shift
exec bash "$here/suites/$suite.sh" "$@"
