#!/usr/bin/env bash
# docs/report.html: the reference report (the model zoo on Eyeriss, dataflows at equal area,
# and the committed pruning and NetAdapt runs of docs/prune.md and docs/netadapt.md), and
# docs/report.png, its first screen as Chromium draws it (shown in the README).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet -p joule-cli
target/release/joule report alexnet squeezenet googlenet mobilenet resnet50 --hw eyeriss \
  --dataflows isca16 \
  --run docs/prune/lenet5-mnist/eap-summary.json \
  --run docs/prune/lenet5-mnist/magnitude-summary.json \
  --run docs/prune/vgg-small-fashion-mnist/eap-summary.json \
  --run docs/netadapt/vgg-small/latency \
  --run docs/netadapt/vgg-small/latency-0.25 \
  --run docs/netadapt/vgg-small/energy \
  --run docs/prune/mobilenetv2-28-fashion-mnist/eap-summary.json \
  --run docs/netadapt/mobilenetv2-28/latency-0.5-seed1 \
  --run docs/prune/mobilenetv3-28-fashion-mnist/eap-summary.json \
  --run docs/netadapt/mobilenetv3-28/latency-0.5-seed1 \
  --title "joule: the model zoo on Eyeriss, and the compression runs of docs/" \
  --out docs/report.html
python3 scripts/check-report.py docs/report.html --expect "Benchmarking metrics" \
  --expect "Pruning (eap)" --expect "NetAdapt" --screenshot docs/report.png
