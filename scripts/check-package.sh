#!/usr/bin/env bash
# Packages dbtune as a user gets it and proves each form works (.ci/run's
# package phase):
#  1. `cargo package`: the crate holds what the binary embeds;
#  2. `cargo install` from that packaged crate: it builds alone, and the
#     installed binary says its version and renders;
#  3. the Debian package (cargo-deb), with that same binary and the
#     completions and man pages it generates, installed with dpkg, looked
#     at, and removed again (as root: CI runs as root).
# One target dir serves the install and the .deb, so the dependencies
# build once. PROFILE=release (the default) builds what a user installs,
# in package-check/ under cargo's target dir; .ci/run passes PROFILE=dev,
# which builds in the target dir beside the tests' own build and reuses its dependencies (the
# release build alone is about 4 minutes of CI on 2 cores; the recipe is
# the same). cargo-deb is installed at a pinned version when ~/.cargo/bin
# does not have it.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo_deb_version=3.8.0
version="$(cargo metadata --no-deps --format-version 1 --locked |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["packages"][0]["version"])')"
profile="${PROFILE:-release}"
# Cargo's own target dir (CARGO_TARGET_DIR, which .ci/run sets, else ./target).
cargo_target="${CARGO_TARGET_DIR:-$PWD/target}"
case "$profile" in
    release) target="$cargo_target/package-check"; out_dir=release; install_flags=() ;;
    dev) target="$cargo_target"; out_dir=debug; install_flags=(--debug) ;;
    *) echo "error: PROFILE must be release or dev, not $profile" >&2; exit 2 ;;
esac
root="$(mktemp -d)"
installed=""
cleanup() {
    rm -rf "$root"
    # The machine is left as it was, also when a check fails.
    if [ -n "$installed" ]; then dpkg -r dbtune >/dev/null || true; fi
}
trap cleanup EXIT

echo "-- cargo package"
# --no-verify: the install below is the verification, in release mode
# and in the shared target dir (cargo package's own would build every
# dependency once more, in debug).
cargo package --locked --no-verify --allow-dirty
tar -xzf "$cargo_target/package/dbtune-$version.crate" -C "$root"
crate="$root/dbtune-$version"
for f in src/main.rs templates/postgresql.conf.j2 profiles/low-memory.toml data/pg-catalog-16.tsv; do
    [ -f "$crate/$f" ] || { echo "error: the crate lacks $f" >&2; exit 1; }
done
for d in tests bench scripts docs; do
    [ ! -e "$crate/$d" ] || { echo "error: the crate carries $d/, which the binary does not need" >&2; exit 1; }
done

echo "-- cargo install from the packaged crate"
cargo install --locked "${install_flags[@]}" --path "$crate" --root "$root" --target-dir "$target" --quiet
"$root/bin/dbtune" --version
"$root/bin/dbtune" render --profile postgres-only --ram 4GiB --only postgres 2>/dev/null | grep -q '^shared_buffers = ' ||
    { echo "error: the installed dbtune did not render" >&2; exit 1; }

echo "-- Debian package"
if [ "$(cargo deb --version 2>/dev/null | awk '{print $2}')" != "$cargo_deb_version" ]; then
    cargo install cargo-deb --version "$cargo_deb_version" --locked --quiet
fi
# The .deb's binary is the one just built from the packaged crate; its
# completions and man pages come from that binary, so they describe it.
assets="$target/$out_dir/assets"
rm -rf "$assets"
mkdir -p "$assets/completions"
"$target/$out_dir/dbtune" completions bash > "$assets/completions/dbtune.bash"
"$target/$out_dir/dbtune" completions zsh > "$assets/completions/_dbtune"
"$target/$out_dir/dbtune" completions fish > "$assets/completions/dbtune.fish"
"$target/$out_dir/dbtune" man --dir "$assets/man"
# Debian's policy wants man pages gzipped; cargo-deb compresses only the
# assets it did not build itself, and these are under target/release.
gzip -9n "$assets"/man/*.1
mkdir "$root/deb"
CARGO_TARGET_DIR="$target" cargo deb --locked --no-build --profile "$profile" --output "$root/deb/"
deb="$(ls "$root"/deb/dbtune_*.deb)"
dpkg-deb --contents "$deb"

if [ "$(id -u)" != 0 ]; then
    echo "not root: the .deb is built but not installed"
    exit 0
fi
if dpkg-query -W -f='${Status}' dbtune 2>/dev/null | grep -q 'install ok installed'; then
    echo "error: a dbtune package is already installed; remove it first (dpkg -r dbtune)" >&2
    exit 1
fi
installed=yes
dpkg -i "$deb"
[ "$(command -v dbtune)" = /usr/bin/dbtune ] || { echo "error: dbtune is not /usr/bin/dbtune" >&2; exit 1; }
/usr/bin/dbtune --version
for f in /usr/share/bash-completion/completions/dbtune \
    /usr/share/zsh/vendor-completions/_dbtune \
    /usr/share/fish/vendor_completions.d/dbtune.fish \
    /usr/share/man/man1/dbtune.1.gz \
    /usr/share/man/man1/dbtune-check-budget.1.gz; do
    [ -s "$f" ] || { echo "error: the package did not install $f" >&2; exit 1; }
done
if command -v man >/dev/null; then
    man -w dbtune
fi
# The installed completion completes a subcommand in a real bash.
got="$(bash --norc --noprofile -c 'source /usr/share/bash-completion/completions/dbtune
    COMP_WORDS=(dbtune check-b); COMP_CWORD=1; _dbtune dbtune check-b dbtune; echo "${COMPREPLY[*]}"')"
[ "$got" = check-budget ] || { echo "error: the installed bash completion gave \`$got\`" >&2; exit 1; }
dpkg -r dbtune
installed=""
[ ! -e /usr/bin/dbtune ] || { echo "error: dpkg -r left /usr/bin/dbtune" >&2; exit 1; }
echo "package: crate, cargo install, .deb installed and removed"
