"""The Python package's call against the CLI on the same estimate, interleaved.

Alternates, pair by pair: one `joule energy MODEL --hw HW --json` process (wall time of the
whole process) and one in-process `joule.energy(MODEL, hw=HW)` call (wall time of the call);
prints min and median of each, the median of the per-pair ratios call/CLI, and the load
average before and after. Both results are checked equal first.

    .venv/bin/python scripts/bench-python.py --model resnet50 --hw eyeriss --pairs 40
"""

import argparse
import json
import os
import statistics
import subprocess
import time

import joule

p = argparse.ArgumentParser()
p.add_argument("--model", default="resnet50")
p.add_argument("--hw", default="eyeriss")
p.add_argument("--pairs", type=int, default=40)
p.add_argument("--joule", default=os.path.join(os.path.dirname(__file__), "..", "target", "release", "joule"))
args = p.parse_args()

cmd = [args.joule, "energy", args.model, "--hw", args.hw, "--json"]
cli_total = json.loads(subprocess.run(cmd, check=True, capture_output=True).stdout)["total"]["energy"]["total"]
assert joule.energy(args.model, hw=args.hw).total == cli_total, "the call and the CLI disagree"
load_before = os.getloadavg()[0]
cli, call = [], []
for _ in range(args.pairs):
    t = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    cli.append(time.perf_counter() - t)
    t = time.perf_counter()
    joule.energy(args.model, hw=args.hw)
    call.append(time.perf_counter() - t)
load_after = os.getloadavg()[0]
ratios = [a / b for a, b in zip(call, cli)]
ms = lambda xs: f"min {1000 * min(xs):.1f} ms, median {1000 * statistics.median(xs):.1f} ms"
print(f"{args.model} on {args.hw}, {args.pairs} pairs, load average {load_before:.2f} before, {load_after:.2f} after")
print(f"CLI process:  {ms(cli)}")
print(f"Python call:  {ms(call)}")
print(f"call / CLI, pair by pair: median {statistics.median(ratios):.3f}, min {min(ratios):.3f}, max {max(ratios):.3f}")
