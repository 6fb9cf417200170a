#!/usr/bin/env bash
# Training throughput: joule against PyTorch (CPU) on LeNet-5 and vgg-small, batch 64 and 256,
# SGD with momentum, MNIST digits, 2 threads, alternating rounds (scripts/bench-train.py says
# how). Not part of CI; about 3-5 minutes. Prints a markdown table with the load average of each
# row; rows started above a load of 1 per core are flagged LOADED. PyTorch: .venv-torch's when
# that environment exists (scripts/requirements-bench-torch.txt), else .venv's (the test
# environment, which has torch). THREADS=2 ROUNDS=3 EPOCHS=2 override the defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/fetch-data.sh >/dev/null
python=.venv/bin/python
[ -x .venv-torch/bin/python ] && python=.venv-torch/bin/python
[ -x "$python" ] || { echo "bench-train.sh: .venv: missing (scripts/python-env.sh creates it)" >&2; exit 2; }
cargo build --release --quiet -p joule-nn --example bench_train
"$python" scripts/bench-train.py target/release/examples/bench_train \
  --threads "${THREADS:-2}" --rounds "${ROUNDS:-3}" --epochs "${EPOCHS:-2}"
