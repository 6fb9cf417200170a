#!/usr/bin/env bash
# The PIM experiments of docs/pim.md (issue 8), one command: scripts/experiment-pim.sh
# Prints every table of docs/pim.md (1, 2 and 4 from joule_lab::pim_study, 3 from
# `joule compare`) and writes docs/pim-utilization.svg. Needs no data set.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q --release -p joule-cli --bin joule
cargo build -q --release -p joule-lab --example pim_study
./target/release/examples/pim_study docs
echo
echo "## 3. ResNet-152 vs WRN-50-2 on digital and PIM hardware"
echo
./target/release/joule compare resnet152 wide_resnet50_2 \
    --hw eyeriss --hw isca16 --hw pim-128 --hw pim-256 --hw pim-1024 --hw pim-4096
