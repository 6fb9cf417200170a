#!/usr/bin/env bash
# NetAdapt experiments of issue 6 (docs/netadapt.md): vgg-small on Fashion-MNIST adapted to
# a 50% latency budget (measured LUT on this CPU), to a 50% MAC budget (MAC-guided vs
# latency-guided), and to a 50% energy budget on eyeriss. Results under docs/netadapt/.
set -euo pipefail
cd "$(dirname "$0")/.."
J=${JOULE:-target/debug/joule}
OUT=${OUT:-docs/netadapt/${MODEL:-vgg-small}}
EPOCHS=${EPOCHS:-2}
MODEL=${MODEL:-vgg-small}
DATA=${DATA:-fashion-mnist}
# Training images for short/long-term fine-tuning (0: the whole training split minus holdout).
SAMPLES=${SAMPLES:-0}
mkdir -p "$OUT"
uptime | tee "$OUT/load.txt"
[ -f "$OUT/$MODEL-$DATA.safetensors" ] || \
  $J train --model "$MODEL" --data "$DATA" --epochs "$EPOCHS" --seed 1 --out "$OUT/$MODEL-$DATA.safetensors"
$J lut build "$OUT/$MODEL-$DATA.safetensors" --levels 8 --out "$OUT/$MODEL.lut.json"
COMMON=(--model "$OUT/$MODEL-$DATA.safetensors" --data "$DATA" --lut "$OUT/$MODEL.lut.json"
        --holdout 2000 --short-term-batches 20 --long-term-epochs 1 --initial-reduction 0.1 --decay 0.96 --seed 1 --train-samples "$SAMPLES")
for run in "latency latency=0.5x" "macs macs=0.5x" "energy energy=0.5x"; do
  set -- $run
  rm -rf "$OUT/$1"
  $J adapt "${COMMON[@]}" --budget "$2" --out "$OUT/$1" | tee "$OUT/$1.txt"
  uptime | tee -a "$OUT/load.txt"
done
