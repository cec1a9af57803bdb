#!/usr/bin/env bash
# Is the budget honest? Runs PostgreSQL, Redis and PgBouncer with a dbtune
# rendering inside a memory cgroup limited to the profile's RAM, drives a
# hostile load (every connection running hash joins, aggregates and sorts
# sized to work_mem; a manual VACUUM; Redis written past maxmemory during a
# BGSAVE), records the cgroup's peak memory and OOM kills, and compares the
# peak with the budget's worst case for those services.
#
# Needs root (cgroups, and to run PostgreSQL as the postgres user).
# Usage: bench/memory-honesty.sh [PROFILE] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
profile="${1:-low-memory}"
seconds="${2:-60}"
[ "$(id -u)" = 0 ] || { echo "error: needs root (cgroups)" >&2; exit 2; }

cargo build --release --quiet
dbtune=$PWD/target/release/dbtune
bin=$(dirname "$(readlink -f "$(command -v postgres || echo /usr/lib/postgresql/15/bin/postgres)")")
major=$("$bin/postgres" --version | awk '{print $3}' | cut -d. -f1)
work=$(mktemp -d /tmp/dbtune-honesty-XXXXXX)
chmod 755 "$work"
chown postgres "$work"

# The cgroup: v2 if the unified hierarchy has the memory controller, else v1.
if grep -qw memory /sys/fs/cgroup/cgroup.controllers 2>/dev/null; then
    cg=/sys/fs/cgroup/dbtune-honesty-$$
    mkdir "$cg"
    limit_file=memory.max; peak_file=memory.peak
else
    base=/sys/fs/cgroup/memory$(awk -F: '$2 == "memory" {print $3}' /proc/self/cgroup)
    cg=$base/dbtune-honesty-$$
    mkdir "$cg"
    limit_file=memory.limit_in_bytes; peak_file=memory.max_usage_in_bytes
fi

pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null || true; done
    sleep 2
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    sleep 0.5
    rmdir "$cg" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

"$dbtune" render --profile "$profile" --pg-version "$major" --out "$work/conf" 2>"$work/render.txt"
ram=$("$dbtune" profiles --json | python3 -c "import json,sys; print([p for p in json.load(sys.stdin) if p['name']=='$profile'][0]['host']['ram'])")
echo "$ram" > "$cg/$limit_file"
predicted=$("$dbtune" check-budget --format json "$work/conf" | python3 -c "
import json, sys
d = json.load(sys.stdin)
print(sum(t['worst'] for t in d['terms'] if t['service'] in ('postgres', 'redis', 'pgbouncer')))")

pgport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
rport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
bport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

runuser -u postgres -- "$bin/initdb" -D "$work/data" --auth=trust -U postgres --no-sync >/dev/null
sed -e "s/^port = .*/port = $pgport/" -e "s/^huge_pages = on/huge_pages = off/" "$work/conf/postgresql.conf" > "$work/postgresql.conf"
echo "unix_socket_directories = '$work'" >> "$work/postgresql.conf"
chown postgres "$work/postgresql.conf"

# Everything started from this subshell lives in the cgroup.
start_in_cgroup() {
    sh -c "echo \$\$ > '$cg/cgroup.procs'; exec \"\$@\"" sh "$@" &
    pids+=($!)
}
start_in_cgroup runuser -u postgres -- "$bin/postgres" -D "$work/data" -c "config_file=$work/postgresql.conf" >"$work/pg.log" 2>&1
mkdir -p "$work/redis"
start_in_cgroup redis-server "$work/conf/redis.conf" --port "$rport" --bind 127.0.0.1 --dir "$work/redis" --daemonize no --logfile "$work/redis.log"
for _ in $(seq 100); do "$bin/pg_isready" -q -h "$work" -p "$pgport" && break; sleep 0.2; done
"$bin/psql" -h "$work" -p "$pgport" -U postgres -Xq -c "CREATE ROLE app LOGIN PASSWORD 'secret'" -c "CREATE DATABASE app OWNER app"
if [ -f "$work/conf/pgbouncer.ini" ]; then
    printf '"app" "secret"\n' > "$work/userlist.txt"
    sed -e "s/^listen_port = .*/listen_port = $bport/" -e "s#^auth_file = .*#auth_file = $work/userlist.txt#" \
        -e "s/port=5432/port=$pgport/" "$work/conf/pgbouncer.ini" > "$work/pgbouncer.ini"
    echo "unix_socket_dir = $work" >> "$work/pgbouncer.ini"
    chown postgres "$work/pgbouncer.ini" "$work/userlist.txt"
    start_in_cgroup runuser -u postgres -- pgbouncer "$work/pgbouncer.ini"
fi

work_mem_kb=$("$bin/psql" -h "$work" -p "$pgport" -U postgres -XAtc "SELECT setting FROM pg_settings WHERE name = 'work_mem'")
max_conn=$("$bin/psql" -h "$work" -p "$pgport" -U postgres -XAtc "SHOW max_connections")
# All the slots but the 3 superuser-reserved ones and the VACUUM session.
clients=$((max_conn - 4))
# Rows so that each hash table fills hash_mem (work_mem x 2) without spilling.
rows=$(( work_mem_kb * 1024 * 2 / 110 ))
cat > "$work/hostile.sql" <<SQL
SELECT a.g % 97, count(*), max(b.m)
FROM (SELECT g, md5(g::text) AS m FROM generate_series(1, $rows) g) a
JOIN (SELECT g, md5(g::text) AS m FROM generate_series(1, $rows) g) b ON a.m = b.m
GROUP BY 1 ORDER BY 3 DESC;
SQL
chmod 644 "$work/hostile.sql"

# A table with dead tuples for a manual VACUUM using maintenance_work_mem.
"$bin/psql" -h "$work" -p "$pgport" -U app -d app -Xq \
    -c "CREATE TABLE churn AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 2000000) g" \
    -c "DELETE FROM churn WHERE id % 2 = 0"

# The cgroup's peak counts page cache too (WAL, data files, RDB), which the
# kernel reclaims under pressure; the budget counts memory that cannot be
# reclaimed. So also sample anonymous + shared memory every 100 ms.
sample() {
    local max=0 cur
    while :; do
        if [ -f "$cg/memory.stat" ]; then
            cur=$(awk '$1 == "total_rss" || $1 == "total_shmem" || $1 == "anon" || $1 == "shmem" {s += $2} END {print s + 0}' "$cg/memory.stat")
            [ "$cur" -gt "$max" ] && max=$cur && echo "$max" > "$work/anon-peak"
        fi
        sleep 0.1
    done
}
sample &
sampler=$!
pids+=("$sampler")

echo "profile $profile: cgroup limit $ram bytes; $clients clients x hash joins of $rows rows (work_mem ${work_mem_kb} kB) for ${seconds} s"
"$bin/pgbench" -h "$work" -p "$pgport" -U app -n -c "$clients" -j 2 -T "$seconds" -f "$work/hostile.sql" app > "$work/pgbench.txt" 2>&1 &
bench=$!
"$bin/psql" -h "$work" -p "$pgport" -U app -d app -Xq -c "VACUUM churn" &
vac=$!
# Redis: write twice maxmemory while BGSAVE forks.
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
wait "$vac" || true
wait "$bench" || true

sleep 0.3
kill "$sampler" 2>/dev/null || true
peak=$(cat "$cg/$peak_file")
anon=$(cat "$work/anon-peak" 2>/dev/null || echo 0)
ooms=$(grep -E '^oom_kill ' "$cg/memory.oom_control" 2>/dev/null | awk '{print $2}' || true)
[ -n "$ooms" ] || ooms=$(grep -E '^oom_kill ' "$cg/memory.events" 2>/dev/null | awk '{print $2}' || echo "?")
failed=$(grep -E 'number of failed transactions' "$work/pgbench.txt" || true)
if grep -qE '^tps' "$work/pgbench.txt"; then
    echo "pgbench: $(grep -E '^tps' "$work/pgbench.txt"); $failed"
else
    echo "pgbench failed:"; tail -5 "$work/pgbench.txt"
fi
python3 - "$predicted" "$peak" "$anon" "$ooms" <<'PY'
import sys
pred, peak, anon, ooms = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
mib = lambda b: b / 1048576
print(f"predicted worst case (postgres + redis + pgbouncer): {mib(pred):.0f} MiB")
print(f"measured peak, anonymous + shared (sampled 10/s):    {mib(anon):.0f} MiB  ratio {anon / pred:.2f}")
print(f"measured cgroup peak, page cache included:           {mib(peak):.0f} MiB  ratio {peak / pred:.2f}")
print(f"OOM kills: {ooms}")
print("HONEST" if anon <= pred else "MODEL WRONG: the measured peak exceeds the prediction")
PY
