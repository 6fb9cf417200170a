#!/usr/bin/env bash
# Training throughput, LeNet-5, batch 64, SGD, 8,000 MNIST digits, 2 threads: joule against
# PyTorch on the CPU. Not part of CI. PyTorch goes into its own virtual environment
# (.venv-torch, git-ignored; scripts/requirements-bench-torch.txt pins torch and numpy from PyPI,
# about 3 GB with its CUDA libraries, which stay unused). Prints the images/s of each and the ratio.
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS="${THREADS:-2}"
EPOCHS="${EPOCHS:-3}"
scripts/fetch-data.sh >/dev/null
scripts/pip-env.sh .venv-torch scripts/requirements-bench-torch.txt
cargo build --release --quiet -p joule-nn --example bench_train
joule_out="$(RAYON_NUM_THREADS="$THREADS" target/release/examples/bench_train "$EPOCHS")"
torch_out="$(.venv-torch/bin/python scripts/bench-train.py "$THREADS" "$EPOCHS")"
echo "$joule_out"
echo "$torch_out"
best() { awk '{print $2}' | sort -n | tail -1; }
j="$(echo "$joule_out" | best)"
t="$(echo "$torch_out" | best)"
echo
echo "| engine | images/s (best of $EPOCHS epochs) | ratio to PyTorch |"
echo "|---|---|---|"
echo "| joule | $j | $(awk -v a="$j" -v b="$t" 'BEGIN{printf "%.2fx", a/b}') |"
echo "| PyTorch | $t | 1.00x |"
