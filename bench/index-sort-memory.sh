#!/usr/bin/env bash
# What maintenance_work_mem does to a B-tree build: CREATE INDEX on a text
# column at several maintenance_work_mem values, interleaved, with
# trace_sort on, so next to each time stand the sort's own counters: the
# runs each participant wrote, the merge passes, and the CPU each
# participant used (PostgreSQL's own getrusage, printed at the sort's end).
# The CPU does not depend on this machine's noise the way the wall time
# does; it says whether a larger sort memory costs or saves work.
#
# The table is bench's copy-index shape (a bigint, a 32-character text,
# a number), filled with md5 text (not in index order), vacuumed and
# analysed; every build is dropped before the next.
#
# Usage: bench/index-sort-memory.sh [--rows N] [--rounds N] [--workers N]
#            [--column payload|r] [SIZE...]
#   --rows     rows in the table (default 20000000: 1.6 GB)
#   --rounds   builds of each size, interleaved (default 4)
#   --workers  max_parallel_maintenance_workers (default 1, what dbtune
#              and PGTune render at 2 CPUs; 0: a serial build)
#   --column   payload (text, the default) or r (a random bigint)
#   SIZE...    maintenance_work_mem values (default 64MB 128MB 256MB 512MB)
# Env: PG_BIN (PostgreSQL's bin directory; default: the installed one).
# Needs root (the server runs as the postgres user). The server listens on
# a socket in a temp dir only, and is stopped at the end, also on failure.
set -euo pipefail

rows=20000000 rounds=4 workers=1 column=payload sizes=()
while [ $# -gt 0 ]; do
    case "$1" in
        --rows) rows="$2"; shift 2 ;;
        --rounds) rounds="$2"; shift 2 ;;
        --workers) workers="$2"; shift 2 ;;
        --column) column="$2"; shift 2 ;;
        -*) echo "error: unknown argument $1" >&2; exit 2 ;;
        *) sizes+=("$1"); shift ;;
    esac
done
[ ${#sizes[@]} -gt 0 ] || sizes=(64MB 128MB 256MB 512MB)
case "$column" in payload|r) ;; *) echo "error: --column is payload or r" >&2; exit 2 ;; esac
[ "$(id -u)" = 0 ] || { echo "error: needs root (the server runs as postgres)" >&2; exit 2; }

bin="${PG_BIN:-$(dirname "$(readlink -f "$(command -v postgres || echo /usr/lib/postgresql/15/bin/postgres)")")}"
work=$(mktemp -d /tmp/dbtune-index-sort-XXXXXX)
chmod 755 "$work"
chown postgres "$work"
as_pg() { setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"; }
stop() {
    as_pg "$bin/pg_ctl" -D "$work/data" -m fast stop >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap stop EXIT

as_pg "$bin/initdb" -D "$work/data" -U postgres --auth-local=trust --no-sync >/dev/null 2>&1
cat >> "$work/data/postgresql.conf" <<EOF
listen_addresses = ''
unix_socket_directories = '$work'
shared_buffers = 512MB
max_wal_size = 8GB
fsync = off
max_parallel_maintenance_workers = $workers
EOF
as_pg "$bin/pg_ctl" -D "$work/data" -l "$work/log" -w start >/dev/null
psql() { as_pg "$bin/psql" -XAtq -h "$work" -U postgres -v ON_ERROR_STOP=1 "$@"; }

psql -c "CREATE TABLE t (id bigint, payload text, r bigint)"
psql -c "INSERT INTO t SELECT i, md5(i::text), (random() * 1e18)::bigint FROM generate_series(1, $rows) i"
psql -c "VACUUM ANALYZE t"
echo "# PostgreSQL $("$bin/postgres" --version | awk '{print $3}'), $rows rows ($(psql -c "SELECT pg_size_pretty(pg_relation_size('t'))")), index on $column, max_parallel_maintenance_workers $workers"
echo "# round size wall_ms runs merge_passes (summed over the participants) sort_cpu_s (user, summed over the participants that sorted) leader_merge_cpu_s (user+sys; - in a serial build)"
for round in $(seq "$rounds"); do
    for size in "${sizes[@]}"; do
        out=$(psql -c "SET maintenance_work_mem = '$size'" -c "SET trace_sort = on" \
            -c "SET client_min_messages = log" -c '\timing on' \
            -c "CREATE INDEX i ON t ($column)" -c "DROP INDEX i" 2>&1)
        wall=$(grep -m1 '^Time:' <<<"$out" | awk '{print $2}')
        runs=$(grep -c 'finished writing run' <<<"$out" || true)
        passes=$(grep -c 'starting merge pass' <<<"$out" || true)
        # Each participant that sorted ends with "worker N ended" (N >= 0);
        # the leader's merge of their runs with "worker -1 ended". A serial
        # build has only the latter: its one sort.
        cpu() { { grep -E "$1" <<<"$out" || true; } | sed -E 's/.*user: ([0-9.]+) s, system: ([0-9.]+) s.*/\1 \2/'; }
        sorted=$(cpu 'worker [0-9]+ ended')
        leader=$(cpu 'worker -1 ended')
        if [ -n "$sorted" ]; then
            sort_cpu=$(awk '{ s += $1 } END { printf "%.2f", s }' <<<"$sorted")
            merge_cpu=$(awk '{ printf "%.2f", $1 + $2 }' <<<"$leader")
        else
            sort_cpu=$(awk '{ printf "%.2f", $1 }' <<<"$leader")
            merge_cpu=-
        fi
        echo "$round $size $wall $runs $passes $sort_cpu $merge_cpu"
    done
done
