#!/bin/sh
# ctest -L fuzz: run_fuzzer.sh <fuzzer> <seed corpus> <work dir> [libFuzzer flags...]
# Fuzzes on a fresh copy of the seeds (libFuzzer adds what it finds to its first directory), so
# the repository's corpus only changes when someone copies new inputs in on purpose.
set -eu
fuzzer=$1 seeds=$2 work=$3
shift 3
rm -rf "$work"
mkdir -p "$work/corpus" "$work/crashes"
cp "$seeds"/* "$work/corpus/"
exec "$fuzzer" -artifact_prefix="$work/crashes/" "$@" "$work/corpus"
