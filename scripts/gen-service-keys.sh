#!/usr/bin/env bash
# Regenerates data/redis-<x.y>.tsv and data/pgbouncer-<x.y>.tsv from the
# upstream sources at each release tag: Redis's src/config.c and PgBouncer's
# src/main.c declare every setting, its type and range.
# Usage: scripts/gen-service-keys.sh REDIS_GIT_DIR PGBOUNCER_GIT_DIR
# (clones of github.com/redis/redis and github.com/pgbouncer/pgbouncer).
# Redis 8.0 comes from the tree scripts/fetch-redis-pgbouncer.sh built, which
# keeps its config.c. tests/it/services_oracle.rs checks the lists against the
# servers that run here.
set -euo pipefail
cd "$(dirname "$0")/.."
redis="$1"
bouncer="$2"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
for tag in 7.0.15 7.2.6 7.4.1; do
    git -C "$redis" show "$tag:src/config.c" > "$tmp/config.c"
    python3 scripts/gen-redis-keys.py "$tag" "$tmp/config.c"
done
cache="$(bash scripts/fetch-redis-pgbouncer.sh | awk '/Redis/ {print $1}')"
python3 scripts/gen-redis-keys.py "$(cat "$cache/VERSION")" "$cache/config.c"
for tag in 1_18_0 1_19_1 1_20_1 1_21_0 1_22_1 1_23_1 1_24_1; do
    git -C "$bouncer" show "pgbouncer_$tag:src/main.c" > "$tmp/main.c"
    python3 scripts/gen-pgbouncer-keys.py "${tag//_/.}" "$tmp/main.c"
done
