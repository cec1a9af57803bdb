#!/usr/bin/env bash
# Runs bench/memory-honesty.sh for every built-in profile at three host
# sizes that fit this machine and prints the table BENCHMARKS.md keeps.
# Usage: bench/memory-honesty-matrix.sh [SECONDS [PROFILE...]]
#        (root; about 4 minutes a run, 40 for all nine)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-30}"
shift || true
only=("$@")
cargo build --release --quiet
export DBTUNE=$PWD/target/release/dbtune
echo "| profile | host | predicted (services) | peak | ratio | ratio without autovacuum | OOM kills | huge pages |"
echo "|---|---|---|---|---|---|---|---|"
for run in "low-memory 4GiB 2" "low-memory 6GiB 2" "low-memory 8GiB 4" \
           "bulk-ingest 8GiB 2" "bulk-ingest 12GiB 4" "bulk-ingest 16GiB 8" \
           "powerhouse 8GiB 2" "powerhouse 12GiB 4" "powerhouse 16GiB 8"; do
    set -- $run
    if [ "${#only[@]}" -gt 0 ] && [[ ! " ${only[*]} " =~ " $1 " ]]; then continue; fi
    out=$(bash bench/memory-honesty.sh --profile "$1" --ram "$2" --cpus "$3" --seconds "$seconds" --json) || {
        echo "| $1 | $2, $3 CPUs | failed | | | | | |"; continue; }
    python3 - "$out" "$2" "$3" <<'PY'
import json, sys
d = json.loads(sys.argv[1]); mib = lambda b: f"{b / 1048576:.0f} MiB"
print(f"| {d['profile']} | {sys.argv[2]}, {sys.argv[3]} CPUs | {mib(d['predicted'])} | {mib(d['peak'])} | "
      f"{d['ratio']:.2f} | {d['ratio_without_autovacuum']:.2f} | {d['oom_kills']} | {d['huge_pages']} |")
PY
done
