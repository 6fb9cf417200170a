#!/usr/bin/env bash
# NetAdapt experiments of issue 6 (docs/netadapt.md): vgg-small on Fashion-MNIST adapted to
# a 50% latency budget (measured LUT on this CPU) against the uniform width-multiplier
# baseline, to a 50% MAC budget (MAC-guided vs latency-guided), and to a 50% energy budget on
# eyeriss. Results under docs/netadapt/<model>/.
#
#   scripts/netadapt-experiments.sh                      # vgg-small on Fashion-MNIST
#   CHECKPOINT=path.safetensors SAMPLES=10000 HOLDOUT=1000 scripts/netadapt-experiments.sh
#
# CHECKPOINT: a trained model (default target/netadapt/<model>-<data>.safetensors, trained
# here first if missing: the model's recipe, or EPOCHS, on the training split minus the
# HOLDOUT images NetAdapt scores candidates on, so no candidate is judged on images it was
# trained on). RUNS: which budgets ("latency macs energy").
set -euo pipefail
cd "$(dirname "$0")/.."
# JOULE: a joule binary to use instead of building target/release/joule here.
[ -n "${JOULE:-}" ] || cargo build --release -q -p joule-cli
J=${JOULE:-target/release/joule}
MODEL=${MODEL:-vgg-small}
DATA=${DATA:-fashion-mnist}
OUT=${OUT:-docs/netadapt/$MODEL}
EPOCHS=${EPOCHS:-}
CHECKPOINT=${CHECKPOINT:-target/netadapt/$MODEL-$DATA.safetensors}
# Training images for short/long-term fine-tuning (0: the whole training split minus holdout).
SAMPLES=${SAMPLES:-0}
HOLDOUT=${HOLDOUT:-2000}
ITERATIONS=${ITERATIONS:-40}
LEVELS=${LEVELS:-16}
R0=${R0:-0.04}
DECAY=${DECAY:-0.98}
SHORT=${SHORT:-100}
LONG=${LONG:-1}
RUNS=${RUNS:-latency macs energy}
# Budget as a fraction of the original; results in <run>/ (0.5) or <run>-<fraction>/.
FRACTION=${FRACTION:-0.5}
scripts/fetch-data.sh >/dev/null  # Fashion-MNIST (and MNIST)
mkdir -p "$OUT"
echo "RUNS=$RUNS FRACTION=$FRACTION start: $(uptime)" | tee -a "$OUT/load.txt"
if [ ! -f "$CHECKPOINT" ]; then
  mkdir -p "$(dirname "$CHECKPOINT")"
  $J train --model "$MODEL" --data "$DATA" ${EPOCHS:+--epochs "$EPOCHS"} --holdout "$HOLDOUT" \
    --seed 1 --out "$CHECKPOINT" | tee "$OUT/train.txt"
fi
[ -f "$OUT/$MODEL.lut.json" ] || \
  $J lut build "$CHECKPOINT" --levels "$LEVELS" --out "$OUT/$MODEL.lut.json" | tail -1 | tee -a "$OUT/load.txt"
COMMON=(--model "$CHECKPOINT" --data "$DATA" --lut "$OUT/$MODEL.lut.json" --holdout "$HOLDOUT"
        --short-term-batches "$SHORT" --long-term-epochs "$LONG" --initial-reduction "$R0"
        --decay "$DECAY" --iterations "$ITERATIONS" --seed 1 --train-samples "$SAMPLES")
for run in $RUNS; do
  # The latency run also builds the uniform width-multiplier baseline (on by default) and
  # fine-tunes it at every width (its accuracy-latency curve).
  extra=(); [ "$run" = latency ] && extra=(--baseline-curve)
  dir=$run; [ "$FRACTION" = 0.5 ] || dir=$run-$FRACTION
  rm -rf "${OUT:?}/$dir"
  $J adapt "${COMMON[@]}" "${extra[@]}" --budget "$run=${FRACTION}x" --out "$OUT/$dir" | tee "$OUT/$dir.txt"
  echo "after $dir: $(uptime)" | tee -a "$OUT/load.txt"
done
