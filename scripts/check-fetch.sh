#!/usr/bin/env bash
# Proves the fetch scripts work on a fresh machine: runs both into a new
# empty cache (nothing downloaded or built before), then asks every server
# they produced for its version and checks it is the one the script says it
# installed. A cache that already holds a build cannot hide a broken recipe
# here. .ci/run runs it on every CI run; run it by hand after changing
# scripts/ or .ci/run:
#   bash scripts/check-fetch.sh [--adopt]
# With --adopt, the servers it verified replace those of the usual cache
# (scripts/cache-dir.sh) that another recipe or release made, so CI builds
# each server once per run, not once here and again there.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
adopt=no
case "${1:-}" in
    --adopt) adopt=yes ;;
    "") ;;
    *) echo "usage: bash scripts/check-fetch.sh [--adopt]" >&2; exit 2 ;;
esac
# shellcheck source=scripts/cache-dir.sh
. "$here/cache-dir.sh"
shared="$cache"

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
        rm -rf "$shared/$rel.new" "$shared/$rel"
        cp -a "$dir" "$shared/$rel.new"
        mv "$shared/$rel.new" "$shared/$rel"
        echo "adopted into $shared: $rel ($(cat "$dir/VERSION"))"
    done
fi
