#!/usr/bin/env bash
# docs/models.md (the table, with the time to estimate every model) and docs/models.html (the
# weights/MACs-vs-energy charts across the family), from the PyTorch fixtures.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet -p joule-cli
scripts/python-env.sh
scripts/make-torch-fixtures.sh
python3 scripts/models-table.py target/release/joule > docs/models.md.tmp && mv docs/models.md.tmp docs/models.md
target/release/joule report tests/fixtures/torch/*-op17-perturbed.onnx --hw eyeriss --no-layers \
  --title "torchvision's classification family on Eyeriss (PyTorch exports, opset 17)" --out docs/models.html
python3 scripts/check-report.py docs/models.html --expect "Weights and MACs are not energy"
