# Sourced by the fetch scripts: sets $cache, where fetched and built
# servers live (outside the repository; tests/harness reads the same place).
# $DBTUNE_CACHE, else /var/cache/dbtune as root, else the user's cache.
if [ -n "${DBTUNE_CACHE:-}" ]; then
    cache="$DBTUNE_CACHE"
elif [ "$(id -u)" = 0 ]; then
    cache=/var/cache/dbtune
else
    cache="${XDG_CACHE_HOME:-$HOME/.cache}/dbtune"
fi
