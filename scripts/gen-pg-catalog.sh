#!/usr/bin/env bash
# Regenerates data/pg-catalog-<major>.tsv from a real PostgreSQL server:
# a scratch cluster in a temp dir, on a Unix socket only, removed at the end.
# Usage: scripts/gen-pg-catalog.sh [/usr/lib/postgresql/15/bin]
# Run as root (it uses the postgres user) or as a user initdb accepts.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${1:-$(dirname "$(readlink -f "$(command -v postgres || echo /usr/lib/postgresql/15/bin/postgres)")")}"
major="$("$bin/postgres" --version | awk '{print $3}' | cut -d. -f1)"
tmp="$(mktemp -d)"
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cleanup() { as_pg "$bin/pg_ctl" -D "$tmp/data" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$tmp"; }
trap cleanup EXIT
[ "$(id -u)" = 0 ] && chown postgres "$tmp"
as_pg "$bin/initdb" -D "$tmp/data" >/dev/null
as_pg "$bin/pg_ctl" -D "$tmp/data" -w -o "-c listen_addresses= -c unix_socket_directories=$tmp -p 5999" -l "$tmp/log" start >/dev/null
out="data/pg-catalog-$major.tsv"
{
    echo "# PostgreSQL $major parameters from pg_settings; regenerate with scripts/gen-pg-catalog.sh"
    echo "# name	vartype	unit	min	max	enumvals	context	boot_val"
    as_pg "$bin/psql" -h "$tmp" -p 5999 -d postgres -XAtq -F $'\t' -c \
        "SELECT name, vartype, coalesce(unit,''), coalesce(min_val,''), coalesce(max_val,''),
                coalesce(array_to_string(enumvals, ','),''), context, coalesce(replace(boot_val, E'\t', ' '),'')
         FROM pg_settings ORDER BY name"
} > "$out"
echo "wrote $out ($(grep -vc '^#' "$out") parameters)"
