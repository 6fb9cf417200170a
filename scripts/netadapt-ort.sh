#!/usr/bin/env bash
# NetAdapt driven by an onnxruntime latency table (issue 17 item 5, docs/netadapt.md section
# "NetAdapt for onnxruntime"): the model's channel grid written as ONNX probes, timed by
# onnxruntime (scripts/lut-ort.py), imported as a table; NetAdapt adapts the model to
# LATENCY x its predicted onnxruntime latency; every family member (iter_*.onnx, final,
# baseline) is then timed by onnxruntime the same way and compared with the table's
# prediction. Prints the prediction-error table and renders it into docs/netadapt.md.
#
#   scripts/netadapt-ort.sh                 # LeNet-5 on Fashion-MNIST, a few minutes
#   MODEL=vgg-small LEVELS=8 scripts/netadapt-ort.sh
#
# Results (committed): docs/netadapt/ort/<model>/{timings,lut,networks,check}.json and
# check.txt; work files (probes, checkpoint, family) under target/netadapt-ort/<model>/.
# JOULE: a joule binary to use instead of building target/release/joule here.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -n "${JOULE:-}" ] || cargo build --release -q -p joule-cli
J=${JOULE:-target/release/joule}
PY=${PY:-.venv/bin/python}
MODEL=${MODEL:-lenet5}
DATA=${DATA:-fashion-mnist}
EPOCHS=${EPOCHS:-1}
LEVELS=${LEVELS:-8}
LATENCY=${LATENCY:-0.5}
R0=${R0:-0.05}
ITERATIONS=${ITERATIONS:-12}
HOLDOUT=${HOLDOUT:-1000}
SAMPLES=${SAMPLES:-5000}
SHORT=${SHORT:-20}
THREADS=${THREADS:-1}
# The runner's timing context (isolated: the runner's default, which predicted onnxruntime's
# networks here; streamed: chained in the network's order, docs/netadapt.md says how it did).
CONTEXT=${CONTEXT:-isolated}
WORK=target/netadapt-ort/$MODEL
OUT=docs/netadapt/ort/$MODEL
scripts/fetch-data.sh >/dev/null
mkdir -p "$WORK" "$OUT"
echo "start: $(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg)" | tee "$OUT/load.txt"
CHECKPOINT=$WORK/$MODEL-$DATA.safetensors
[ -f "$CHECKPOINT" ] || $J train --model "$MODEL" --data "$DATA" --epochs "$EPOCHS" \
  --holdout "$HOLDOUT" --seed 1 --out "$CHECKPOINT" | tail -1
rm -rf "$WORK/probes" "$WORK/adapt"
$J lut probes "$CHECKPOINT" --levels "$LEVELS" --out "$WORK/probes"
$PY scripts/lut-ort.py table "$WORK/probes" --threads "$THREADS" --context "$CONTEXT" --out "$OUT/timings.json"
$J lut import --probes "$WORK/probes" --timings "$OUT/timings.json" --out "$OUT/lut.json"
echo "table built: $(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/load.txt"
# --no-measure: joule's engine is not the runtime the table describes; onnxruntime times the
# family below.
$J adapt --model "$CHECKPOINT" --data "$DATA" --lut "$OUT/lut.json" --no-measure \
  --budget "latency=${LATENCY}x" --levels "$LEVELS" --holdout "$HOLDOUT" --train-samples "$SAMPLES" \
  --iterations "$ITERATIONS" --short-term-batches "$SHORT" --long-term-epochs 1 \
  --initial-reduction "$R0" --decay 0.96 --seed 1 --out "$WORK/adapt" | tail -2
$PY scripts/lut-ort.py networks "$WORK/adapt/original.onnx" "$WORK"/adapt/iter_*.onnx "$WORK/adapt/final.onnx" \
  "$WORK/adapt/baseline.onnx" --probes "$WORK/probes" --table-timings "$OUT/timings.json" \
  --out "$OUT/networks.json"
echo "family measured: $(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/load.txt"
$J lut check --lut "$OUT/lut.json" --timings "$OUT/networks.json" --json "$OUT/check.json" \
  | tee "$OUT/check.txt"
# Render into docs/netadapt.md between this section's markers.
$PY - "$MODEL" "$OUT" <<'EOF'
import json, sys
model, out = sys.argv[1:]
begin = f"<!-- generated: scripts/netadapt-ort.sh ({model}) -->"
end = f"<!-- end generated: scripts/netadapt-ort.sh ({model}) -->"
check = open(f"{out}/check.txt").read().strip()
t = json.load(open(f"{out}/timings.json"))
n = json.load(open(f"{out}/networks.json"))
def state(m):
    b, a = m["machine"]["before"], m["machine"]["after"]
    la = lambda s: "/".join(f"{v:.2f}" for v in s["load_average"]) if s["load_average"] else "unknown"
    mhz = lambda s: f"{s['cpu_mhz']:.0f} MHz" if s.get("cpu_mhz") else "unknown MHz"
    steal = m["machine"].get("steal_fraction")
    return f"load {la(b)} -> {la(a)}, {mhz(b)} -> {mhz(a)}, steal {100 * steal:.1f}%" if steal is not None else f"load {la(b)} -> {la(a)}, {mhz(b)} -> {mhz(a)}"
rt = t["runtime"]
body = (f"onnxruntime {rt['version']}, {rt['provider']}, {rt['threads']} thread(s), graph optimisation `{rt['opt_level']}`, {t['measure'].get('context', 'isolated')} table; "
        f"{len(t['probes'])} probes.\n"
        f"Table measured {t['machine']['before']['time']}: {state(t)}; calibration {t['calibration_ms']:.4f} ms, state {t['state_ms']:.4f} ms.\n"
        f"Family measured {n['machine']['before']['time']}: {state(n)}.\n\n" + check)
path = "docs/netadapt.md"
doc = open(path).read()
section = f"{begin}\n{body}\n{end}"
if begin in doc and end in doc:
    doc = doc[: doc.index(begin)] + section + doc[doc.index(end) + len(end):]
else:
    doc = doc.rstrip("\n") + "\n\n" + section + "\n"
import os, tempfile
fd, tmp = tempfile.mkstemp(dir="docs", prefix=".netadapt-")
with os.fdopen(fd, "w") as f:
    f.write(doc)
os.replace(tmp, path)
EOF
echo "done: $(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/load.txt"
