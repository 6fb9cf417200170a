#!/usr/bin/env bash
# Inference speed: joule's engine against onnxruntime on the same ONNX files and inputs
# (LeNet-5 and vgg-small from the zoo at 28x28; resnet18, mobilenet_v2, efficientnet_b0 as the
# torchvision fixtures at 3x112x112), batch 1 and a big batch (64; 16 at 112x112), 1 and 2
# threads, alternating rounds, outputs checked equal first (scripts/bench-infer.py says how).
# Not part of CI; about 3-5 minutes. Prints a markdown table with the load average of each row;
# rows run above a load of 1 per core are flagged LOADED. THREADS=1,2 ROUNDS=3 SECONDS_PER_SIDE=0.3
# MODELS=lenet5,... override the defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || { echo "bench-infer.sh: .venv: missing (scripts/python-env.sh creates it)" >&2; exit 2; }
cargo build --release --quiet -p joule-onnx --example bench_infer
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
target/release/examples/bench_infer export "$dir"
args=(--threads "${THREADS:-1,2}" --rounds "${ROUNDS:-3}" --seconds "${SECONDS_PER_SIDE:-0.3}")
[ -n "${MODELS:-}" ] && args+=(--models "$MODELS")
.venv/bin/python scripts/bench-infer.py target/release/examples/bench_infer "$dir" "${args[@]}"
