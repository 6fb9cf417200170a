#!/usr/bin/env bash
# Inference speed: joule's engine against onnxruntime on the same exported networks
# (LeNet-5, vgg-small), same thread count. Latency per image at batch 1, images/s at batch 64.
# Not part of CI. Prints a markdown table with the ratios (>1 means joule is slower).
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS="${THREADS:-2}"
scripts/python-env.sh
cargo build --release --quiet -p joule-onnx --example bench_infer
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
RAYON_NUM_THREADS="$THREADS" target/release/examples/bench_infer "$dir" > "$dir/joule.txt"
.venv/bin/python scripts/bench-infer.py "$dir" "$THREADS" lenet5 vgg-small > "$dir/ort.txt"
echo "threads: $THREADS; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| model | batch | joule | onnxruntime | joule / onnxruntime |"
echo "|---|---|---|---|---|"
join <(awk '{print $1"/"$2, $3}' "$dir/joule.txt" | sort) <(awk '{print $1"/"$2, $3}' "$dir/ort.txt" | sort) |
  awk '{split($1, k, "/");
        if (k[2] == 1) { j = sprintf("%.3f ms/image", $2 * 1e3); o = sprintf("%.3f ms/image", $3 * 1e3) }
        else { j = sprintf("%.0f images/s", k[2] / $2); o = sprintf("%.0f images/s", k[2] / $3) }
        printf "| %s | %s | %s | %s | %.2fx |\n", k[1], k[2], j, o, $2 / $3 }'
