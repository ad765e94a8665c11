#!/usr/bin/env bash
# bench/run.sh <suite> [args]: sets up its own data, runs vdisk and the peer tool on the same
# data in the same run, prints one BENCH line per comparison (see bench/lib.sh).
# Suites: each bench/suites/<suite>.sh (io, copy, rbd, backup, vhost, ...).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
suite=${1:-}
if [[ -z $suite || ! -f $here/suites/$suite.sh ]]; then
  echo "usage: bench/run.sh <suite>   suites: $(ls "$here/suites" 2>/dev/null | sed 's/\.sh$//' | tr '\n' ' ')" >&2
  exit 2
fi
shift
exec bash "$here/suites/$suite.sh" "$@"
