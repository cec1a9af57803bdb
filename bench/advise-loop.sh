#!/usr/bin/env bash
# observe -> advise -> apply -> the same workload again -> compare, end to
# end on a scratch PostgreSQL with the problems advise is about provoked:
# work_mem 64kB under a sorting workload (temp files), max_wal_size 32MB
# under a writing one (requested checkpoints, full-page images) and
# wal_buffers 64kB. Each run starts from a new cluster; the "after" window
# runs the same pgbench script for the same time on the settings advise
# proposed (system-wide ones by ALTER SYSTEM and a restart, role ones by
# ALTER ROLE). Prints each run's TPS and compare's table; BENCHMARKS.md
# records a run.
#
# Usage: bench/advise-loop.sh [--runs N] [--seconds S]
# Env: DBTUNE (default: cargo build --release), PG_BIN (default: the
#      installed PostgreSQL's bin directory), KEEP=1 keeps the work dir.
# Needs root (the server runs as the postgres user). Everything it starts
# is stopped at the end, also on failure.
set -euo pipefail
cd "$(dirname "$0")/.."

runs=3
seconds=20
while [ $# -gt 0 ]; do
    case "$1" in
        --runs) runs="$2"; shift 2 ;;
        --seconds) seconds="$2"; shift 2 ;;
        *) echo "usage: bench/advise-loop.sh [--runs N] [--seconds S]" >&2; exit 2 ;;
    esac
done

if [ -z "${DBTUNE:-}" ]; then
    cargo build --release -q
    DBTUNE="$PWD/target/release/dbtune"
fi
PG_BIN="${PG_BIN:-$(pg_config --bindir)}"
work="$(mktemp -d /tmp/dbtune-advise-loop-XXXXXX)"
chown postgres "$work"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
as_pg() { setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"; }
stop() {
    if [ -f "$work/data/postmaster.pid" ]; then
        as_pg "$PG_BIN/pg_ctl" -D "$work/data" -m fast -w stop >/dev/null 2>&1 || true
    fi
}
cleanup() {
    stop
    if [ "${KEEP:-}" = 1 ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

psql_() { as_pg "$PG_BIN/psql" -h "$work" -p "$port" -U postgres -d postgres -XAtq -v ON_ERROR_STOP=1 "$@"; }
url="postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"

# The workload: a sort that spills at 64kB and a write of 400 rows a
# transaction, for each client.
cat > "$work/workload.sql" <<'SQL'
SELECT count(*) FROM (SELECT g FROM generate_series(1, 20000) g ORDER BY g DESC) s;
INSERT INTO t SELECT g, repeat('x', 200) FROM generate_series(1, 400) g;
SQL
chown postgres "$work/workload.sql"

# One window: pgbench for $seconds with observe around it; prints the TPS.
window() {
    local out="$1"
    "$DBTUNE" observe --seconds "$((seconds + 2))" --ram 4GiB --out "$out" "$url" 2>"$out.log" &
    local obs=$!
    sleep 1
    local tps
    tps=$(as_pg "$PG_BIN/pgbench" -h "$work" -p "$port" -U postgres -n -f "$work/workload.sql" \
        -c 2 -T "$seconds" postgres 2>/dev/null | awk '/^tps/ {print $3; exit}')
    wait "$obs"
    echo "$tps"
}

for run in $(seq 1 "$runs"); do
    stop
    rm -rf "$work/data"
    as_pg "$PG_BIN/initdb" -D "$work/data" -U postgres --no-sync >/dev/null
    cat >> "$work/data/postgresql.conf" <<CONF
port = $port
listen_addresses = '127.0.0.1'
unix_socket_directories = '$work'
shared_preload_libraries = 'pg_stat_statements'
work_mem = 64kB
max_wal_size = 32MB
min_wal_size = 32MB
wal_buffers = 64kB
CONF
    as_pg "$PG_BIN/pg_ctl" -D "$work/data" -l "$work/log" -w start >/dev/null
    psql_ -c "CREATE EXTENSION pg_stat_statements" -c "CREATE TABLE t (id int, v text)"
    before="$work/before-$run.json"
    after="$work/after-$run.json"
    tps_before=$(window "$before")
    "$DBTUNE" advise --format json "$before" > "$work/advice-$run.json"
    # Apply: system-wide by ALTER SYSTEM, per role by ALTER ROLE.
    python3 - "$work/advice-$run.json" > "$work/apply-$run.sql" <<'PY'
import json, sys
a = json.load(open(sys.argv[1]))
for p in a["advice"]:
    if p["service"] != "postgres":
        continue
    to = p["applies_to"]
    if to == "system":
        print(f"ALTER SYSTEM SET {p['setting']} = '{p['proposed']}';")
    elif to.startswith("role "):
        print(f"ALTER ROLE \"{to[5:]}\" SET {p['setting']} = '{p['proposed']}';")
    elif to.startswith("database "):
        print(f"ALTER DATABASE \"{to[9:]}\" SET {p['setting']} = '{p['proposed']}';")
PY
    chown postgres "$work/apply-$run.sql"
    psql_ -f "$work/apply-$run.sql"
    as_pg "$PG_BIN/pg_ctl" -D "$work/data" -l "$work/log" -m fast -w restart >/dev/null
    psql_ -c "TRUNCATE t" -c "CHECKPOINT"
    tps_after=$(window "$after")
    echo "== run $run: TPS before $tps_before, after $tps_after"
    echo "advice:"
    python3 -c 'import json,sys; [print("  %s %s: %s -> %s [%s]" % (p["service"], p["setting"], p["current"], p["proposed"], p["rule"])) for p in json.load(open(sys.argv[1]))["advice"]]' "$work/advice-$run.json"
    "$DBTUNE" compare "$before" "$after" | grep -v "^within noise.*statement\|^same.*statement" || true
done
