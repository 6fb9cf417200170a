#!/usr/bin/env bash
# Neuron elimination experiments (issue 7, seed 003): trains the reference LeNet-300-100 and
# LeNet-5 on MNIST (less a seeded 2,000-image holdout, the validation split every threshold
# reads; the test split is only reported) if their checkpoints are missing, runs `joule eliminate` on every fully
# connected layer of each, and regenerates docs/eliminate.md's tables (between the
# BEGIN/END markers) and the curves docs/eliminate-<model>-<hw>.svg.
#
#   scripts/experiment-eliminate.sh            # about a minute on 2 cores
#   OUT=/tmp/elim scripts/experiment-eliminate.sh
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-target/eliminate}
MAX_DROP=${MAX_DROP:-2}
HOLDOUT=${HOLDOUT:-2000}
mkdir -p "$OUT"
scripts/fetch-data.sh >/dev/null  # MNIST
cargo build --release -q -p joule-cli
joule=target/release/joule

for model in lenet300 lenet5; do
    mkdir -p "$OUT/holdout$HOLDOUT"
    checkpoint="$OUT/holdout$HOLDOUT/$model-mnist.safetensors"
    if [ ! -f "$checkpoint" ]; then
        "$joule" train --model "$model" --data mnist --seed 1 --holdout "$HOLDOUT" --threads 2 \
            --out "$checkpoint"
    fi
    "$joule" eliminate --model "$checkpoint" --data mnist --layer all --max-drop "$MAX_DROP" \
        --holdout "$HOLDOUT" --seed 1 \
        --hw horowitz45,eyeriss --threads 2 --out "$OUT/$model" 2> "$OUT/$model.log" >/dev/null
    for hw in horowitz45 eyeriss; do
        cp "$OUT/$model/curves-$hw.svg" "docs/eliminate-$model-$hw.svg"
    done
    # Replace the lines between the model's markers with the fresh tables.
    awk -v model="$model" -v tables="$OUT/$model/tables.md" '
        $0 == "<!-- BEGIN " model " -->" { print; while ((getline line < tables) > 0) print line; skip = 1; next }
        $0 == "<!-- END " model " -->" { skip = 0 }
        !skip { print }
    ' docs/eliminate.md > "$OUT/eliminate.md.new"
    mv "$OUT/eliminate.md.new" docs/eliminate.md
done
echo "docs/eliminate.md and docs/eliminate-*.svg regenerated from $OUT"
