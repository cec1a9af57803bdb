#!/usr/bin/env bash
# Is the budget honest? Runs PostgreSQL, Redis and PgBouncer with a dbtune
# rendering inside memory cgroups, drives a hostile load (every free
# connection runs a query whose hash join and hash aggregate each fill
# hash_mem; a manual VACUUM; Redis written past maxmemory during BGSAVE),
# records the peak of anonymous + shared memory (what cannot be reclaimed)
# and OOM kills, and compares the peak with the budget's worst case.
#
# Usage: bench/memory-honesty.sh [--profile NAME] [--ram SIZE] [--cpus N]
#            [--seconds S] [--per-service] [--json]
#   --per-service  each service in its own cgroup, limited to the MemoryMax
#                  render wrote for it (its worst case); else one cgroup for
#                  all, limited to the host's RAM
#   --json         one JSON object on stdout (for tests)
# Env: DBTUNE (the dbtune binary; default: cargo build --release),
#      PG_BIN (PostgreSQL's bin directory; default: the installed one).
# Needs root (cgroups; servers run as the postgres user). Everything it
# starts is stopped at the end, also on failure: the servers themselves,
# never a wrapper (setpriv execs them).
set -euo pipefail
cd "$(dirname "$0")/.."

profile=low-memory ram="" cpus="" seconds=60 per_service=0 json=0
while [ $# -gt 0 ]; do
    case "$1" in
        --profile) profile="$2"; shift 2 ;;
        --ram) ram="$2"; shift 2 ;;
        --cpus) cpus="$2"; shift 2 ;;
        --seconds) seconds="$2"; shift 2 ;;
        --per-service) per_service=1; shift ;;
        --json) json=1; shift ;;
        *) echo "error: unknown argument $1" >&2; exit 2 ;;
    esac
done
[ "$(id -u)" = 0 ] || { echo "error: needs root (cgroups)" >&2; exit 2; }
say() { [ "$json" = 1 ] || echo "$@"; }

if [ -z "${DBTUNE:-}" ]; then
    cargo build --release --quiet
    DBTUNE=$PWD/target/release/dbtune
fi
bin="${PG_BIN:-$(dirname "$(readlink -f "$(command -v postgres || echo /usr/lib/postgresql/15/bin/postgres)")")}"
# Client programs (psql, pgbench, pg_isready): the installed PostgreSQL's.
client="$(dirname "$(readlink -f "$(command -v postgres || echo /usr/lib/postgresql/15/bin/postgres)")")"
[ -x "$client/psql" ] || client="$(find /usr/lib/postgresql -maxdepth 2 -name bin -type d | sort -V | tail -1)"
major=$("$bin/postgres" --version | awk '{print $3}' | cut -d. -f1)
work=$(mktemp -d /tmp/dbtune-honesty-XXXXXX)
chmod 755 "$work"
chown postgres "$work"
as_pg() { setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"; }

# cgroups: v2 when the unified hierarchy has the memory controller, else v1.
if grep -qw memory /sys/fs/cgroup/cgroup.controllers 2>/dev/null; then
    cgbase=/sys/fs/cgroup
    limit_file=memory.max
else
    cgbase=/sys/fs/cgroup/memory$(awk -F: '$2 == "memory" {print $3}' /proc/self/cgroup)
    limit_file=memory.limit_in_bytes
fi
cgroups=()
# make_cg NAME LIMIT: a cgroup limited to LIMIT bytes, in $cg.
make_cg() {
    cg="$cgbase/dbtune-honesty-$$-$1"
    mkdir "$cg"
    echo "$2" > "$cg/$limit_file"
    # A server that needs more is OOM-killed, not swapped.
    if [ -f "$cg/memory.swappiness" ]; then echo 0 > "$cg/memory.swappiness" 2>/dev/null || true; fi
    if [ -f "$cg/memory.swap.max" ]; then echo 0 > "$cg/memory.swap.max" 2>/dev/null || true; fi
    cgroups+=("$cg")
}

pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null || true; done
    for _ in $(seq 50); do
        alive=0
        for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
        [ "$alive" = 0 ] && break
        sleep 0.1
    done
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    # Anything left in a cgroup (a backend whose postmaster died) goes too.
    for cg in "${cgroups[@]}"; do
        while read -r p; do kill -KILL "$p" 2>/dev/null || true; done < "$cg/cgroup.procs" 2>/dev/null || true
    done
    sleep 0.3
    for cg in "${cgroups[@]}"; do rmdir "$cg" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

host=(--profile "$profile" --pg-version "$major")
[ -n "$ram" ] && host+=(--ram "$ram")
[ -n "$cpus" ] && host+=(--cpus "$cpus")
"$DBTUNE" render "${host[@]}" --out "$work/conf" 2>"$work/render.txt"
budget_json=$("$DBTUNE" check-budget --format json "$work/conf")
worst_of() {
    python3 -c "
import json, sys
d = json.loads(sys.argv[1])
print(sum(t['worst'] for t in d['terms'] if t['service'] in sys.argv[2].split(',')))" "$budget_json" "$1"
}
ram_bytes=$(python3 -c "import json,sys; print(json.loads(sys.argv[1])['ram'])" "$budget_json")
services="postgres"
[ -f "$work/conf/redis.conf" ] && services="$services,redis"
[ -f "$work/conf/pgbouncer.ini" ] && services="$services,pgbouncer"
predicted=$(worst_of "$services")
limit_of() { awk -F= '/^MemoryMax=/ {print $2}' "$work/conf/$1"; }

cg_redis="" cg_bouncer=""
if [ "$per_service" = 1 ]; then
    make_cg postgres "$(limit_of postgresql.service.conf)"; cg_pg=$cg
    if [ -f "$work/conf/redis.conf" ]; then make_cg redis "$(limit_of redis-server.service.conf)"; cg_redis=$cg; fi
    if [ -f "$work/conf/pgbouncer.ini" ]; then make_cg pgbouncer "$(limit_of pgbouncer.service.conf)"; cg_bouncer=$cg; fi
else
    make_cg all "$ram_bytes"; cg_pg=$cg
    [ -f "$work/conf/redis.conf" ] && cg_redis=$cg
    [ -f "$work/conf/pgbouncer.ini" ] && cg_bouncer=$cg
fi

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
pgport=$(port) rport=$(port) bport=$(port)

as_pg "$bin/initdb" -D "$work/data" --auth=trust -U postgres --no-sync >/dev/null
# No huge pages are reserved here: the one setting changed.
sed -e "s/^port = .*/port = $pgport/" -e "s/^huge_pages = on/huge_pages = off/" "$work/conf/postgresql.conf" > "$work/postgresql.conf"
echo "unix_socket_directories = '$work'" >> "$work/postgresql.conf"
chown postgres "$work/postgresql.conf"

# start CGROUP CMD...: the command runs (execs) inside the cgroup.
start() {
    local cg="$1"; shift
    sh -c "echo \$\$ > '$cg/cgroup.procs'; exec \"\$@\"" sh "$@" &
    pids+=($!)
}
start "$cg_pg" setpriv --reuid=postgres --regid=postgres --init-groups -- \
    "$bin/postgres" -D "$work/data" -c "config_file=$work/postgresql.conf" >"$work/pg.log" 2>&1
for _ in $(seq 150); do "$client/pg_isready" -q -h "$work" -p "$pgport" && break; sleep 0.2; done
psql() { "$client/psql" -h "$work" -p "$pgport" -Xq "$@"; }
psql -U postgres -c "CREATE ROLE app LOGIN PASSWORD 'secret'" -c "CREATE DATABASE app OWNER app"
if [ -n "$cg_redis" ]; then
    mkdir -p "$work/redis"
    start "$cg_redis" redis-server "$work/conf/redis.conf" --port "$rport" --bind 127.0.0.1 \
        --dir "$work/redis" --daemonize no --logfile "$work/redis.log" >/dev/null 2>&1
fi
if [ -n "$cg_bouncer" ]; then
    printf '"app" "secret"\n' > "$work/userlist.txt"
    sed -e "s/^listen_port = .*/listen_port = $bport/" -e "s#^auth_file = .*#auth_file = $work/userlist.txt#" \
        -e "s/port=5432/port=$pgport/" "$work/conf/pgbouncer.ini" > "$work/pgbouncer.ini"
    echo "unix_socket_dir = $work" >> "$work/pgbouncer.ini"
    chown postgres "$work/pgbouncer.ini" "$work/userlist.txt"
    start "$cg_bouncer" setpriv --reuid=postgres --regid=postgres --init-groups -- pgbouncer "$work/pgbouncer.ini" >"$work/pgbouncer.log" 2>&1
fi

setting() { psql -U postgres -At -c "SELECT setting FROM pg_settings WHERE name = '$1'"; }
work_mem_kb=$(setting work_mem)
hmm=$(setting hash_mem_multiplier)
max_conn=$(setting max_connections)
reserved=$(setting superuser_reserved_connections)
# Every slot but the superuser-reserved ones and the VACUUM session.
clients=$((max_conn - reserved - 1))
# Rows so that the hash join's table and the hash aggregate's table each
# fill hash_mem (work_mem x hash_mem_multiplier): about 100 bytes a row.
rows=$(python3 -c "print(int($work_mem_kb * 1024 * $hmm / 100))")
cat > "$work/hostile.sql" <<SQL
SET enable_sort = off;
SELECT count(*) FROM (
  SELECT a.m, count(*) FROM (SELECT md5(g::text) AS m FROM generate_series(1, $rows) g) a
  JOIN (SELECT md5(g::text) AS m FROM generate_series(1, $rows) g) b USING (m)
  GROUP BY a.m) s;
SQL
chmod 644 "$work/hostile.sql"
psql -U app -d app \
    -c "CREATE TABLE churn AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 2000000) g" \
    -c "DELETE FROM churn WHERE id % 2 = 0"

# Peak anonymous + shared memory per cgroup, sampled 10 times a second
# (page cache is charged too, but the kernel reclaims it under pressure).
sample() {
    local cg="$1" out="$2" max=0 cur
    while :; do
        cur=$(awk '$1 == "total_rss" || $1 == "total_shmem" || $1 == "anon" || $1 == "shmem" {s += $2} END {print s + 0}' "$cg/memory.stat" 2>/dev/null || echo 0)
        [ "$cur" -gt "$max" ] && max=$cur && echo "$max" > "$out"
        sleep 0.1
    done
}
samplers=()
for cg in "${cgroups[@]}"; do
    sample "$cg" "$work/peak-$(basename "$cg")" &
    samplers+=($!)
    pids+=($!)
done

say "profile $profile ($(head -1 "$work/render.txt" | sed 's/.*: worst/worst/')): $clients clients x hash join + hash aggregate of $rows rows (work_mem ${work_mem_kb} kB x $hmm) for ${seconds} s"
target_port=$pgport
[ -n "$cg_bouncer" ] && target_port=$bport
PGPASSWORD=secret "$client/pgbench" -h 127.0.0.1 -p "$target_port" -U app -n -c "$clients" -j 2 -T "$seconds" \
    -f "$work/hostile.sql" app > "$work/pgbench.txt" 2>&1 &
bench=$!
psql -U app -d app -c "VACUUM churn" &
vac=$!
if [ -n "$cg_redis" ]; then
    maxmem=$(redis-cli -p "$rport" CONFIG GET maxmemory | tail -1)
    redis-cli -p "$rport" BGSAVE >/dev/null
    python3 - "$maxmem" <<'PY' | redis-cli -p "$rport" --pipe >/dev/null 2>&1 || true
import sys
total = 2 * int(sys.argv[1]); value = "x" * 10240; n = total // len(value)
out = sys.stdout
for i in range(n):
    k = f"fill:{i}"
    out.write(f"*5\r\n$3\r\nSET\r\n${len(k)}\r\n{k}\r\n${len(value)}\r\n{value}\r\n$2\r\nEX\r\n$4\r\n3600\r\n")
    if i % 2000 == 0:
        out.write("*2\r\n$6\r\nBGSAVE\r\n$8\r\nSCHEDULE\r\n")
PY
fi
wait "$vac" || true
wait "$bench" || true
sleep 0.3
for s in "${samplers[@]}"; do kill "$s" 2>/dev/null || true; done

ooms() {
    local cg="$1" n
    n=$(awk '$1 == "oom_kill" {print $2}' "$cg/memory.oom_control" 2>/dev/null || true)
    [ -n "$n" ] || n=$(awk '$1 == "oom_kill" {print $2}' "$cg/memory.events" 2>/dev/null || echo 0)
    echo "${n:-0}"
}
results=()
for cg in "${cgroups[@]}"; do
    name=$(basename "$cg" | sed "s/dbtune-honesty-$$-//")
    case "$name" in all) svc="$services" ;; *) svc="$name" ;; esac
    results+=("$name:$(cat "$work/peak-$(basename "$cg")" 2>/dev/null || echo 0):$(worst_of "$svc"):$(cat "$cg/$limit_file"):$(ooms "$cg")")
done
tps=$(grep -E '^tps' "$work/pgbench.txt" | head -1 || true)
failed=$(grep -E 'number of failed transactions' "$work/pgbench.txt" || true)
python3 - "$json" "$profile" "$predicted" "$tps $failed" "${results[@]}" <<'PY'
import json, sys
as_json, profile, predicted, bench = sys.argv[1] == "1", sys.argv[2], int(sys.argv[3]), sys.argv[4]
groups = []
for r in sys.argv[5:]:
    name, peak, worst, limit, ooms = r.split(":")
    groups.append({"cgroup": name, "peak": int(peak), "predicted": int(worst),
                   "limit": int(limit), "oom_kills": int(ooms)})
peak = sum(g["peak"] for g in groups)
doc = {"profile": profile, "predicted": predicted, "peak": peak,
       "ratio": round(peak / predicted, 3) if predicted else None,
       "oom_kills": sum(g["oom_kills"] for g in groups), "cgroups": groups,
       "pgbench": bench.strip(), "honest": all(g["peak"] <= g["predicted"] for g in groups)}
if as_json:
    print(json.dumps(doc))
else:
    mib = lambda b: b / 1048576
    for g in groups:
        print(f"{g['cgroup']:<10} limit {mib(g['limit']):7.0f} MiB  predicted {mib(g['predicted']):7.0f} MiB  "
              f"peak (anonymous + shared) {mib(g['peak']):7.0f} MiB  ratio {g['peak'] / g['predicted']:.2f}  "
              f"OOM kills {g['oom_kills']}")
    print(f"total      predicted {mib(predicted):.0f} MiB, peak {mib(peak):.0f} MiB, ratio {doc['ratio']}")
    print(f"pgbench: {doc['pgbench']}")
    print("HONEST" if doc["honest"] else "MODEL WRONG: a measured peak exceeds its prediction")
PY
