#!/usr/bin/env bash
# The observe -> advise -> apply -> again -> compare loop for Redis and
# PgBouncer, as bench/advise-loop.sh does it for PostgreSQL: a Redis at a
# maxmemory smaller than its keyspace under redis-benchmark (evictions,
# misses), and PgBouncer with a pool of one in front of a PostgreSQL that
# eight pgbench clients share with transactions of 100 ms (clients
# waiting). The Redis proposal goes
# through `advise --out` and `apply`; PgBouncer's is written into its ini
# and RELOADed (apply does not change PgBouncer). Each run starts new
# servers; prints each run's rate and compare's table.
#
# Usage: bench/advise-loop-services.sh [--runs N] [--seconds S]
# Env: DBTUNE (default: cargo build --release), PG_BIN. Needs root (the
#      servers run as the postgres user). Everything it starts is stopped
#      at the end, also on failure.
set -euo pipefail
cd "$(dirname "$0")/.."

runs=3
seconds=20
while [ $# -gt 0 ]; do
    case "$1" in
        --runs) runs="$2"; shift 2 ;;
        --seconds) seconds="$2"; shift 2 ;;
        *) echo "usage: bench/advise-loop-services.sh [--runs N] [--seconds S]" >&2; exit 2 ;;
    esac
done
if [ -z "${DBTUNE:-}" ]; then
    cargo build --release -q
    DBTUNE="$PWD/target/release/dbtune"
fi
PG_BIN="${PG_BIN:-$(pg_config --bindir)}"
work="$(mktemp -d /tmp/dbtune-advise-services-XXXXXX)"
chown postgres "$work"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
as_pg() { setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"; }
stop_all() {
    if [ -f "$work/data/postmaster.pid" ]; then
        as_pg "$PG_BIN/pg_ctl" -D "$work/data" -m fast -w stop >/dev/null 2>&1 || true
    fi
    if [ -f "$work/bouncer.pid" ]; then
        kill "$(cat "$work/bouncer.pid")" 2>/dev/null || true
    fi
    if [ -n "${rport:-}" ]; then
        redis-cli -p "$rport" shutdown nosave >/dev/null 2>&1 || true
    fi
    sleep 0.5
}
cleanup() {
    stop_all
    if [ "${KEEP:-}" = 1 ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

redis_window() {
    local out="$1"
    # Filled first, unobserved: the keyspace is several times maxmemory.
    redis-benchmark -p "$rport" -t set -r 400000 -d 200 -n 400000 -P 16 -q >/dev/null 2>&1
    "$DBTUNE" observe --seconds "$((seconds + 2))" --ram 4GiB --out "$out" "redis://127.0.0.1:$rport" 2>"$out.log" &
    local obs=$!
    sleep 1
    timeout -s INT "$seconds" redis-benchmark -p "$rport" -t set,get -r 400000 -d 200 -c 4 \
        -n 50000 -l -q >/dev/null 2>&1 || true
    wait "$obs"
    # Commands a second over the window, from the observation itself.
    python3 -c 'import json,sys; print("%.0f commands/s" % json.load(open(sys.argv[1]))["redis"]["counters"]["per_second"]["total_commands_processed"])' "$out"
}

bouncer_window() {
    local out="$1"
    "$DBTUNE" observe --seconds "$((seconds + 2))" --ram 4GiB --out "$out" \
        "postgres://postgres@127.0.0.1:$pport/postgres?sslmode=disable" \
        "pgbouncer://postgres@127.0.0.1:$bport/pgbouncer" 2>"$out.log" &
    local obs=$!
    sleep 1
    local tps
    tps=$(as_pg "$PG_BIN/pgbench" -h 127.0.0.1 -p "$bport" -U postgres -n -f "$work/pooled.sql" -c 8 -T "$seconds" postgres 2>/dev/null |
        awk '/^tps/ {print $3; exit}')
    wait "$obs"
    echo "$tps"
}

for run in $(seq 1 "$runs"); do
    stop_all
    rm -rf "$work/data" "$work/redis" "$work/advised-$run"
    # Redis: 16mb for a keyspace of about 400000 x 200 B.
    rport=$(free_port)
    mkdir -p "$work/redis"
    redis-server --port "$rport" --bind 127.0.0.1 --dir "$work/redis" --save '' \
        --maxmemory 16mb --maxmemory-policy allkeys-lru --daemonize yes --logfile "$work/redis.log"
    sleep 0.5
    rb=$(redis_window "$work/redis-before-$run.json")
    "$DBTUNE" advise --format json --out "$work/advised-$run" "$work/redis-before-$run.json" > "$work/redis-advice-$run.json" 2>/dev/null
    "$DBTUNE" apply "$work/advised-$run" "redis://127.0.0.1:$rport" --yes --snapshot-dir "$work" >/dev/null
    redis-cli -p "$rport" flushall >/dev/null
    redis-cli -p "$rport" config resetstat >/dev/null
    ra=$(redis_window "$work/redis-after-$run.json")
    echo "== run $run redis: before $rb; after $ra"
    python3 -c 'import json,sys; [print("  %s %s: %s -> %s [%s]" % (p["service"], p["setting"], p["current"], p["proposed"], p["rule"])) for p in json.load(open(sys.argv[1]))["advice"]]' "$work/redis-advice-$run.json"
    "$DBTUNE" compare "$work/redis-before-$run.json" "$work/redis-after-$run.json" || true

    # PgBouncer: a pool of 1 for 8 clients.
    pport=$(free_port); bport=$(free_port)
    as_pg "$PG_BIN/initdb" -D "$work/data" -U postgres --no-sync >/dev/null
    printf "port = %s\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '%s'\n" "$pport" "$work" >> "$work/data/postgresql.conf"
    as_pg "$PG_BIN/pg_ctl" -D "$work/data" -l "$work/log" -w start >/dev/null
    as_pg "$PG_BIN/pgbench" -h "$work" -p "$pport" -U postgres -i -s 10 -q postgres >/dev/null 2>&1
    printf '"postgres" ""\n' > "$work/users.txt"
    # A transaction that holds its server connection for 100 ms: with a
    # pool of one, the other seven clients wait in PgBouncer.
    cat > "$work/pooled.sql" <<'SQL'
\set aid random(1, 1000000)
BEGIN;
SELECT abalance FROM pgbench_accounts WHERE aid = :aid;
SELECT pg_sleep(0.1);
END;
SQL
    chown postgres "$work/pooled.sql"
    write_ini() {
        cat > "$work/pgbouncer.ini" <<INI
[databases]
postgres = host=127.0.0.1 port=$pport dbname=postgres
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $bport
auth_type = trust
auth_file = $work/users.txt
admin_users = postgres
pool_mode = transaction
default_pool_size = $1
stats_period = 1
pidfile = $work/bouncer.pid
logfile = $work/bouncer.log
INI
        chown postgres "$work/pgbouncer.ini" "$work/users.txt"
    }
    write_ini 1
    as_pg pgbouncer -d "$work/pgbouncer.ini"
    sleep 0.5
    bb=$(bouncer_window "$work/bouncer-before-$run.json")
    "$DBTUNE" advise --format json "$work/bouncer-before-$run.json" > "$work/bouncer-advice-$run.json" 2>/dev/null
    pool=$(python3 -c 'import json,sys; print(next((p["proposed"] for p in json.load(open(sys.argv[1]))["advice"] if p["setting"] == "default_pool_size"), 1))' "$work/bouncer-advice-$run.json")
    write_ini "$pool"
    as_pg psql -h 127.0.0.1 -p "$bport" -U postgres -d pgbouncer -XAtqc RELOAD >/dev/null
    ba=$(bouncer_window "$work/bouncer-after-$run.json")
    echo "== run $run pgbouncer: TPS before $bb (pool 1), after $ba (pool $pool)"
    "$DBTUNE" compare "$work/bouncer-before-$run.json" "$work/bouncer-after-$run.json" | grep -v "statement" || true
done
