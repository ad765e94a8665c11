# Shared helpers for bench/suites/*.sh (sourced, not run).
#
# Every comparison is repeated as A/B pairs (VDISK_BENCH_PAIRS, default 3, at least 3 for a
# figure that goes into bench/RESULTS.md) and reported with its spread:
#   pairs_line <name> <unit> <peer-name> <higher-is-better: 1|0> "<vdisk values>" "<peer values>" [target]
# prints on stderr   <name>: vdisk <median> (<min>-<max>) | <peer> <median> (<min>-<max>) | ratio <median> (<per-pair ratios>)
# and on stdout      BENCH {"name":...,"unit":...,"vdisk":<median>,"vdisk_min":..,"vdisk_max":..,
#                          "peer":...,"peer_value":<median>,"peer_min":..,"peer_max":..,
#                          "ratio":<median of the per-pair ratios>,"pairs":N[,"target":T]}
# ratio > 1 always means vdisk is better. Values of pair i are the i-th of each list (a value of
# 0 or "-" is a failed run: that pair is left out). <target> is the ratio the project promises
# (bench/run.sh all marks lines below it).
# bench_line <name> <unit> <vdisk> <peer-name> <peer-value> <higher-is-better> [target]: a single
# measurement (informational lines: allocations, counts).
# If BENCH_OUT is set, every BENCH line is also appended to that file.

BENCH_PAIRS=${VDISK_BENCH_PAIRS:-3}

# bench_need <command> [what installs it]: exits 1, naming the suite, if <command> is missing.
bench_need() {
  command -v "$1" >/dev/null || { echo "$(basename "$0"): $1${2:+ ($2)} is not installed" >&2; exit 1; }
}
bench_emit() {
  printf 'BENCH %s\n' "$1"
  if [[ -n ${BENCH_OUT:-} ]]; then printf 'BENCH %s\n' "$1" >> "$BENCH_OUT"; fi
}

bench_line() {
  local name=$1 unit=$2 vdisk=$3 peer=$4 peer_value=$5 higher_better=${6:-1} target=${7:-}
  local ratio
  ratio=$(pair_ratio "$vdisk" "$peer_value" "$higher_better")
  bench_emit "$(printf '{"name":"%s","unit":"%s","vdisk":%s,"peer":"%s","peer_value":%s,"ratio":%s,"pairs":1%s}' \
    "$name" "$unit" "$vdisk" "$peer" "$peer_value" "$ratio" "${target:+,\"target\":$target}")"
}

# pair_ratio <vdisk> <peer> <higher-is-better>: the ratio (> 1: vdisk better), null if undefined.
pair_ratio() {
  awk -v a="$1" -v b="$2" -v h="$3" 'BEGIN{
    if (h == 1) { if (b == 0) print "null"; else printf "%.3f", a / b }
    else        { if (a == 0) print "null"; else printf "%.3f", b / a } }'
}

# median: the median of the numbers on stdin (one per line), 0 if there are none.
median() {
  sort -g | awk '{v[NR] = $1} END {if (NR == 0) print 0; else if (NR % 2) print v[(NR + 1) / 2];
                                   else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2}'
}
# minmax: "min max" of the numbers on stdin, "0 0" if there are none.
minmax() {
  sort -g | awk 'NR == 1 {lo = $1} {hi = $1} END {if (NR == 0) print "0 0"; else print lo, hi}'
}

pairs_line() {
  local name=$1 unit=$2 peer=$3 higher_better=$4 target=${7:-}
  local -a vs ps
  read -r -a vs <<<"$5"
  read -r -a ps <<<"$6"
  local i vok=() pok=() ratios=()
  for i in "${!vs[@]}"; do
    local v=${vs[$i]} p=${ps[$i]:-0}
    [[ $v == - || $p == - ]] && continue
    awk -v a="$v" -v b="$p" 'BEGIN{exit !(a > 0 && b > 0)}' || continue
    vok+=("$v")
    pok+=("$p")
    ratios+=("$(pair_ratio "$v" "$p" "$higher_better")")
  done
  local n=${#vok[@]}
  local vmed pmed rmed vmm pmm
  vmed=$(printf '%s\n' "${vok[@]}" | awk 'NF' | median)
  pmed=$(printf '%s\n' "${pok[@]}" | awk 'NF' | median)
  rmed=$(printf '%s\n' "${ratios[@]}" | awk 'NF' | median)
  vmm=$(printf '%s\n' "${vok[@]}" | awk 'NF' | minmax)
  pmm=$(printf '%s\n' "${pok[@]}" | awk 'NF' | minmax)
  (( n > 0 )) || rmed=null
  echo "$name: vdisk $vmed (${vmm/ /-}) | $peer $pmed (${pmm/ /-}) $unit | ratio $rmed (pairs: ${ratios[*]:-none})${target:+ | target $target}" >&2
  bench_emit "$(printf '{"name":"%s","unit":"%s","vdisk":%s,"vdisk_min":%s,"vdisk_max":%s,"peer":"%s","peer_value":%s,"peer_min":%s,"peer_max":%s,"ratio":%s,"pairs":%d%s}' \
    "$name" "$unit" "$vmed" "${vmm% *}" "${vmm#* }" "$peer" "$pmed" "${pmm% *}" "${pmm#* }" "$rmed" "$n" \
    "${target:+,\"target\":$target}")"
}

# Machine state for the record: date, load average, cpus, kernel (stderr of every suite).
bench_context() {
  echo "bench: $(date -u +%Y-%m-%dT%H:%M:%SZ), load $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cpus, $(uname -r), pairs $BENCH_PAIRS" >&2
}

# Root of the source tree and the build directory holding the binaries.
VDISK_SRC=${VDISK_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
VDISK_BUILD=$(realpath -m "${VDISK_BUILD:-$VDISK_SRC/build}")  # absolute: suites cd and hand paths to daemons

# ab_pairs <pairs> <fn-a> <fn-b> [args...]: runs <pairs> A/B pairs of two measurements, A first
# in odd pairs and B first in even ones (so drift hits both sides alike). Each function gets the
# args and prints one number. Results: the arrays AB_A and AB_B (one sample per pair each), for
# pairs_line "${AB_A[*]}" "${AB_B[*]}".
ab_pairs() {
  local n=$1 fa=$2 fb=$3 i a b
  shift 3
  AB_A=() AB_B=()
  for ((i = 1; i <= n; i++)); do
    if ((i % 2)); then a=$("$fa" "$@"); b=$("$fb" "$@")
    else b=$("$fb" "$@"); a=$("$fa" "$@"); fi
    AB_A+=("$a") AB_B+=("$b")
  done
}
