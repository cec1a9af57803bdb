#!/usr/bin/env bash
# Proves the fetch scripts work on a fresh machine: runs both into a new
# empty cache (nothing downloaded or built before), then asks every server
# they produced for its version and checks it is the one the script says it
# installed. A cache that already holds a build cannot hide a broken recipe
# here. Run it by hand after changing scripts/ or .ci/run:
#   bash scripts/check-fetch.sh [--adopt] [--if-changed]
# With --adopt, the servers it verified replace those of the usual cache
# (scripts/cache-dir.sh) that another recipe or release made, so CI builds
# each server once per run, not once here and again there, and the hash of
# the recipes it proved is written to the usual cache's PROVEN file.
# With --if-changed (.ci/run), it proves nothing when PROVEN holds the hash
# of the recipes as they are now: those exact scripts already built every
# server from nothing on this machine, and the versions they fetch are
# pinned. Any edit to a recipe changes the hash, and the next run proves it.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
adopt=no
if_changed=no
for arg in "$@"; do
    case "$arg" in
        --adopt) adopt=yes ;;
        --if-changed) if_changed=yes ;;
        *) echo "usage: bash scripts/check-fetch.sh [--adopt] [--if-changed]" >&2; exit 2 ;;
    esac
done
# shellcheck source=scripts/cache-dir.sh
. "$here/cache-dir.sh"
shared="${cache:?}"
# Every file that decides what the fetch scripts produce, this check included.
recipes="$(recipe_of "$here/cache-dir.sh" "$here/fetch-postgres.sh" \
    "$here/fetch-redis-pgbouncer.sh" "$here/check-fetch.sh")"
if [ "$if_changed" = yes ] && [ -f "$shared/PROVEN" ] &&
    [ "$(head -n1 "$shared/PROVEN")" = "$recipes" ]; then
    echo "recipes $recipes: proven on an empty cache $(sed -n 2p "$shared/PROVEN"); unchanged since, not proven again"
    exit 0
fi

DBTUNE_CACHE="$(mktemp -d)"
export DBTUNE_CACHE
trap 'rm -rf "$DBTUNE_CACHE"' EXIT
chmod 755 "$DBTUNE_CACHE"
echo "fresh cache: $DBTUNE_CACHE"

start=$SECONDS
bash "$here/fetch-postgres.sh"
pg_s=$((SECONDS - start))
start=$SECONDS
bash "$here/fetch-redis-pgbouncer.sh"
rp_s=$((SECONDS - start))

fail=0
# ask WHAT EXPECTED COMMAND...: the server's own --version must name EXPECTED.
ask() {
    local what="$1" want="$2" got
    shift 2
    if ! got="$("$@" 2>&1)"; then
        echo "FAIL $what: \`$*\` failed: $got" >&2
        fail=1
    elif ! grep -qF -- "$want" <<<"$got"; then
        echo "FAIL $what: expected $want, the server says: $got" >&2
        fail=1
    else
        echo "ok   $what: $got"
    fi
}
majors=0
for dir in "$DBTUNE_CACHE"/postgres/*/; do
    major="$(basename "$dir")"
    majors=$((majors + 1))
    ask "PostgreSQL $major" "$(cat "$dir/VERSION")" "$dir/bin/postgres" --version
done
[ "$majors" = 6 ] || { echo "FAIL: expected PostgreSQL 13-18, found $majors majors" >&2; fail=1; }
for what in redis pgbouncer; do
    dirs=("$DBTUNE_CACHE/$what"/*/)
    [ -d "${dirs[0]}" ] || { echo "FAIL: no $what was built" >&2; fail=1; continue; }
    for dir in "${dirs[@]}"; do
        prog="$dir/bin/pgbouncer"
        [ "$what" = redis ] && prog="$dir/bin/redis-server"
        ask "$what $(basename "$dir")" "$(cat "$dir/VERSION")" "$prog" --version
    done
done
echo "fetch-postgres.sh: ${pg_s}s, fetch-redis-pgbouncer.sh: ${rp_s}s into an empty cache"
[ "$fail" = 0 ] || exit 1

if [ "$adopt" = yes ]; then
    # A server dir is complete when its RECIPE is written (the fetch
    # scripts write it last); one that differs from the verified one is
    # replaced whole.
    for dir in "$DBTUNE_CACHE"/{postgres,redis,pgbouncer}/*/; do
        rel="${dir#"$DBTUNE_CACHE"/}"
        rel="${rel%/}"
        if [ "$(cat "$shared/$rel/RECIPE" 2>/dev/null)" = "$(cat "$dir/RECIPE")" ] &&
            [ "$(cat "$shared/$rel/VERSION" 2>/dev/null)" = "$(cat "$dir/VERSION")" ]; then
            continue
        fi
        mkdir -p "$shared/$(dirname "$rel")"
        chmod 755 "$shared" "$shared/$(dirname "$rel")"
        rm -rf "${shared:?}/$rel.new" "${shared:?}/$rel"
        cp -a "$dir" "$shared/$rel.new"
        mv "$shared/$rel.new" "$shared/$rel"
        echo "adopted into $shared: $rel ($(cat "$dir/VERSION"))"
    done
    printf '%s\n%s, in %ss\n' "$recipes" "$(date -u +%Y-%m-%dT%H:%MZ)" "$((pg_s + rp_s))" > "$shared/PROVEN.new"
    mv "$shared/PROVEN.new" "$shared/PROVEN"
fi
