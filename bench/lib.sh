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
