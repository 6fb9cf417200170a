#!/usr/bin/env bash
# The whole of torchvision's classification family (80 models in torchvision 0.20.1) through
# joule at 224x224, both opsets: import, MACs against PyTorch's hooks, onnxruntime against
# joule's engine, energy on eyeriss (scripts/torchvision-family.py). Exports go to a scratch
# folder (SCRATCH, default /tmp/tvfamily), one model at a time, deleted after each: the largest
# (vit_h_14, regnet_y_128gf) are 2.5 GB files with external data and need ~10 GB of memory
# while exported. Results accumulate in docs/torchvision-family.json (a model already there is
# skipped; name models to measure them again); then scripts/models-table.sh renders
# docs/models.md from them and from the fixtures. Hours on two cores.
# Usage: scripts/torchvision-family.sh [MODEL ...]
set -euo pipefail
cd "$(dirname "$0")/.."
scratch=${SCRATCH:-/tmp/tvfamily}
cargo build --release --quiet -p joule-cli
cargo build --release --quiet -p joule-onnx --example forward
scripts/make-torch-fixtures.sh  # installs torch/torchvision into .venv at the pinned versions
.venv/bin/python scripts/torchvision-family.py target/release/joule target/release/examples/forward \
  "$scratch" docs/torchvision-family.json "$@"
scripts/models-table.sh
