#!/usr/bin/env bash
# Builds the newest Redis and PgBouncer Debian ships (trixie, Debian 13) from
# their upstream tarballs in the Debian archive, into the cache that
# scripts/fetch-postgres.sh uses, and prints where each is:
#   <cache>/redis/<major.minor>/bin/redis-server
#   <cache>/pgbouncer/<major.minor>/bin/pgbouncer
# A version already built by this same recipe is not built again: each build
# records the hash of this script (its RECIPE file), and a build made by an
# older recipe is made again. Needs gcc, make, pkg-config, libevent-dev and
# libssl-dev (.ci/run installs them).
#
# The Debian mirror is the one this machine's apt uses for its own release
# (DEBIAN_MIRROR overrides it), so a machine behind its own mirror or proxy
# fetches from there.
set -euo pipefail

# shellcheck source=scripts/cache-dir.sh
. "$(dirname "$0")/cache-dir.sh"
recipe="$(recipe_of "$0" "$(dirname "$0")/cache-dir.sh")"

# apt_mirror: the archive URI that apt's sources give for this machine's
# release (the suite named exactly as the codename, so not -security or
# -updates, nor a third-party repository), from one-line sources.list
# entries or deb822 .sources stanzas.
apt_mirror() {
    local codename
    codename="$(. /etc/os-release && echo "${VERSION_CODENAME:-}")"
    [ -n "$codename" ] || return 1
    {
        # One-line: deb [options] URI suite component...
        cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
            sed -E 's/#.*//; s/\[[^]]*\]//' |
            awk -v c="$codename" '$1 == "deb" && $3 == c { print $2 }'
        # deb822: a stanza's URIs and Suites, stanzas separated by blank
        # lines (a comment line is not one: it is dropped, not blanked).
        for f in /etc/apt/sources.list.d/*.sources; do
            [ -e "$f" ] || continue
            sed -E '/^[[:space:]]*#/d' "$f" | awk -v c="$codename" '
                function flush() {
                    if (deb && hit) { n = split(uris, u, " "); for (i = 1; i <= n; i++) print u[i] }
                    deb = 0; hit = 0; uris = ""
                }
                /^[[:space:]]*$/ { flush(); next }
                tolower($1) == "types:" { for (i = 2; i <= NF; i++) if ($i == "deb") deb = 1 }
                tolower($1) == "uris:" { $1 = ""; uris = $0 }
                tolower($1) == "suites:" { for (i = 2; i <= NF; i++) if ($i == c) hit = 1 }
                END { flush() }'
        done
    } | grep -E '^(https?|ftp)://' | head -1 | sed -E 's#/+$##'
}
mirror="${DEBIAN_MIRROR:-$(apt_mirror || true)}"
if [ -z "$mirror" ]; then
    echo "error: no Debian archive found in /etc/apt/sources.list or /etc/apt/sources.list.d/" >&2
    echo "hint: set DEBIAN_MIRROR to a Debian mirror URL (e.g. http://deb.debian.org/debian)" >&2
    exit 1
fi
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
# version and then the recipe last (what marks DEST complete); then the
# build directory goes.
install_build() {
    local dest="$1" ver="$2" src="$3" source_file="$4"
    shift 4
    rm -rf "$dest"
    mkdir -p "$dest/bin"
    cp "$@" "$dest/bin/"
    cp "$source_file" "$dest/"
    echo "$ver" > "$dest/VERSION"
    echo "$recipe" > "$dest/RECIPE"
    chmod -R a+rX "$dest"
    rm -rf "$(dirname "$src")"
}

# built DEST VERSION: DEST holds VERSION built by this recipe.
built() {
    [ "$(cat "$1/VERSION" 2>/dev/null)" = "$2" ] && [ "$(cat "$1/RECIPE" 2>/dev/null)" = "$recipe" ]
}

# Redis
path="$(orig_of redis)"
ver="$(basename "$path" | sed -E 's/redis_([0-9.]+)\.orig.*/\1/')"
mm="$(echo "$ver" | cut -d. -f1,2)"
dest="$cache/redis/$mm"
if ! built "$dest" "$ver"; then
    src="$(unpack "$path")"
    log="$(dirname "$src")/build.log"
    # The default target, not `redis-server redis-cli`: Redis's Makefile
    # builds its bundled dependencies (jemalloc, hiredis, lua...) in the
    # prerequisite step of `all`, and naming the programs alone on a fresh
    # tree skips it (zmalloc.h: jemalloc/jemalloc.h not found). The default
    # target is what upstream and Debian build, with the allocator the
    # released server uses; it costs the few extra tools it links.
    make -C "$src" -j"$(nproc)" BUILD_TLS=no USE_SYSTEMD=no >"$log" 2>&1 ||
        { tail -30 "$log" >&2; exit 1; }
    install_build "$dest" "$ver" "$src" "$src/src/config.c" "$src/src/redis-server" "$src/src/redis-cli"
fi
# The sample config, for tests of what dbtune says about upstream's own file
# (install_build made DEST anew when it built, so this follows the build).
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
if ! built "$dest" "$ver"; then
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
