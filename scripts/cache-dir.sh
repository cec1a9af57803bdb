# Sourced by the fetch scripts: sets $cache, where fetched and built
# servers live (outside the repository; tests/it/harness.rs reads the same place).
# $DBTUNE_CACHE, else /var/cache/dbtune as root, else the user's cache.
if [ -n "${DBTUNE_CACHE:-}" ]; then
    cache="$DBTUNE_CACHE"
elif [ "$(id -u)" = 0 ]; then
    cache=/var/cache/dbtune
else
    cache="${XDG_CACHE_HOME:-$HOME/.cache}/dbtune"
fi

# recipe_of FILE...: a hash of the scripts that produce a cached server.
# It is stored beside each build and compared on the next run, so editing a
# recipe rebuilds everywhere (CI included) instead of a stale build hiding a
# broken recipe: the cache key is the version plus what built it.
recipe_of() {
    cat "$@" | sha256sum | cut -c1-16
}
