#!/usr/bin/env bash
set -euo pipefail
cd "$(dirname "$0")/../../../.."
# Note: netadapt-ort.sh rewrites docs/netadapt/ort/lenet5 and its region of docs/netadapt.md (restore them with git checkout).
export JOULE=${JOULE:-target/release/joule}  # a joule with `lut probes` writing steps and node.onnx (commit 9f6d565 on)
start=$(date +%s)
CONTEXT=streamed scripts/netadapt-ort.sh  # streamed was the runner's default when this ran
echo "netadapt-ort.sh: $(( $(date +%s) - start )) s"
W=target/netadapt-ort/lenet5; O=docs/netadapt/ort/lenet5
echo "isolated table start $(date -u +%FT%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
.venv/bin/python scripts/lut-ort.py table $W/probes --context isolated --threads 1 --out $W/timings-isolated.json
$JOULE lut import --probes $W/probes --timings $W/timings-isolated.json --out $W/lut-isolated.json
echo "isolated table end $(date -u +%FT%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
$JOULE lut check --lut $W/lut-isolated.json --timings $O/networks.json | tee $W/check-isolated-same-family.txt
# The family again, against the isolated table's settings (its drift in the isolated context).
.venv/bin/python scripts/lut-ort.py networks $W/adapt/original.onnx $W/adapt/iter_*.onnx $W/adapt/final.onnx $W/adapt/baseline.onnx --probes $W/probes --table-timings $W/timings-isolated.json --out $W/networks-isolated.json
$JOULE lut check --lut $W/lut-isolated.json --timings $W/networks-isolated.json | tee $W/check-isolated.txt
$JOULE lut check --lut $O/lut.json --timings $W/networks-isolated.json | tee $W/check-streamed-second-family.txt
echo "end $(date -u +%FT%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
