#!/usr/bin/env bash
# The PIM experiments of docs/pim.md (issue 8), one command: scripts/experiment-pim.sh
# Writes docs/pim-utilization.svg and prints every table of docs/pim.md.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q --release --bin joule
cargo run -q --release -p joule-energy --example pim_experiments -- docs
echo "## 4. ResNet-152 vs WRN-50-2, digital and PIM"
./target/release/joule compare resnet152 wide_resnet50_2 \
    --hw eyeriss --hw isca16 --hw pim-128 --hw pim-256 --hw pim-1024 --hw pim-4096
