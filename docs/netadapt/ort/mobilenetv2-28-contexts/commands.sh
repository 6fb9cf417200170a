#!/usr/bin/env bash
set -euo pipefail
cd "$(dirname "$0")/../../../.."
J=${JOULE:-target/release/joule}; PY=.venv/bin/python
R=docs/netadapt/mobilenetv2-28/latency-0.5-seed1
W=target/ort-mbv2; rm -rf $W; mkdir -p $W
cp $R/*.onnx $W/ 2>/dev/null || true
mkdir -p $W/fam && mv $W/*.onnx $W/fam/
st() { echo "$1 $(date -u +%FT%T) load $(cut -d' ' -f1-3 /proc/loadavg)"; }
st start
$J lut probes $R/original.safetensors --levels 8 --out $W/probes
for ctx in streamed isolated; do
  st "table $ctx"
  $PY scripts/lut-ort.py table $W/probes --context $ctx --threads 1 --gate-tolerance 0 --out $W/timings-$ctx.json
  $J lut import --probes $W/probes --timings $W/timings-$ctx.json --out $W/lut-$ctx.json
done
for ctx in streamed isolated; do
  st "family $ctx"
  $PY scripts/lut-ort.py networks $W/fam/*.onnx --probes $W/probes --table-timings $W/timings-$ctx.json --out $W/networks-$ctx.json
done
st checks
for t in streamed isolated; do for f in streamed isolated; do
  echo "== table $t, family measured with the $f table's settings"
  $J lut check --lut $W/lut-$t.json --timings $W/networks-$f.json
done; done
st end
#!/usr/bin/env bash
set -euo pipefail
cd "$(dirname "$0")/../../../.."
J=${JOULE:-target/release/joule}; PY=.venv/bin/python
W=target/ort-mbv2
st() { echo "$1 $(date -u +%FT%T) load $(cut -d' ' -f1-3 /proc/loadavg)"; }
for ctx in isolated streamed; do
  st "table $ctx extended"
  $PY scripts/lut-ort.py table $W/probes --context $ctx --opt-level extended --threads 1 --gate-tolerance 0 --out $W/timings-$ctx-ext.json
  $J lut import --probes $W/probes --timings $W/timings-$ctx-ext.json --out $W/lut-$ctx-ext.json
done
st "family extended"
$PY scripts/lut-ort.py networks $W/fam/*.onnx --probes $W/probes --table-timings $W/timings-isolated-ext.json --out $W/networks-ext.json
for ctx in isolated streamed; do
  echo "== table $ctx extended"
  $J lut check --lut $W/lut-$ctx-ext.json --timings $W/networks-ext.json
done
st "family all again"
$PY scripts/lut-ort.py networks $W/fam/*.onnx --probes $W/probes --table-timings $W/timings-isolated.json --out $W/networks-all2.json
echo "== table isolated all, family again"
$J lut check --lut $W/lut-isolated.json --timings $W/networks-all2.json
st end
