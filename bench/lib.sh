# Shared helpers for bench/suites/*.sh (sourced, not run).
# bench_line <name> <unit> <vdisk> <peer-name> <peer-value> <higher-is-better: 1|0>
# prints: BENCH {"name":...,"unit":...,"vdisk":...,"peer":...,"peer_value":...,"ratio":...}
# ratio > 1 always means vdisk is better.
bench_line() {
  local name=$1 unit=$2 vdisk=$3 peer=$4 peer_value=$5 higher_better=${6:-1}
  local ratio
  if [[ $higher_better == 1 ]]; then
    ratio=$(awk -v a="$vdisk" -v b="$peer_value" 'BEGIN{ if (b==0) print "null"; else printf "%.3f", a/b }')
  else
    ratio=$(awk -v a="$vdisk" -v b="$peer_value" 'BEGIN{ if (a==0) print "null"; else printf "%.3f", b/a }')
  fi
  printf 'BENCH {"name":"%s","unit":"%s","vdisk":%s,"peer":"%s","peer_value":%s,"ratio":%s}\n' \
    "$name" "$unit" "$vdisk" "$peer" "$peer_value" "$ratio"
}

# median: the median of the numbers on stdin (one per line), 0 if there are none.
median() {
  sort -g | awk '{v[NR] = $1} END {if (NR == 0) print 0; else if (NR % 2) print v[(NR + 1) / 2];
                                   else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2}'
}

# Root of the source tree and the build directory holding the binaries.
VDISK_SRC=${VDISK_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
VDISK_BUILD=${VDISK_BUILD:-$VDISK_SRC/build}

# minmax: "min-max" of the numbers on stdin (the spread printed beside a median).
minmax() { sort -g | awk 'NR == 1 {lo = $1} {hi = $1} END {if (NR) print lo "-" hi; else print "-"}'; }

# ab_pairs <pairs> <fn-a> <fn-b> [args...]: runs <pairs> A/B pairs of two measurements, A first
# in odd pairs and B first in even ones (so drift hits both sides alike). Each function gets the
# args and prints one number. Results: the arrays AB_A and AB_B (one sample per pair each).
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
