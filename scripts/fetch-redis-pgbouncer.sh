#!/usr/bin/env bash
# Builds the newest Redis and PgBouncer Debian ships (trixie, Debian 13) from
# their upstream tarballs in the Debian archive, into the cache that
# scripts/fetch-postgres.sh uses, and prints where each is:
#   <cache>/redis/<major.minor>/bin/redis-server
#   <cache>/pgbouncer/<major.minor>/bin/pgbouncer
# A version already built is not built again. Needs gcc, make, pkg-config,
# libevent-dev and libssl-dev (.ci/run installs them).
set -euo pipefail

# shellcheck source=scripts/cache-dir.sh
. "$(dirname "$0")/cache-dir.sh"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
mkdir -p "$cache/downloads" "$cache/redis" "$cache/pgbouncer"
chmod 755 "$cache" "$cache/redis" "$cache/pgbouncer"

# Which versions trixie has now: its source index names each orig tarball.
sources="$cache/downloads/trixie-Sources"
if [ ! -s "$sources" ] || [ -n "$(find "$sources" -mmin +1440)" ]; then
    curl -fsS "$mirror/dists/trixie/main/source/Sources.xz" | xz -d > "$sources.tmp"
    mv "$sources.tmp" "$sources"
fi
orig_of() {
    awk -v pkg="$1" '
        $0 == "Package: " pkg { p = 1 }
        p && /^Directory:/ { dir = $2 }
        p && / [^ ]+\.orig\.tar\.[a-z]+$/ && !done { file = $3; done = 1 }
        p && /^$/ { if (file) { print dir "/" file; exit } p = 0 }
    ' "$sources"
}

fetch() {
    local path="$1" out
    out="$cache/downloads/$(basename "$1")"
    if [ ! -s "$out" ]; then
        curl -fsS -o "$out.tmp" "$mirror/$path"
        mv "$out.tmp" "$out"
    fi
    echo "$out"
}

# A Debian source package's upstream tarball, unpacked into a new temp dir:
# prints the source directory (its parent is removed by install_build).
unpack() {
    local work
    work="$(mktemp -d)"
    tar -xzf "$(fetch "$1")" -C "$work"
    find "$work" -maxdepth 1 -mindepth 1 -type d | head -1
}

# install_build DEST VERSION SRC SOURCE_FILE PROGRAM...: the programs into
# DEST/bin, the source file dbtune reads its key list from into DEST, the
# version last (what marks DEST complete); then the build directory goes.
install_build() {
    local dest="$1" ver="$2" src="$3" source_file="$4"
    shift 4
    rm -rf "$dest"
    mkdir -p "$dest/bin"
    cp "$@" "$dest/bin/"
    cp "$source_file" "$dest/"
    echo "$ver" > "$dest/VERSION"
    chmod -R a+rX "$dest"
    rm -rf "$(dirname "$src")"
}

# Redis
path="$(orig_of redis)"
ver="$(basename "$path" | sed -E 's/redis_([0-9.]+)\.orig.*/\1/')"
mm="$(echo "$ver" | cut -d. -f1,2)"
dest="$cache/redis/$mm"
if [ "$(cat "$dest/VERSION" 2>/dev/null)" != "$ver" ]; then
    src="$(unpack "$path")"
    log="$(dirname "$src")/build.log"
    make -C "$src" -j"$(nproc)" BUILD_TLS=no USE_SYSTEMD=no redis-server redis-cli >"$log" 2>&1 ||
        make -C "$src/src" -j"$(nproc)" BUILD_TLS=no USE_SYSTEMD=no redis-server redis-cli >>"$log" 2>&1 ||
        { tail -30 "$log" >&2; exit 1; }
    install_build "$dest" "$ver" "$src" "$src/src/config.c" "$src/src/redis-server" "$src/src/redis-cli"
fi
# The sample config, for tests of what dbtune says about upstream's own file.
if [ ! -s "$dest/redis.conf" ]; then
    tar -xzf "$(fetch "$path")" -O --wildcards '*/redis.conf' > "$dest/redis.conf"
    chmod a+r "$dest/redis.conf"
fi
echo "$dest (Redis $(cat "$dest/VERSION"))"

# PgBouncer
path="$(orig_of pgbouncer)"
ver="$(basename "$path" | sed -E 's/pgbouncer_([0-9.]+)\.orig.*/\1/')"
mm="$(echo "$ver" | cut -d. -f1,2)"
dest="$cache/pgbouncer/$mm"
if [ "$(cat "$dest/VERSION" 2>/dev/null)" != "$ver" ]; then
    src="$(unpack "$path")"
    work="$(dirname "$src")"
    (cd "$src" && ./configure --prefix="$work/inst" --without-cares --with-openssl >"$work/build.log" 2>&1 &&
        make -j"$(nproc)" >>"$work/build.log" 2>&1 && make install >>"$work/build.log" 2>&1) ||
        { tail -30 "$work/build.log" >&2; exit 1; }
    install_build "$dest" "$ver" "$src" "$src/src/main.c" "$work/inst/bin/pgbouncer"
fi
if [ ! -s "$dest/pgbouncer.ini" ]; then
    tar -xzf "$(fetch "$path")" -O --wildcards '*/etc/pgbouncer.ini' > "$dest/pgbouncer.ini"
    chmod a+r "$dest/pgbouncer.ini"
fi
echo "$dest (PgBouncer $(cat "$dest/VERSION"))"
