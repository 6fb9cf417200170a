#!/usr/bin/env bash
# Creates (or updates) a virtual environment with exactly the packages of a requirements file:
#
#   scripts/pip-env.sh VENV REQUIREMENTS
#
# Every package, dependencies included, is pinned with `==` in the requirements file; a copy of
# the file kept in VENV records what was installed, so the install runs again only when the
# pins change (or the environment is missing).
set -euo pipefail
venv="$1"
requirements="$2"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
if ! cmp -s "$requirements" "$venv/requirements.txt"; then
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
    cp "$requirements" "$venv/requirements.txt"
fi
