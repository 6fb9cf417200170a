#!/usr/bin/env bash
# Creates .venv with the Python packages joule's tests compare against, pinned in
# scripts/requirements-test.txt (idempotent).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/pip-env.sh .venv scripts/requirements-test.txt
