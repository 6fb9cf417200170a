#!/usr/bin/env bash
# Benchmark (not a test): joule's energy mapper vs the nn_dataflow peer on AlexNet, isca16
# (16x16 PEs, 128 KB buffer, 512 B RF, MAC/RF/array/buffer/DRAM = 1/1/2/6/200), batch 16.
# Prints time and total energy (MAC-normalized) of each and the ratios.
# Usage: scripts/bench-energy.sh      (installs scripts/requirements-bench.txt into .venv-bench)
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv-bench
scripts/pip-env.sh "$venv" scripts/requirements-bench.txt
cargo build -q --release -p joule-cli
joule=target/release/joule
"$joule" energy alexnet --hw isca16 --batch 16 --json >/dev/null # warm the page cache
start=$(date +%s.%N)
json=$("$joule" energy alexnet --hw isca16 --batch 16 --json)
end=$(date +%s.%N)
joule_time=$(echo "$end - $start" | bc -l)
joule_energy=$(printf '%s' "$json" | "$venv/bin/python" -c 'import json,sys; print(json.load(sys.stdin)["total"]["energy"]["total"])')
peer=$("$venv/bin/python" scripts/nn_dataflow_alexnet.py 16)
peer_time=$(printf '%s\n' "$peer" | awk '/^nn_dataflow_time_s/ {print $2}')
peer_energy=$(printf '%s\n' "$peer" | awk '/^nn_dataflow_total_energy/ {print $2}')
printf '%s\n' "$peer" | sed -n '1,9p'
printf 'joule        time %8.3f s   total energy %.6e\n' "$joule_time" "$joule_energy"
printf 'nn_dataflow  time %8.3f s   total energy %.6e\n' "$peer_time" "$peer_energy"
"$venv/bin/python" - "$joule_time" "$peer_time" "$joule_energy" "$peer_energy" <<'PY'
import sys
jt, pt, je, pe = map(float, sys.argv[1:])
print(f"speedup (nn_dataflow time / joule time): {pt / jt:.0f}x")
print(f"energy ratio (joule / nn_dataflow): {je / pe:.4f}")
PY
