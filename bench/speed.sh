#!/usr/bin/env bash
# How long dbtune's own commands take, wall clock, averaged over N runs of
# the release binary. Usage: bench/speed.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-50}"
cargo build --release --quiet
bin=./target/release/dbtune
run() {
    local start end
    start=$(date +%s%N)
    for _ in $(seq "$n"); do "$bin" "$@" >/dev/null 2>&1 || true; done
    end=$(date +%s%N)
    awk -v ns="$((end - start))" -v n="$n" -v cmd="$*" 'BEGIN { printf "%-55s %7.2f ms\n", cmd, ns / n / 1e6 }'
}
run detect
run detect --json
run render --profile low-memory
run render --profile bulk-ingest --ram 48GiB --cpus 12 --storage nvme --pg-version 16
run render --profile powerhouse
run render

# check-budget over a directory of 1000 config files: a postgresql.conf
# whose include_dir holds 1000 rendered files (every setting set 1000 times).
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$bin" render --profile low-memory --only postgres > "$tmp/one.conf" 2>/dev/null
mkdir "$tmp/conf.d"
for i in $(seq -w 1 1000); do cp "$tmp/one.conf" "$tmp/conf.d/$i.conf"; done
printf "include_dir 'conf.d'\n" > "$tmp/postgresql.conf"
run check-budget --ram 4GiB --pg-version 15 --format json "$tmp/postgresql.conf"
run check-budget --ram 4GiB --pg-version 15 "$tmp/one.conf"
