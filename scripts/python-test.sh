#!/usr/bin/env bash
# Installs the Python package (python/: pyo3 over joule_lab) into .venv and runs its tests,
# which compare it with the joule binary. Reinstalls only when the Rust or Python sources
# changed since the last install (a stamp in .venv).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/python-env.sh
.venv/bin/pip install --quiet --disable-pip-version-check -r scripts/requirements-python.txt
[ -f tests/fixtures/onnx/tiny_cnn.onnx ] || .venv/bin/python scripts/make-onnx-fixtures.py tests/fixtures/onnx
cargo build --release -p joule-cli  # the CLI the tests compare with

stamp=.venv/.joule-python-stamp
sources=$(find Cargo.toml Cargo.lock crates python -type f \
  -not -path 'python/tests/*' -not -name '*.pyc' -not -path '*/target/*' -print0 |
  sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$sources" ] || ! .venv/bin/python -c "import joule" 2>/dev/null; then
  # maturin comes pinned from requirements-python.txt (the same pin as python/pyproject.toml);
  # its Python shim runs the `maturin` binary found on PATH.
  PATH="$PWD/.venv/bin:$PATH" .venv/bin/pip install --quiet --disable-pip-version-check --no-build-isolation \
    --force-reinstall --no-deps ./python
  echo "$sources" >"$stamp"
fi

# The tests marked `torch` run too: scripts/make-torch-fixtures.sh installs torch into .venv.
.venv/bin/python -m pytest -q python/tests "$@"
