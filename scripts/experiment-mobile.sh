#!/usr/bin/env bash
# The compressors on a MobileNet-class network (issue 17 item 3; docs/netadapt.md, docs/prune.md,
# docs/eliminate.md, sections "mobilenetv2-28"): NetAdapt at latency 0.5x and 0.25x against the
# uniform width-multiplier baseline over several seeds, EAP vs magnitude pruning on eyeriss,
# and neuron elimination. Scaled down to fit one core of a shared 2-core machine (the settings
# below; docs say so): every run uses one thread, fine-tuning reads TRAIN_SAMPLES images.
#
#   scripts/experiment-mobile.sh                    # everything (about 70 min on one core of a
#                                                   # loaded machine: NetAdapt 27, pruning 25,
#                                                   # elimination 15)
#   scripts/experiment-mobile.sh adapt-0.5 prune    # stages: adapt-0.5 adapt-0.25 prune eliminate docs
#   SEEDS="1 2" scripts/experiment-mobile.sh adapt-0.25
#   MODEL=mobilenetv3-28 CHECKPOINT=... SEEDS=1 scripts/experiment-mobile.sh adapt-0.5
#
# CHECKPOINT: a trained mobilenetv2-28 (default target/mobile/mobilenetv2-28-fashion.safetensors,
# trained here first if missing with `joule train --model mobilenetv2-28 --data fashion-mnist
# --seed 1 --epochs 3`, i.e. on all 60,000 training images, the holdout included, like the
# checkpoint the documented runs used). Results: docs/netadapt/mobilenetv2-28/ (NetAdapt,
# with load averages in load.txt), docs/prune/mobilenetv2-28-fashion-mnist/,
# docs/eliminate/mobilenetv2-28/.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -n "${JOULE:-}" ] || cargo build --release -q -p joule-cli
J=${JOULE:-target/release/joule}
MODEL=${MODEL:-mobilenetv2-28}
DATA=fashion-mnist
CHECKPOINT=${CHECKPOINT:-target/mobile/$MODEL-fashion.safetensors}
SEEDS=${SEEDS:-1 2 3}
HOLDOUT=${HOLDOUT:-2000}
TRAIN_SAMPLES=${TRAIN_SAMPLES:-20000}
# One core: the engine and training each on one thread (rayon too).
export RAYON_NUM_THREADS=1
# The latency measurements of a shared machine: more sweeps, further apart, and no gate (the
# gate waits while a calibration layer is slow, which on a machine busy for hours is always).
MEASURE=(--threads 1 --sweeps 15 --pause-ms 300 --gate-tolerance 0)
NA=docs/netadapt/$MODEL
stages=("$@")
[ ${#stages[@]} -gt 0 ] || stages=(adapt-0.5 adapt-0.25 prune eliminate docs)
scripts/fetch-data.sh >/dev/null
mkdir -p "$NA"
if [ ! -f "$CHECKPOINT" ]; then
  mkdir -p "$(dirname "$CHECKPOINT")"
  "$J" train --model "$MODEL" --data "$DATA" --seed 1 --epochs 3 --out "$CHECKPOINT"
fi
load() { echo "$1 $(date -u +%FT%T) load $(cut -d' ' -f1-3 /proc/loadavg)" >> "$NA/load.txt"; }
# The table: 31 sweeps 1.5 s apart, so each entry's median is the machine's usual state, not
# the phase it happened to be timed in; streamed (the default context, probes chained in the
# network's order): 3.7-3.8 minutes for either MobileNet at load 3 (session 8).
[ -f "$NA/$MODEL.lut.json" ] || "$J" lut build "$CHECKPOINT" --levels 8 --threads 1 --sweeps 31 \
  --pause-ms 1500 --gate-tolerance 0 \
  --out "$NA/$MODEL.lut.json" | tail -1 | tee -a "$NA/load.txt"
adapt() {  # fraction seed [extra options]
  local fraction=$1 seed=$2 run="latency-$1-seed$2"
  shift 2
  rm -rf "${NA:?}/$run"
  load "$run start"
  "$J" adapt --model "$CHECKPOINT" --data "$DATA" --lut "$NA/$MODEL.lut.json" --levels 8 \
    --holdout "$HOLDOUT" --train-samples "$TRAIN_SAMPLES" --short-term-batches 40 \
    --long-term-epochs 1 --initial-reduction 0.1 --decay 0.96 --iterations 30 --seed "$seed" \
    --train-threads 1 "${MEASURE[@]}" --budget "latency=${fraction}x" --out "$NA/$run" "$@" \
    > "$NA/$run.txt"
  load "$run end"
  # Networks are not committed (.gitignore); the summary, validation and plots are.
}
for stage in "${stages[@]}"; do
  case $stage in
    # 0.5x also fine-tunes the uniform network of every width (its accuracy-latency curve); the
    # curve depends on the seed only, so the 0.25x runs are read against the same seed's.
    adapt-0.5) for s in $SEEDS; do adapt 0.5 "$s" --baseline-curve; done ;;
    adapt-0.25) for s in $SEEDS; do adapt 0.25 "$s"; done ;;
    prune)
      # EAP vs magnitude on eyeriss, 1 point of validation accuracy, selection on the holdout.
      work=target/mobile/prune
      out=docs/prune/$MODEL-$DATA
      mkdir -p "$work" "$out"
      rm -rf "$work/magnitude" "$work/eap"
      common=(--model "$CHECKPOINT" --data "$DATA" --hw eyeriss --max-drop 1 --seed 1
              --holdout "$HOLDOUT" --train-samples "$TRAIN_SAMPLES" --finetune-epochs 1 --threads 1)
      load "prune start"
      "$J" prune --method magnitude "${common[@]}" --out "$work/magnitude" > "$out/magnitude.txt"
      "$J" prune --method eap "${common[@]}" --out "$work/eap" --compare "$work/magnitude" > "$out/eap.txt"
      load "prune end"
      cp "$work/magnitude/summary.json" "$out/magnitude-summary.json"
      cp "$work/eap/summary.json" "$out/eap-summary.json"
      cp "$work/eap/tradeoff.svg" "$out/tradeoff.svg"
      cp "$work/magnitude/layers.svg" "$out/layers-magnitude.svg"
      cp "$work/eap/layers.svg" "$out/layers-eap.svg"
      cp "$work/eap/table.md" "$out/table.md"
      ;;
    eliminate)
      work=target/mobile/eliminate
      out=docs/eliminate/$MODEL
      rm -rf "$work"
      mkdir -p "$out"
      load "eliminate start"
      # Every layer joule can eliminate in (for mobilenetv2-28 only the head: the others
      # feed a depthwise CONV or a residual add).
      "$J" eliminate --model "$CHECKPOINT" --data "$DATA" --layer all --max-drop 2 \
        --holdout "$HOLDOUT" --seed 1 --samples "$TRAIN_SAMPLES" --hw eyeriss --threads 1 \
        --out "$work" > "$out/log.txt" 2>&1
      load "eliminate end"
      cp "$work/summary.json" "$work/tables.md" "$work/curves-eyeriss.svg" "$out/"
      ;;
    docs)
      # The chart of docs/netadapt.md (test accuracy against predicted latency, every seed)
      # and every generated table of the docs.
      runs=()
      for f in 0.5 0.25; do for s in $SEEDS; do
        [ -d "$NA/latency-$f-seed$s" ] && runs+=("$NA/latency-$f-seed$s")
      done; done
      "$J" docs-tables chart netadapt-seeds "$NA/seeds.svg" "${runs[@]}"
      scripts/docs-tables.sh
      ;;
    *) echo "unknown stage $stage (adapt-0.5 adapt-0.25 prune eliminate docs)" >&2; exit 2 ;;
  esac
done
