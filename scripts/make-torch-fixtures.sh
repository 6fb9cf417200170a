#!/usr/bin/env bash
# Exports the PyTorch fixtures (tests/fixtures/torch: torchvision models as ONNX, and PyTorch's
# MAC counts) with torch and torchvision installed from PyPI into .venv at the versions pinned in
# scripts/requirements-torch.txt (with torch-pruning and ray, which joule.torch uses). The wheels are large (CUDA libraries included, unused here);
# pip installs them once and later runs find them in .venv. Usage: make-torch-fixtures.sh [MODEL ...]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/python-env.sh
want() { sed -n "s/^$1==//p" scripts/requirements-torch.txt; }
have=$(.venv/bin/python -c "from importlib.metadata import version as v; print(*(v(p).split('+')[0] for p in ('torch', 'torchvision', 'torch-pruning', 'ray')))" 2>/dev/null || true)
if [ "$have" != "$(want torch) $(want torchvision) $(want torch-pruning) $(want ray)" ]; then
  .venv/bin/pip install --quiet --disable-pip-version-check -r scripts/requirements-torch.txt
fi
.venv/bin/python scripts/make-torch-fixtures.py tests/fixtures/torch "$@"
