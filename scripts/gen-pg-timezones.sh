#!/usr/bin/env bash
# Regenerates data/pg-timezones.tsv: the time zone names each PostgreSQL
# major accepts for timezone and log_timezone, asked of the servers
# themselves. For each bin dir (default: every major scripts/fetch-postgres.sh
# cached, whose builds ship their own tz database) initdb a scratch cluster
# in a temp dir and read pg_timezone_names in single-user mode (no server, no
# port); a zone file the view leaves out is asked of the server with
# `postgres -C timezone -c timezone=NAME`. SYSTEM_BIN (default: Debian's
# newest /usr/lib/postgresql/*/bin) is a build configured
# --with-system-tzdata: the names only it accepts are recorded as `system`,
# names that come from the host's own tz database.
# Usage: scripts/gen-pg-timezones.sh [BIN_DIR...]
# Run as root (it uses the postgres user) or as a user initdb accepts.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -eq 0 ]; then
    mapfile -t dirs < <(bash scripts/fetch-postgres.sh | awk '{print $1 "/bin"}')
else
    dirs=("$@")
fi
system_bin="${SYSTEM_BIN:-$(find /usr/lib/postgresql -maxdepth 2 -name bin 2>/dev/null | sort -V | tail -n 1)}"
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"
[ "$(id -u)" = 0 ] && chown postgres "$work"

# names BIN TZDIR OUT: the names BIN accepts, one a line, sorted.
names() {
    local bin="$1" tzdir="$2" out="$3" data
    data="$(mktemp -d -p "$work")"
    chmod 755 "$data"
    [ "$(id -u)" = 0 ] && chown postgres "$data"
    as_pg "$bin/initdb" -D "$data/data" --no-sync >/dev/null
    echo "COPY (SELECT name FROM pg_timezone_names) TO '$data/view.txt'" |
        as_pg "$bin/postgres" --single -D "$data/data" postgres >/dev/null 2>&1
    {
        cat "$data/view.txt"
        # Zone files the view leaves out (it skips zones whose
        # abbreviation is -00): each asked of the server.
        (cd "$tzdir" && find . -type f | sed 's|^\./||') | sort | comm -23 - <(sort "$data/view.txt") |
            while IFS= read -r zone; do
                if as_pg "$bin/postgres" -D "$data/data" -C timezone -c "timezone=$zone" >/dev/null 2>&1; then
                    echo "$zone"
                fi
            done
    } | sort -u > "$out"
}

# tzdir BIN: where the build reads zone files from.
tzdir() {
    local bin="$1" configured
    configured="$("$bin/pg_config" --configure 2>/dev/null | grep -o "with-system-tzdata=[^']*" | cut -d= -f2 || true)"
    if [ -n "$configured" ]; then
        echo "$configured"
    elif [ -d "$bin/../share/postgresql/timezone" ]; then
        echo "$bin/../share/postgresql/timezone"
    else
        echo "$bin/../share/timezone"
    fi
}

releases=()
for bin in "${dirs[@]}"; do
    version="$("$bin/postgres" --version | awk '{print $3}')"
    major="${version%%.*}"
    names "$bin" "$(tzdir "$bin")" "$work/$major.txt"
    releases+=("$version")
done
system_note="none"
if [ -n "$system_bin" ]; then
    names "$system_bin" "$(tzdir "$system_bin")" "$work/system.txt"
    system_note="$("$system_bin/postgres" --version | awk '{print $3}') at $system_bin, $(tzdir "$system_bin")"
fi

out=data/pg-timezones.tsv
{
    echo "# PostgreSQL time zone names from pg_timezone_names of PostgreSQL ${releases[*]} (their own tz database) and of ${system_note} (the host's, --with-system-tzdata): the second set's own names are marked system; regenerate with scripts/gen-pg-timezones.sh"
    echo "# name	majors that accept it	database (bundled: shipped with PostgreSQL; system: only builds that read the host's)"
    WORK="$work" python3 - <<'PY'
import glob, os
work = os.environ["WORK"]
majors = {}
for f in sorted(glob.glob(f"{work}/[0-9]*.txt")):
    major = int(os.path.basename(f)[:-4])
    for name in open(f).read().split("\n"):
        if name:
            majors.setdefault(name, []).append(major)
for name in sorted(majors):
    print(f"{name}\t{','.join(str(m) for m in sorted(majors[name]))}\tbundled")
system = f"{work}/system.txt"
if os.path.exists(system):
    for name in sorted(set(open(system).read().split("\n")) - set(majors) - {""}):
        print(f"{name}\t\tsystem")
PY
} > "$out"
echo "wrote $out ($(grep -c 'bundled$' "$out") bundled names, $(grep -c 'system$' "$out") system names)"
