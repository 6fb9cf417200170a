#!/usr/bin/env bash
# The experiments of docs/quantize.md: LeNet-5 / MNIST (PTQ 8/8, PTQ + QAT 4/4) and
# vgg-small / Fashion-MNIST (PTQ 8/8), energy on eyeriss. Trains the float models first
# (seed 1, the reference models of docs/training.md; vgg-small takes about 25 min) unless
# their checkpoints exist. Run directories go to docs/quantize/ (checkpoints and ONNX files
# are not committed). Usage: scripts/quantize-experiments.sh [lenet5|vgg-small|all]
set -euo pipefail
cd "$(dirname "$0")/.."
which=${1:-all}
cargo build --release -p joule-cli
J=target/release/joule
out=docs/quantize
mkdir -p "$out"
model() { # name data
    local ckpt="$out/$1-$2.safetensors"
    [ -f "$ckpt" ] || "$J" train --model "$1" --data "$2" --seed 1 --out "$ckpt" >&2
    echo "$ckpt"
}
run() { # dir args...
    local dir="$out/$1"
    shift
    rm -rf "$dir"
    "$J" quantize --hw eyeriss --seed 1 --out "$dir" "$@"
}
if [ "$which" = all ] || [ "$which" = lenet5 ]; then
    m=$(model lenet5 mnist)
    run lenet5-ptq-8-8 --model "$m" --data mnist --weight-bits 8 --activation-bits 8
    run lenet5-qat-4-4 --model "$m" --data mnist --weight-bits 4 --activation-bits 4 --qat-epochs 3
fi
if [ "$which" = all ] || [ "$which" = vgg-small ]; then
    m=$(model vgg-small fashion-mnist)
    run vgg-small-ptq-8-8 --model "$m" --data fashion-mnist --weight-bits 8 --activation-bits 8
fi
