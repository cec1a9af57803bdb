#!/usr/bin/env bash
# Each profile at its own host size (issue #24): defaults vs PGTune (the
# type its users would pick, from PGTune's current source) vs dbtune's
# rendering for that host, each cluster inside a memory cgroup the size of
# the host (`bench --ram`, root and a cgroup memory controller needed).
#
# Usage: sudo bench/host-size.sh [OUT.md]   (default bench-host-size.md)
# SMOKE=1 runs the same commands with tiny data, to check the machinery.
# RUNS, WRITE_SECONDS, LOW_SCALE override the sizes below; CONFIRM the
# rounds bench adds, at most, to a workload where two configs' ranges are
# apart after RUNS (bench's --confirm, 2: a claim rests on RUNS + 2 runs);
# LOW_DISK_MBPS and LOW_DISK_IOPS the staging host's disk (LOW_DISK=none:
# this machine's);
# REDIS_WRITES the keys a second its Redis's clients write (1000);
# HOLD=none leaves out --hold-reserves (see below).
# LOW_RAM, BULK_RAM and POWER_RAM run the profiles as other host sizes
# (4GiB, 6GiB, 8GiB below); ROWS, MID_SCALE, CLIENTS and POOLED_CLIENTS
# change bulk-ingest's rows and powerhouse's data and clients: the same
# comparison at sizes this script does not use by default.
# Needs pgbouncer and redis-server on PATH (the profiles' own workloads).
#
# Sizes, for a 2-core, 24 GiB machine and about 90 minutes in all with
# the confirming rounds (BENCHMARKS.md section 5); the trade-offs:
# - low-memory at its own host, 4 GiB and 2 CPUs: pgbench's data sized by
#   bench at 1.5x the host's RAM (`--data larger`: scale 384, about 6 GB,
#   as the staging seed's 5-10 GB database; LOW_SCALE overrides) with
#   TPC-B reads and writes, the profile's Redis (143 MiB maxmemory at
#   4 GiB) filled and kept writing 1000 keys of 1 KiB a second in the same
#   cgroup (`--redis`, `--redis-writes`: the seed's 10-50 users). The write
#   run is sized by bench (`--write-auto`): long enough for the defaults
#   to write their 1 GB max_wal_size 3 times at the WAL rate they show in
#   a short warm-up, at most WRITE_SECONDS (600); the report says the
#   length chosen and why. Its disk is a cloud volume's, not this
#   machine's (which takes 1 GB/s of fsync'd writes): the staging seed's
#   "100GB SSD" on a VM, modelled as AWS gp3's baseline, 3000 IOPS and
#   125 MiB/s (`--disk-iops`, `--disk-mbps`: a throttle in each cluster's
#   cgroup, reads and writes each). A fourth config runs beside the
#   three (`--ceiling`): dbtune's file with fsync, synchronous_commit and
#   full_page_writes off, the bound on what settings of the write path
#   could gain with its memory sizes (the 1.3x aim of #24 is measured
#   against it).
# - bulk-ingest is written for 32 GiB and powerhouse for 64 GiB; three
#   clusters of those sizes do not fit in 24 GiB, so both run smaller, with
#   2 CPUs: the same policy rendered at a smaller size. bulk-ingest as a
#   6 GiB host (3 x 6 GiB, the rest for the bench process, whose COPY data
#   it holds in memory): 5 M rows by COPY (floor, COPY + CREATE INDEX,
#   and its own: 10 streams through its PgBouncer into a table with a
#   primary key, then CREATE INDEX: the seed's 40 uploaders on 8 CPUs
#   scaled to 2; and the same streams into a table whose second index, on
#   a random key, is there while it loads: uploads into a table in use),
#   and the analytic hash aggregate. powerhouse as an
#   8 GiB host, the smallest it fits (its fixed reserves take 5 GiB; the
#   three limits add up to the machine's 24 GiB, but scale 100, 1.6 GB,
#   plus shared_buffers keeps each cluster near 3 GiB): 48 pgbench clients
#   straight to PostgreSQL (its max_connections there is about 60), data
#   above the default shared_buffers and inside the RAM; and its own: 120
#   pgbench clients through its PgBouncer (transaction pooling, the pool
#   size bench prints), more than any config's max_connections but
#   PGTune's.
# Every host holds its profile's [[reserve]]s (`--hold-reserves`): the
# app's memory (low-memory's API and Celery workers, 1.75 GiB; bulk-ingest's
# upload API, 2 GiB; powerhouse's monitoring and backups, 3 GiB) resident
# in each cluster's cgroup, so no config gets the app's memory as page
# cache. The OS reserve is not held.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-bench-host-size.md}"
runs="${RUNS:-3}"
confirm="${CONFIRM:-2}"
write_seconds="${WRITE_SECONDS:-600}"
low_scale="${LOW_SCALE:-}"
redis_writes="${REDIS_WRITES:-1000}"
low_disk=(--disk-mbps "${LOW_DISK_MBPS:-125}" --disk-iops "${LOW_DISK_IOPS:-3000}")
if [ "${LOW_DISK:-}" = none ]; then
    low_disk=()
fi
hold=(--hold-reserves)
if [ "${HOLD:-}" = none ]; then
    hold=()
fi
low_ram="${LOW_RAM:-4GiB}" bulk_ram="${BULK_RAM:-6GiB}" power_ram="${POWER_RAM:-8GiB}"
rows="${ROWS:-5000000}" mid_scale="${MID_SCALE:-100}" clients="${CLIENTS:-48}" pooled_clients="${POOLED_CLIENTS:-120}"
streams=10 an_scale=20 seconds=20
if [ -n "${SMOKE:-}" ]; then
    runs=1 write_seconds=3 low_scale=2 rows=20000 streams=2 mid_scale=2 an_scale=5 seconds=2 clients=4 pooled_clients=60
fi
cargo build --release --quiet
bin=./target/release/dbtune

{
    echo "# dbtune bench at each profile's host size"
    echo
    echo "$(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo), $(uname -r)"
} > "$out"

# section TITLE ARGS...: runs `dbtune bench ARGS`, appends the command and
# its report to $out, and prints the command line.
section() {
    local title="$1"
    shift
    echo "+ dbtune bench $*"
    local start=$SECONDS
    local report
    report=$("$bin" bench "$@")
    {
        echo
        echo "## $title"
        echo
        echo '```sh'
        echo "dbtune bench $*"
        echo '```'
        echo
        echo '```'
        echo "$report"
        echo '```'
        echo
        echo "($((SECONDS - start)) s)"
    } >> "$out"
}

section "low-memory at $low_ram, 2 CPUs, a cloud volume's disk: OLTP writes, data larger than RAM" \
    --profile low-memory --ram "$low_ram" --cpus 2 "${hold[@]}" ${low_scale:+--scale "$low_scale"} "${low_disk[@]}" \
    --only write --redis --redis-writes "$redis_writes" --clients 8 --write-auto --write-seconds "$write_seconds" --ceiling --runs "$runs" --confirm "$confirm"

section "bulk-ingest at $bulk_ram, 2 CPUs: COPY, COPY streams through PgBouncer (then CREATE INDEX; into an indexed table), analytic" \
    --profile bulk-ingest --ram "$bulk_ram" --cpus 2 "${hold[@]}" --initial-load \
    --only floor,copy-index,pooled-copy,indexed-copy,analytic \
    --rows "$rows" --streams "$streams" --scale "$an_scale" --runs "$runs" --confirm "$confirm"

section "powerhouse at $power_ram, 2 CPUs: many clients, and more than max_connections through PgBouncer, data inside RAM" \
    --profile powerhouse --ram "$power_ram" --cpus 2 "${hold[@]}" --scale "$mid_scale" \
    --only tpcb,select-only,pooled-tpcb --clients "$clients" --pooled-clients "$pooled_clients" \
    --seconds "$seconds" --runs "$runs" --confirm "$confirm"

echo "tables written to $out"
