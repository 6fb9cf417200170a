#!/usr/bin/env bash
# Fuzzes every parser of user files (issue #19) with cargo-fuzz (libFuzzer, nightly):
# ONNX import, checkpoints, hardware YAML (mapped on a small layer), density/bit-width files,
# IDX/gzip datasets, run-state JSON. Each target starts from a seed corpus built from the
# project's own files (fuzz/seeds/ plus fixtures, presets, a trained checkpoint, real state
# files) and runs for SECONDS (default 60) with a 4 GB memory and a 10 s per-input limit.
# Prints executions per target; any crash, hang or out-of-memory fails the script and leaves
# the input in fuzz/artifacts/<target>/ (turn it into a regression test).
# Usage: scripts/fuzz.sh [SECONDS] [TARGET ...]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(onnx_import checkpoint hardware_yaml density_file idx_dataset run_state)

command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz@0.13.2
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
cargo build --release -p joule-cli
joule=target/release/joule

corpus=fuzz/corpus
seed() { mkdir -p "$corpus/$1"; cp "${@:2}" "$corpus/$1/"; }
[ -f tests/fixtures/onnx/tiny_cnn.onnx ] || .venv/bin/python scripts/make-onnx-fixtures.py tests/fixtures/onnx
seed onnx_import $(ls -S -r tests/fixtures/onnx/*.onnx | head -n 12)
seed hardware_yaml crates/energy/presets/*.yaml
seed density_file fuzz/seeds/density_file/*
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
if [ ! -f "$corpus/checkpoint/lenet5.safetensors" ] || [ ! -f "$corpus/run_state/prune-state.json" ]; then
  "$joule" train --model lenet5 --data mnist --epochs 1 --holdout 7500 --out "$scratch/lenet5.safetensors" >/dev/null
  seed checkpoint "$scratch/lenet5.safetensors"
  "$joule" prune --model "$scratch/lenet5.safetensors" --data mnist --method magnitude --train-samples 300 \
    --finetune-epochs 1 --stop-after 1 --out "$scratch/prune" >/dev/null
  mkdir -p "$corpus/run_state"
  cp "$scratch/prune/state.json" "$corpus/run_state/prune-state.json"
fi
for f in docs/quantize/*/state.json; do cp "$f" "$corpus/run_state/quantize-$(basename "$(dirname "$f")").json"; done
mkdir -p "$corpus/idx_dataset"
python3 - "$corpus/idx_dataset" <<'PY'
import gzip, os, sys
out = sys.argv[1]
for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"):
    raw = open(os.path.join("data", "mnist", name), "rb").read()
    n = 3
    if "images" in name:
        small = raw[:4] + (n).to_bytes(4, "big") + raw[8:16] + raw[16:16 + n * 784]
    else:
        small = raw[:4] + (n).to_bytes(4, "big") + raw[8:8 + n]
    open(os.path.join(out, name), "wb").write(small)
    open(os.path.join(out, name + ".gz"), "wb").write(gzip.compress(small))
PY

cd fuzz
cargo +nightly fuzz build -O
status=0
for t in "${targets[@]}"; do
  log=$(mktemp)
  if cargo +nightly fuzz run -O "$t" "corpus/$t" -- -max_total_time="$seconds" -rss_limit_mb=4096 \
      -timeout=10 -print_final_stats=1 >"$log" 2>&1; then
    result=ok
  else
    result=FAILED
    status=1
    tail -n 40 "$log"
  fi
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  echo "$t: ${execs:-?} executions in ${seconds} s: $result"
  rm -f "$log"
done
exit $status
