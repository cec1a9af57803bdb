#!/usr/bin/env bash
# check-budget of postgresql.conf files made of N unknown parameters, the
# garbage a wrong file (or a hostile one) feeds it: wall time and peak
# memory of the release binary, once per size.
# Usage: bench/unknown-names.sh [SIZE...]   (default: 10000 30000 300000)
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(10000 30000 300000)
cargo build --release --quiet
bin=$PWD/target/release/dbtune
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for n in "${sizes[@]}"; do
    # x<8 letters>_<i> = 1: every name unknown, none close to a real one.
    awk -v n="$n" 'BEGIN {
        srand(1)
        for (i = 0; i < n; i++) {
            name = "x"
            for (j = 0; j < 8; j++) name = name sprintf("%c", 97 + int(rand() * 26))
            printf "%s_%d = 1\n", name, i
        }
    }' > "$tmp/postgresql.conf"
    size=$(du -k "$tmp/postgresql.conf" | cut -f1)
    /usr/bin/time -f "$n unknown names ($size KiB): %e s, %M KiB peak" \
        "$bin" check-budget --ram 8GiB --pg-version 18 "$tmp/postgresql.conf" >/dev/null || true
done
