#!/usr/bin/env python3
"""The flexibility study of docs/flexibility.md (issue #20, seed 000 Fig. 3).

Runs `joule energy` and `joule eyexam` (JSON) for AlexNet, MobileNet (dense, and sparse:
half the weights and ifmaps zero) and SqueezeNet at batch 1 and 16 on eyeriss,
eyeriss-v2-like and the equal-area systolic and NVDLA-like machines of docs/flexibility/,
and writes docs/flexibility/results.md (the tables) and docs/flexibility/results.json.
Usage: scripts/flexibility-study.py [path/to/joule]   (default: target/release/joule)
"""
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
JOULE = sys.argv[1] if len(sys.argv) > 1 else str(ROOT / "target/release/joule")
# (label, --hw, --dataflow): each machine under its own dataflow.
MACHINES = [
    ("Eyeriss v1", "eyeriss", "rs"),
    ("Eyeriss v2-like", "eyeriss-v2-like", "rs"),
    ("systolic (WS)", "docs/flexibility/systolic-192.yaml", "ws"),
    ("NVDLA-like (C x K)", "docs/flexibility/nvdla-192.yaml", "nlr"),
]
# (label, model, extra flags)
MODELS = [
    ("AlexNet", "alexnet", []),
    ("MobileNet", "mobilenet", []),
    ("MobileNet sparse", "mobilenet", ["--weight-density", "0.5", "--ifmap-density", "0.5"]),
    ("SqueezeNet", "squeezenet", []),
]
BATCHES = [1, 16]
STEPS = ["peak", "dataflow", "array_shape", "fit", "storage", "mapping", "bandwidth", "sparsity"]


def joule(*args):
    out = subprocess.run([JOULE, *args], cwd=ROOT, check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def largest_loss(total):
    worst = min(
        ((b["macs_per_cycle"] / a["macs_per_cycle"], b["step"]) for a, b in zip(total, total[1:])),
        default=(1.0, "-"),
    )
    return "-" if worst[0] > 1 - 1e-9 else f"{worst[1].replace('_', ' ')} {worst[0]:.2f}x"


def main():
    rows = []
    for label, model, extra in MODELS:
        for batch in BATCHES:
            for name, hw, dataflow in MACHINES:
                args = [model, "--hw", hw, "--dataflow", dataflow, "--batch", str(batch), *extra, "--json"]
                energy = joule("energy", *args)
                exam = joule("eyexam", *args)
                total = exam["total"]
                rows.append({
                    "model": label,
                    "batch": batch,
                    "machine": name,
                    "hw": hw,
                    "dataflow": dataflow,
                    "pes": exam["pes"],
                    "macs": energy["total"]["macs"],
                    "cycles": energy["total"]["cycles"],
                    "energy": energy["total"]["energy"]["total"],
                    "area_mm2": energy["area"]["total"],
                    "utilization": total[-1]["macs_per_cycle"] / exam["pes"],
                    "steps": {b["step"]: b["macs_per_cycle"] for b in total},
                    "largest_loss": largest_loss(total),
                })
    # Eyexam charts: sparse MobileNet at batch 1 on each machine.
    for name, hw, dataflow in MACHINES:
        slug = Path(hw).stem
        subprocess.run(
            [JOULE, "eyexam", "mobilenet", "--hw", hw, "--dataflow", dataflow,
             "--weight-density", "0.5", "--ifmap-density", "0.5",
             "--svg", f"docs/flexibility/eyexam-mobilenet-sparse-{slug}.svg"],
            cwd=ROOT, check=True, capture_output=True,
        )
    (ROOT / "docs/flexibility/results.json").write_text(json.dumps(rows, indent=1) + "\n")
    lines = [
        "<!-- written by scripts/flexibility-study.py; do not edit -->",
        "",
        "| model | batch | machine | area mm² | cycles / image | energy / image (MAC units) | non-zero MACs/cycle (util.) | largest Eyexam loss |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['batch']} | {r['machine']} | {r['area_mm2']:.2f} | "
            f"{r['cycles'] / r['batch']:.3g} | {r['energy'] / r['batch']:.3g} | "
            f"{r['steps']['sparsity']:.1f} ({100 * r['utilization']:.1f}%) | {r['largest_loss']} |"
        )
    lines += ["", "Non-zero MACs per cycle after each Eyexam step, batch 1:", ""]
    lines.append("| model | machine | " + " | ".join(s.replace("_", " ") for s in STEPS) + " |")
    lines.append("|---|---|" + "---|" * len(STEPS))
    for r in rows:
        if r["batch"] == 1:
            lines.append(
                f"| {r['model']} | {r['machine']} | "
                + " | ".join(f"{r['steps'][s]:.1f}" for s in STEPS)
                + " |"
            )
    # Eyeriss v2 against v1 on MobileNet at batch 1 (published: 12.6x faster, 2.5x less
    # energy on sparse MobileNet).
    def pick(model, machine):
        return next(r for r in rows if r["model"] == model and r["machine"] == machine and r["batch"] == 1)
    lines += ["", "Eyeriss v2-like over Eyeriss v1, batch 1:", "",
              "| model | speed-up | energy-efficiency gain |", "|---|---|---|"]
    for model in ["MobileNet", "MobileNet sparse", "AlexNet"]:
        v1, v2 = pick(model, "Eyeriss v1"), pick(model, "Eyeriss v2-like")
        lines.append(f"| {model} | {v1['cycles'] / v2['cycles']:.2f}x | {v1['energy'] / v2['energy']:.2f}x |")
    (ROOT / "docs/flexibility/results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
