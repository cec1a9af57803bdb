#!/usr/bin/env bash
# Installs ansible-core from PyPI into a virtualenv in the cache the server
# scripts use (scripts/cache-dir.sh), for the fleet example's test
# (examples/ansible, tests/it/ansible.rs), and prints where it is:
#   <cache>/ansible/bin/ansible-playbook
# The version is pinned here. The venv records the hash of this script
# (RECIPE, written last, so a venv without it is incomplete) and is made
# again when the recipe changes. Needs python3 with its venv module
# (Debian: python3-venv; .ci/run installs it).
set -euo pipefail

# 2.18: its controller runs on Debian 12's Python 3.11; pinned so every run
# tests the example with the same Ansible.
version=2.18.19

# shellcheck source=scripts/cache-dir.sh
. "$(dirname "$0")/cache-dir.sh"
recipe="$(recipe_of "$0" "$(dirname "$0")/cache-dir.sh")"
dest="$cache/ansible"

if [ "$(cat "$dest/RECIPE" 2>/dev/null)" = "$recipe" ] && [ -x "$dest/bin/ansible-playbook" ]; then
    echo "ansible-core $version: $dest/bin/ansible-playbook (cached)"
    exit 0
fi

# Debian's own python3 when there is one: the venv's scripts name their
# interpreter by path, and a per-user one (pyenv) may not be there for the
# next user. A venv cannot be moved, so it is made in place.
python=/usr/bin/python3
[ -x "$python" ] || python=python3
mkdir -p "$cache"
rm -rf "$dest"
"$python" -m venv "$dest"
"$dest/bin/pip" install --quiet --disable-pip-version-check "ansible-core==$version"
# Asked for its version: a venv that cannot run it is not recorded.
"$dest/bin/ansible-playbook" --version >/dev/null
echo "$recipe" > "$dest/RECIPE"
echo "ansible-core $version: $dest/bin/ansible-playbook"
