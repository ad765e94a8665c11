#!/usr/bin/env bash
# Reports the Ceph tests that tests/env/rerun-on-librbd-crash.sh re-ran in this ctest run (one
# marker file each in <dir>). Exit 0: none. Exit 77 (ctest: "Skipped", listed in the summary)
# with each re-run, its reason and stack printed: the suite passed only thanks to a re-run.
#   report-reruns.sh <dir>
dir=$1
shopt -s nullglob
markers=("$dir"/*.txt)
if ((${#markers[@]} == 0)); then
  echo "no Ceph test was re-run"
  exit 0
fi
echo "${#markers[@]} Ceph test(s) passed only after a re-run (first run crashed inside librbd/librados):"
for m in "${markers[@]}"; do
  echo "--- $m"
  cat "$m"
done
exit 77
