#!/usr/bin/env bash
# Magnitude pruning vs energy-aware pruning on the eyeriss preset (or HW=<preset|yaml>), at most 1 point of
# validation accuracy lost: trains each model with its recipe (once) on the training split less
# a seeded 2,000-image holdout, prunes it both ways selecting on that holdout (the validation
# split; the test split is only reported), and copies summaries, curves and the poster-style
# table into docs/prune/<model>-<data>/.
#
#   scripts/experiment-prune.sh                      # the three experiments of docs/prune.md
#   scripts/experiment-prune.sh lenet5:mnist         # just one
#   SEED=2 scripts/experiment-prune.sh lenet5:mnist  # another seed (training, holdout, pruning):
#                                                    # docs/prune/lenet5-mnist-seed2/
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p joule-cli
scripts/fetch-data.sh >/dev/null  # MNIST and Fashion-MNIST
joule=target/release/joule
work=${PRUNE_WORK:-target/prune-experiments}
hw=${HW:-eyeriss}
# The validation split: training images left out of training and fine-tuning (seeded by SEED, default 1).
holdout=${HOLDOUT:-2000}
seed=${SEED:-1}
# Extra `joule prune` options for both methods, e.g. PRUNE_ARGS="--finetune-epochs 1".
read -r -a extra <<< "${PRUNE_ARGS:-}"
mkdir -p "$work"
experiments=("$@")
if [ ${#experiments[@]} -eq 0 ]; then
    experiments=(lenet5:mnist lenet5:fashion-mnist vgg-small:fashion-mnist)
fi
for experiment in "${experiments[@]}"; do
    model=${experiment%%:*}
    data=${experiment#*:}
    name="$model-$data"
    # Trained without the holdout, so the validation split is unseen (its own folder keeps
    # the file stem, which names the rows of the tables).
    mkdir -p "$work/holdout$holdout"
    checkpoint="$work/holdout$holdout/$name${SEED:+-seed$seed}.safetensors"
    # Runs on another preset than eyeriss keep their own folders: docs/prune/<name>-<preset>.
    run="$name${HW:+-$hw}${SEED:+-seed$seed}"
    if [ ! -f "$checkpoint" ]; then
        "$joule" train --model "$model" --data "$data" --seed "$seed" --holdout "$holdout" --out "$checkpoint"
    fi
    rm -rf "$work/$run-magnitude" "$work/$run-eap"
    "$joule" prune --method magnitude --model "$checkpoint" --data "$data" --hw "$hw" \
        --max-drop 1 --seed "$seed" --holdout "$holdout" --out "$work/$run-magnitude" "${extra[@]}"
    "$joule" prune --method eap --model "$checkpoint" --data "$data" --hw "$hw" \
        --max-drop 1 --seed "$seed" --holdout "$holdout" --out "$work/$run-eap" --compare "$work/$run-magnitude" "${extra[@]}"
    out="docs/prune/$run"
    mkdir -p "$out"
    cp "$work/$run-magnitude/summary.json" "$out/magnitude-summary.json"
    cp "$work/$run-eap/summary.json" "$out/eap-summary.json"
    cp "$work/$run-eap/tradeoff.svg" "$out/tradeoff.svg"
    cp "$work/$run-magnitude/layers.svg" "$out/layers-magnitude.svg"
    cp "$work/$run-eap/layers.svg" "$out/layers-eap.svg"
    cp "$work/$run-eap/table.md" "$out/table.md"
done
