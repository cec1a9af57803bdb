#!/usr/bin/env bash
# Regenerates data/redis-<ver>.txt (CONFIG GET *) and data/pgbouncer-<ver>.txt
# (SHOW CONFIG) from the real servers: each started on loopback in a temp dir
# and stopped at the end. Run as root (PgBouncer runs as the postgres user).
set -euo pipefail
cd "$(dirname "$0")/.."
tmp="$(mktemp -d)"
chmod 755 "$tmp"
cleanup() {
    redis-cli -p 6397 shutdown nosave >/dev/null 2>&1 || true
    [ -f "$tmp/pgb.pid" ] && kill "$(cat "$tmp/pgb.pid")" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT

rver="$(redis-server --version | sed -E 's/.*v=([0-9]+\.[0-9]+).*/\1/')"
redis-server --port 6397 --bind 127.0.0.1 --save '' --dir "$tmp" --daemonize yes \
    --pidfile "$tmp/redis.pid" --logfile "$tmp/redis.log"
for _ in $(seq 50); do redis-cli -p 6397 ping >/dev/null 2>&1 && break; sleep 0.1; done
{
    echo "# Redis $rver configuration parameters (CONFIG GET *); regenerate with scripts/gen-key-lists.sh"
    redis-cli -p 6397 config get '*' | awk 'NR % 2 == 1' | sort
} > "data/redis-$rver.txt"

bver="$(pgbouncer --version | awk 'NR==1 {print $2}' | cut -d. -f1,2)"
cat > "$tmp/pgb.ini" <<INI
[databases]
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = 6496
unix_socket_dir = $tmp
auth_type = any
admin_users = postgres
pidfile = $tmp/pgb.pid
logfile = $tmp/pgb.log
INI
chown postgres "$tmp/pgb.ini" "$tmp"
runuser -u postgres -- pgbouncer -d "$tmp/pgb.ini"
for _ in $(seq 50); do [ -S "$tmp/.s.PGSQL.6496" ] && break; sleep 0.1; done
{
    echo "# PgBouncer $bver [pgbouncer] settings (SHOW CONFIG); regenerate with scripts/gen-key-lists.sh"
    runuser -u postgres -- psql -h "$tmp" -p 6496 -U postgres pgbouncer -XAtq -F'|' -c 'SHOW CONFIG' | cut -d'|' -f1 | sort
} > "data/pgbouncer-$bver.txt"
echo "wrote data/redis-$rver.txt ($(grep -vc '^#' "data/redis-$rver.txt")) and data/pgbouncer-$bver.txt ($(grep -vc '^#' "data/pgbouncer-$bver.txt"))"
