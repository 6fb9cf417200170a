#!/usr/bin/env bash
# Creates .venv with the Python packages joule's tests compare against (idempotent).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
if ! .venv/bin/python -c "import onnx, onnxruntime, numpy" 2>/dev/null; then
  .venv/bin/pip install --quiet --disable-pip-version-check -r scripts/requirements-test.txt
fi
