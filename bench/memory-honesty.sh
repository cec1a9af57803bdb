#!/usr/bin/env bash
# Is the budget honest, and tight? Runs PostgreSQL, Redis and PgBouncer with
# a dbtune rendering inside memory cgroups, drives the load the worst case
# describes, records the peak of anonymous + shared memory (what cannot be
# reclaimed; with the huge pages in use, which no memory cgroup is charged)
# and OOM kills, and compares the peak with the budget's worst
# case for the services (never above it; the closer the better).
#
# The load, all at once for --seconds:
#   - shared_buffers filled (pg_prewarm of a table its size);
#   - every connection slot (pools through PgBouncer, the rest direct as
#     the superuser) running a query whose hash join and hash aggregate
#     each fill hash_mem, JIT-compiled where jit is on;
#   - the profile's manual maintenance sessions, each a CREATE INDEX whose
#     sort fills maintenance_work_mem, in a loop;
#   - Redis: small values past maxmemory, then large ones under new keys
#     (jemalloc's worst fragmentation), then every key rewritten during a
#     slow BGSAVE (the fork's whole copy).
# Not reached by this load (so the ratio is below 1 by them): autovacuum
# workers at autovacuum_work_mem, WAL senders, page tables (kernel memory,
# not sampled).
#
# Usage: bench/memory-honesty.sh [--profile NAME] [--ram SIZE] [--cpus N]
#            [--seconds S] [--per-service] [--json]
#   --per-service  each service in its own cgroup, limited to the MemoryMax
#                  render wrote for it (its worst case); else one cgroup for
#                  all, limited to the host's RAM
#   --json         one JSON object on stdout (for tests)
#   --slack PCT    raise every limit by PCT percent (to measure what the
#                  kernel charges beyond anonymous + shared memory)
# Env: DBTUNE (the dbtune binary; default: cargo build --release),
#      KEEP=1 (keep the work directory: logs, pgbench output),
#      PG_BIN (PostgreSQL's bin directory; default: the installed one).
# Needs root (cgroups, huge pages; servers run as the postgres user).
# Everything it starts is stopped at the end, also on failure: the servers
# themselves, never a wrapper (setpriv execs them); huge pages it reserved
# are given back.
set -euo pipefail
cd "$(dirname "$0")/.."

profile=low-memory ram="" cpus="" seconds=60 per_service=0 json=0 slack=0
while [ $# -gt 0 ]; do
    case "$1" in
        --profile) profile="$2"; shift 2 ;;
        --ram) ram="$2"; shift 2 ;;
        --cpus) cpus="$2"; shift 2 ;;
        --seconds) seconds="$2"; shift 2 ;;
        --per-service) per_service=1; shift ;;
        --json) json=1; shift ;;
        --slack) slack="$2"; shift 2 ;;
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
    echo $(( $2 + $2 / 100 * slack )) > "$cg/$limit_file"
    # A server that needs more is OOM-killed, not swapped.
    if [ -f "$cg/memory.swappiness" ]; then echo 0 > "$cg/memory.swappiness" 2>/dev/null || true; fi
    if [ -f "$cg/memory.swap.max" ]; then echo 0 > "$cg/memory.swap.max" 2>/dev/null || true; fi
    cgroups+=("$cg")
}

pids=()
hugepages_before=""
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
    # A cgroup can be removed once its last process has exited: up to 5 s.
    for cg in "${cgroups[@]}"; do
        for _ in $(seq 50); do rmdir "$cg" 2>/dev/null && break; sleep 0.1; done
    done
    if [ -n "$hugepages_before" ]; then echo "$hugepages_before" > /proc/sys/vm/nr_hugepages; fi
    if [ -n "${KEEP:-}" ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

host=(--profile "$profile" --pg-version "$major")
[ -n "$ram" ] && host+=(--ram "$ram")
[ -n "$cpus" ] && host+=(--cpus "$cpus")
"$DBTUNE" render "${host[@]}" --out "$work/conf" 2>"$work/render.txt"
ram_bytes=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['host']['ram'])" "$work/conf/dbtune-manifest.json" 2>/dev/null \
    || "$DBTUNE" check-budget --format json "$work/conf" | python3 -c "import json,sys; print(json.load(sys.stdin)['ram'])")

# The files the servers run: the rendered ones on this run's ports. Huge
# pages are reserved as the rendered sysctl file says, for the run; where
# the kernel cannot give them PostgreSQL runs without (and the prediction,
# made from the files run, counts its shared memory).
mkdir "$work/run"
cp "$work/conf/postgresql.conf" "$work/run/"
[ -f "$work/conf/99-dbtune.conf" ] && cp "$work/conf/99-dbtune.conf" "$work/run/"
# Bytes of huge pages faulted in (in use), host-wide.
huge_in_use() { awk '$1 == "HugePages_Total:" {t = $2} $1 == "HugePages_Free:" {f = $2} $1 == "Hugepagesize:" {z = $2 * 1024} END {printf "%.0f\n", (t - f) * z}' /proc/meminfo; }
huge=off
if grep -q '^huge_pages = on' "$work/run/postgresql.conf"; then
    want=$(awk -F' = ' '$1 == "vm.nr_hugepages" {print $2}' "$work/conf/99-dbtune.conf")
    hugepages_before=$(cat /proc/sys/vm/nr_hugepages)
    echo $((hugepages_before + want)) > /proc/sys/vm/nr_hugepages
    if [ "$(cat /proc/sys/vm/nr_hugepages)" -ge $((hugepages_before + want)) ]; then
        huge=on
    else
        echo "$hugepages_before" > /proc/sys/vm/nr_hugepages
        hugepages_before=""
        sed -i -e 's/^huge_pages = on/huge_pages = off/' "$work/run/postgresql.conf"
        sed -i -e '/^vm.nr_hugepages/d' "$work/run/99-dbtune.conf"
    fi
fi

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
pgport=$(port) rport=$(port) bport=$(port)
sed -i -e "s/^port = .*/port = $pgport/" "$work/run/postgresql.conf"
echo "unix_socket_directories = '$work'" >> "$work/run/postgresql.conf"
chown postgres "$work/run/postgresql.conf"
if [ -f "$work/conf/redis.conf" ]; then
    mkdir -p "$work/redis"
    sed -e "s/^port .*/port $rport/" -e "s#^dir .*#dir $work/redis#" "$work/conf/redis.conf" > "$work/run/redis.conf"
fi
if [ -f "$work/conf/pgbouncer.ini" ]; then
    # Clients log in without SCRAM here (loopback, a temp dir): hundreds of
    # SCRAM logins on a CPU-starved host take longer than the load runs.
    printf '"app" "secret"\n' > "$work/userlist.txt"
    sed -e "s/^listen_port = .*/listen_port = $bport/" -e "s#^auth_file = .*#auth_file = $work/userlist.txt#" -e "s/^auth_type = .*/auth_type = trust/" \
        -e "s/port=5432/port=$pgport/" "$work/conf/pgbouncer.ini" > "$work/run/pgbouncer.ini"
    echo "unix_socket_dir = $work" >> "$work/run/pgbouncer.ini"
    chown postgres "$work/run/pgbouncer.ini" "$work/userlist.txt"
fi

budget_json=$("$DBTUNE" check-budget --format json --ram "${ram_bytes}B" --pg-version "$major" "$work/run" || true)
# The budget's worst case for services; PostgreSQL's includes the huge
# pages reserved for it (a term of the os, since the kernel sets them
# aside whoever uses them), as the sampled peak includes those in use.
worst_of() {
    python3 -c "
import json, sys
d = json.loads(sys.argv[1]); svc = sys.argv[2].split(',')
print(sum(t['worst'] for t in d['terms'] if t['service'] in svc
          or ('postgres' in svc and t['service'] == 'os' and t['name'].startswith('huge pages'))))" "$budget_json" "$1"
}
services="postgres"
[ -f "$work/run/redis.conf" ] && services="$services,redis"
[ -f "$work/run/pgbouncer.ini" ] && services="$services,pgbouncer"
predicted=$(worst_of "$services")
# The autovacuum term is not driven by this load: a worker uses
# autovacuum_work_mem only on a table with ~35 M dead rows per 200 MiB
# (6 bytes each), which takes longer to make than the load runs. The
# ratio is also given against the prediction without it.
autovacuum=$(python3 -c "
import json, sys
print(sum(t['worst'] for t in json.loads(sys.argv[1])['terms'] if t['name'] == 'autovacuum'))" "$budget_json")
# Per service: the MemoryMax render wrote; where huge pages could not be
# had, PostgreSQL's worst case as run.
limit_of() { awk -F= '/^MemoryMax=/ {print $2}' "$work/conf/$1"; }
ceil_mib() { python3 -c "import sys; m = 1 << 20; print(-(-int(sys.argv[1]) // m) * m)" "$1"; }

cg_redis="" cg_bouncer=""
if [ "$per_service" = 1 ]; then
    pg_limit=$(limit_of postgresql.service.conf)
    if grep -q '^huge_pages = on' "$work/conf/postgresql.conf" && [ "$huge" = off ]; then
        pg_limit=$(ceil_mib "$(worst_of postgres)")
    fi
    make_cg postgres "$pg_limit"; cg_pg=$cg
    if [ -f "$work/run/redis.conf" ]; then make_cg redis "$(limit_of redis-server.service.conf)"; cg_redis=$cg; fi
    if [ -f "$work/run/pgbouncer.ini" ]; then make_cg pgbouncer "$(limit_of pgbouncer.service.conf)"; cg_bouncer=$cg; fi
else
    make_cg all "$ram_bytes"; cg_pg=$cg
    [ -f "$work/run/redis.conf" ] && cg_redis=$cg
    [ -f "$work/run/pgbouncer.ini" ] && cg_bouncer=$cg
fi

as_pg "$bin/initdb" -D "$work/data" --auth=trust -U postgres --no-sync >/dev/null
huge_before=0
[ "$huge" = on ] && huge_before=$(huge_in_use)

# start CGROUP CMD...: the command runs (execs) inside the cgroup.
start() {
    local cg="$1"; shift
    sh -c "echo \$\$ > '$cg/cgroup.procs'; exec \"\$@\"" sh "$@" &
    pids+=($!)
}
start "$cg_pg" setpriv --reuid=postgres --regid=postgres --init-groups -- \
    "$bin/postgres" -D "$work/data" -c "config_file=$work/run/postgresql.conf" >"$work/pg.log" 2>&1
for _ in $(seq 300); do "$client/pg_isready" -q -h "$work" -p "$pgport" && break; sleep 0.2; done
psql() { "$client/psql" -h "$work" -p "$pgport" -Xq -v ON_ERROR_STOP=1 "$@"; }
psql -U postgres -c "CREATE ROLE app LOGIN PASSWORD 'secret'" -c "CREATE DATABASE app OWNER app"
if [ -n "$cg_redis" ]; then
    start "$cg_redis" redis-server "$work/run/redis.conf" --bind 127.0.0.1 \
        --daemonize no --logfile "$work/redis.log" >/dev/null 2>&1
fi
if [ -n "$cg_bouncer" ]; then
    start "$cg_bouncer" setpriv --reuid=postgres --regid=postgres --init-groups -- pgbouncer "$work/run/pgbouncer.ini" >"$work/pgbouncer.log" 2>&1
fi

setting() { psql -U postgres -At -c "SELECT setting FROM pg_settings WHERE name = '$1'"; }
work_mem_kb=$(setting work_mem)
hmm=$(setting hash_mem_multiplier)
max_conn=$(setting max_connections)
sb_pages=$(setting shared_buffers)
jit=$(setting jit)
mwm_kb=$(setting maintenance_work_mem)
# Manual maintenance sessions the budget counts.
maint=$(python3 -c "
import json, sys
d = json.loads(sys.argv[1])
t = [t for t in d['terms'] if t['name'] == 'manual maintenance']
print(round(t[0]['worst'] / (int(sys.argv[2]) * 1024)) if t else 0)" "$budget_json" "$mwm_kb")

# shared_buffers filled: a table of its size (about 8 rows of 900 bytes a
# page), read into the buffers.
psql -U postgres -d app -c "CREATE EXTENSION pg_prewarm" \
    -c "CREATE TABLE fill AS SELECT g, repeat('x', 900) AS v FROM generate_series(1, $sb_pages * 8) g" \
    -c "SELECT pg_prewarm('fill')" >/dev/null
# A table whose index build sorts more than maintenance_work_mem.
rows_churn=$(python3 -c "print(max(2000000, int($mwm_kb * 1024 * 2 / 60)))")
psql -U postgres -d app -c "CREATE TABLE churn AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, $rows_churn) g" >/dev/null

# Rows so that the hash join's table and the hash aggregate's table each
# fill hash_mem (work_mem x hash_mem_multiplier): about 100 bytes a row.
rows=$(python3 -c "print(int($work_mem_kb * 1024 * $hmm / 100))")
jit_sql=""
[ "$jit" = on ] && jit_sql="SET jit_above_cost = 0;"
cat > "$work/hostile.sql" <<SQL
SET enable_sort = off; SET max_parallel_workers_per_gather = 0; $jit_sql
SELECT count(*) FROM (
  SELECT a.m, count(*) FROM (SELECT md5(g::text) AS m FROM generate_series(1, $rows) g) a
  JOIN (SELECT md5(g::text) AS m FROM generate_series(1, $rows) g) b USING (m)
  GROUP BY a.m) s;
SQL
chmod 644 "$work/hostile.sql"

# Peak anonymous + shared memory per cgroup, sampled 20 times a second
# (page cache is charged too, but the kernel reclaims it under pressure).
# Huge pages are not charged to the memory cgroup: PostgreSQL's cgroup
# adds the huge pages in use beyond those in use before it started.
sample() {
    local cg="$1" out="$2" max=0 cur huge_now
    while :; do
        cur=$(awk '$1 == "total_rss" || $1 == "total_shmem" || $1 == "anon" || $1 == "shmem" {s += $2} END {printf "%.0f\n", s}' "$cg/memory.stat" 2>/dev/null || echo 0)
        if [ "$cg" = "$cg_pg" ] && [ "$huge" = on ]; then
            huge_now=$(huge_in_use)
            cur=$((cur + huge_now - huge_before))
        fi
        [ "$cur" -gt "$max" ] && max=$cur && echo "$max" > "$out"
        sleep 0.05
    done
}
samplers=()
for cg in "${cgroups[@]}"; do
    sample "$cg" "$work/peak-$(basename "$cg")" &
    samplers+=($!)
    pids+=($!)
done

# Connection slots: the pools through PgBouncer (twice the pool's clients,
# so its reserve opens too), the rest direct as the superuser, less the
# maintenance sessions and one for this script.
servers=0
if [ -n "$cg_bouncer" ]; then
    servers=$(python3 -c "
import re, sys
t = open(sys.argv[1]).read()
m = re.search(r'pool_size=(\d+) reserve_pool=(\d+)', t)
print(int(m.group(1)) + int(m.group(2)) if m else 0)" "$work/run/pgbouncer.ini")
fi
direct=$((max_conn - servers - maint - 1))
say "profile $profile ($(head -1 "$work/render.txt" | sed 's/.*: worst/worst/')): shared_buffers filled, $direct direct + $servers pooled connections x hash join + hash aggregate of $rows rows (work_mem ${work_mem_kb} kB x $hmm, jit $jit), $maint CREATE INDEX session(s) at maintenance_work_mem ${mwm_kb} kB, for ${seconds} s"
"$client/pgbench" -h "$work" -p "$pgport" -U postgres -n -c "$direct" -j 2 -T "$seconds" \
    -f "$work/hostile.sql" app > "$work/pgbench.txt" 2>&1 &
bench=$!
bench_pool=""
if [ "$servers" -gt 0 ]; then
    PGPASSWORD=secret "$client/pgbench" -h 127.0.0.1 -p "$bport" -U app -n -c $((servers * 2)) -j 2 -T "$seconds" \
        -f "$work/hostile.sql" app > "$work/pgbench-pool.txt" 2>&1 &
    bench_pool=$!
fi
maint_pids=()
for i in $(seq "$maint"); do
    (
        end=$((SECONDS + seconds))
        while [ $SECONDS -lt $end ]; do
            psql -U postgres -d app -c "SET max_parallel_maintenance_workers = 0" \
                -c "CREATE INDEX churn_v_$i ON churn (v)" -c "DROP INDEX churn_v_$i" >/dev/null 2>&1 || true
        done
    ) &
    maint_pids+=($!)
done
if [ -n "$cg_redis" ]; then
    python3 - "$rport" <<'PY' || true
# jemalloc's worst: small values past maxmemory, then large ones under new
# keys; then every key rewritten while a slow BGSAVE's child walks them.
import socket, subprocess, sys, time
port = sys.argv[1]
def cli(*a):
    return subprocess.run(["redis-cli", "-p", port, *a], capture_output=True, text=True).stdout.strip()
mm = int(cli("CONFIG", "GET", "maxmemory").split()[-1])
def pipe(cmds):
    subprocess.run(["redis-cli", "-p", port, "--pipe"], input="".join(cmds).encode(), capture_output=True)
def fill(total, prefix, sizes):
    out, i, n = [], 0, 0
    while n < total:
        v = "x" * sizes[i % len(sizes)]; k = f"{prefix}:{i}"
        out.append(f"*3\r\n$3\r\nSET\r\n${len(k)}\r\n{k}\r\n${len(v)}\r\n{v}\r\n")
        n += len(v); i += 1
    pipe(out)
fill(2 * mm, "s", [60, 90, 120])
fill(2 * mm, "l", [3000, 5000, 9000])
cli("CONFIG", "SET", "rdb-key-save-delay", "200")
cli("BGSAVE")
time.sleep(0.2)
keys = cli("--scan").split()
pipe([f"*3\r\n$3\r\nSET\r\n${len(k)}\r\n{k}\r\n${n}\r\n{'y' * n}\r\n"
      for k in keys for n in [5000 if k.startswith("l:") else 90]])
time.sleep(1)
cli("CONFIG", "SET", "rdb-key-save-delay", "0")
PY
fi
wait "$bench" || true
[ -n "$bench_pool" ] && { wait "$bench_pool" || true; }
for p in "${maint_pids[@]}"; do wait "$p" || true; done
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
    # What the kernel charged at most: everything (page cache included),
    # and kernel memory alone (v1; v2 does not keep a maximum of it).
    usage_max=$(cat "$cg/memory.max_usage_in_bytes" 2>/dev/null || cat "$cg/memory.peak" 2>/dev/null || echo 0)
    kmem_max=$(cat "$cg/memory.kmem.max_usage_in_bytes" 2>/dev/null || echo 0)
    results+=("$name:$(cat "$work/peak-$(basename "$cg")" 2>/dev/null || echo 0):$(worst_of "$svc"):$(cat "$cg/$limit_file"):$(ooms "$cg"):$usage_max:$kmem_max")
done
# pgbench's result, direct and through PgBouncer (or why it stopped).
summary() {
    [ -f "$1" ] || return 0
    grep -qE '^tps' "$1" || { echo "$2: $(grep -m1 -iE 'error|fatal|abort' "$1" || tail -1 "$1")"; return 0; }
    echo "$2: $(grep -E '^tps' "$1" | head -1 | sed 's/ (without initial connection time)//'), $(grep -E 'number of failed' "$1" | sed 's/number of //')"
}
tps=$(summary "$work/pgbench.txt" direct)
failed=$(summary "$work/pgbench-pool.txt" "through PgBouncer")
python3 - "$json" "$profile" "$ram_bytes" "$predicted" "$huge" "$tps; $failed" "$autovacuum" "${results[@]}" <<'PY'
import json, sys
as_json, profile, ram, predicted, huge, bench = sys.argv[1] == "1", sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6]
autovacuum = int(sys.argv[7])
groups = []
for r in sys.argv[8:]:
    name, peak, worst, limit, ooms, usage_max, kmem_max = r.split(":")
    groups.append({"cgroup": name, "peak": int(peak), "predicted": int(worst),
                   "limit": int(limit), "oom_kills": int(ooms),
                   "usage_max": int(usage_max), "kernel_max": int(kmem_max)})
peak = sum(g["peak"] for g in groups)
doc = {"profile": profile, "ram": ram, "huge_pages": huge, "predicted": predicted, "peak": peak,
       "ratio": round(peak / predicted, 3) if predicted else None,
       "autovacuum": autovacuum,
       "ratio_without_autovacuum": round(peak / (predicted - autovacuum), 3) if predicted > autovacuum else None,
       "oom_kills": sum(g["oom_kills"] for g in groups), "cgroups": groups,
       "pgbench": bench.strip(), "honest": all(g["peak"] <= g["predicted"] for g in groups)}
if as_json:
    print(json.dumps(doc))
else:
    mib = lambda b: b / 1048576
    for g in groups:
        print(f"{g['cgroup']:<10} limit {mib(g['limit']):7.0f} MiB  predicted {mib(g['predicted']):7.0f} MiB  "
              f"peak (anonymous + shared) {mib(g['peak']):7.0f} MiB  ratio {g['peak'] / g['predicted']:.2f}  "
              f"OOM kills {g['oom_kills']}  (charged at most {mib(g['usage_max']):.0f} MiB, kernel {mib(g['kernel_max']):.0f} MiB)")
    print(f"total      predicted {mib(predicted):.0f} MiB, peak {mib(peak):.0f} MiB, ratio {doc['ratio']} "
          f"({doc['ratio_without_autovacuum']} without the autovacuum term's {mib(autovacuum):.0f} MiB, not driven by this load)")
    print(f"pgbench: {doc['pgbench']}")
    print("HONEST" if doc["honest"] else "MODEL WRONG: a measured peak exceeds its prediction")
PY
