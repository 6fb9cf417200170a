#!/usr/bin/env bash
# NetAdapt experiments of issue 6 (docs/netadapt.md): vgg-small on Fashion-MNIST adapted to
# a 50% latency budget (measured LUT on this CPU), to a 50% MAC budget (MAC-guided vs
# latency-guided), and to a 50% energy budget on eyeriss. Results under docs/netadapt/.
set -euo pipefail
cd "$(dirname "$0")/.."
J=${JOULE:-target/debug/joule}
OUT=${OUT:-docs/netadapt}
EPOCHS=${EPOCHS:-2}
mkdir -p "$OUT"
uptime | tee "$OUT/load.txt"
[ -f "$OUT/vgg-small-fmnist.safetensors" ] || \
  $J train --model vgg-small --data fashion-mnist --epochs "$EPOCHS" --seed 1 --out "$OUT/vgg-small-fmnist.safetensors"
$J lut build "$OUT/vgg-small-fmnist.safetensors" --levels 8 --out "$OUT/vgg-small.lut.json"
COMMON=(--model "$OUT/vgg-small-fmnist.safetensors" --data fashion-mnist --lut "$OUT/vgg-small.lut.json"
        --holdout 2000 --short-term-batches 20 --long-term-epochs 1 --initial-reduction 0.1 --decay 0.96 --seed 1)
for run in "latency latency=0.5x" "macs macs=0.5x" "energy energy=0.5x"; do
  set -- $run
  rm -rf "$OUT/$1"
  $J adapt "${COMMON[@]}" --budget "$2" --out "$OUT/$1" | tee "$OUT/$1.txt"
  uptime | tee -a "$OUT/load.txt"
done
