#!/usr/bin/env bash
# The experiments of docs/quantize.md, energy on eyeriss, seed 1:
#   lenet5     LeNet-5 / MNIST: PTQ 8/8, PTQ + QAT 4/4
#   vgg-small  vgg-small / Fashion-MNIST: PTQ 8/8
#   mixed      energy-guided mixed precision (joule mixed-precision) against every uniform
#              width: LeNet-5 / MNIST and vgg-small / Fashion-MNIST, each model trained with
#              the 2,000-image holdout the search scores on left out (vgg-small: ~60 min of
#              training on 2 busy cores, then ~30 min of search)
#   eap        the Deep Compression pipeline with hardware in the loop: LeNet-5 / MNIST
#              pruned energy-aware (EAP, at most 1 point of validation accuracy on the
#              2,000-image holdout the model was trained without), then quantized (PTQ 8/8 and the
#              4/4 widths), energy with measured densities after each stage
# Trains the float models first (the reference models of docs/training.md) unless their
# checkpoints exist. Run directories go to docs/quantize/ (checkpoints and ONNX files are
# not committed). Usage: scripts/quantize-experiments.sh [lenet5|vgg-small|mixed|eap|all]
set -euo pipefail
cd "$(dirname "$0")/.."
which=${1:-all}
cargo build --release -p joule-cli
J=target/release/joule
out=docs/quantize
mkdir -p "$out"
model() { # name data [holdout]
    local holdout=${3:-0}
    local ckpt="$out/$1-$2.safetensors"
    [ "$holdout" = 0 ] || ckpt="$out/$1-$2-holdout$holdout.safetensors"
    [ -f "$ckpt" ] || "$J" train --model "$1" --data "$2" --seed 1 --holdout "$holdout" --out "$ckpt" >&2
    echo "$ckpt"
}
run() { # dir args...
    local dir="$out/$1"
    shift
    rm -rf "$dir"
    "$J" quantize --hw eyeriss --seed 1 --out "$dir" "$@"
}
mixed() { # dir args...
    local dir="$out/$1"
    shift
    rm -rf "$dir"
    "$J" mixed-precision --hw eyeriss --seed 1 --holdout 2000 --max-drop 0.5 --out "$dir" "$@"
}
if [ "$which" = all ] || [ "$which" = lenet5 ]; then
    m=$(model lenet5 mnist)
    run lenet5-ptq-8-8 --model "$m" --data mnist --weight-bits 8 --activation-bits 8
    run lenet5-qat-4-4 --model "$m" --data mnist --weight-bits 4 --activation-bits 4 --qat-epochs 3
fi
if [ "$which" = all ] || [ "$which" = vgg-small ]; then
    # The holdout-trained checkpoint the mixed search uses: one training for both.
    m=$(model vgg-small fashion-mnist 2000)
    run vgg-small-ptq-8-8 --model "$m" --data fashion-mnist --weight-bits 8 --activation-bits 8
fi
if [ "$which" = all ] || [ "$which" = mixed ]; then
    mixed lenet5-mixed --model "$(model lenet5 mnist 2000)" --data mnist
    mixed vgg-small-mixed --model "$(model vgg-small fashion-mnist 2000)" --data fashion-mnist
fi
if [ "$which" = all ] || [ "$which" = eap ]; then
    # Trained without the 2,000-image holdout EAP selects on (its validation split).
    m=$(model lenet5 mnist 2000)
    rm -rf "$out/lenet5-eap"
    "$J" prune --method eap --model "$m" --data mnist --hw eyeriss --max-drop 1 --seed 1 \
        --holdout 2000 --out "$out/lenet5-eap"
    run lenet5-dense-ptq-8-8 --model "$m" --data mnist --weight-bits 8 --activation-bits 8
    run lenet5-eap-ptq-8-8 --model "$out/lenet5-eap/pruned.safetensors" --data mnist \
        --weight-bits 8 --activation-bits 8
    run lenet5-eap-ptq-4-4 --model "$out/lenet5-eap/pruned.safetensors" --data mnist \
        --weight-bits 4 --activation-bits 4
fi
