#!/usr/bin/env python3
"""The flexibility study of docs/flexibility.md (issue #20, seed 000 Fig. 3).

Runs `joule energy` and `joule eyexam` (JSON) for AlexNet, MobileNet (dense, and sparse:
half the weights and ifmaps zero) and SqueezeNet at batch 1 and 16 on eyeriss,
eyeriss-v2-like and the equal-area systolic and NVDLA-like machines of docs/flexibility/,
and writes docs/flexibility/results.md (the tables), docs/flexibility/results.json and
docs/flexibility/machines.svg (every model on the four machines at batch 1: throughput and
energy, one chart).
Usage: scripts/flexibility-study.py [path/to/joule]   (default: target/release/joule)
"""
import json
import math
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


COLORS = ["#0072b2", "#e69f00", "#009e73", "#d55e00"]  # Okabe & Ito, as crates/report


def esc(text):
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def nice_ticks(hi, count=5):
    """Round tick values from 0 to at least `hi`."""
    raw = hi / count
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    ticks = [0.0]
    while ticks[-1] < hi:
        ticks.append(ticks[-1] + step)
    return ticks


def grouped_panel(x0, y0, w, h, title, y_label, groups, machines, value, fmt):
    """One panel of grouped bars: a group per model, a bar per machine."""
    out = [f'<text x="{x0 + w / 2}" y="{y0 - 14}" text-anchor="middle" font-size="17">{esc(title)}</text>']
    values = [[value(g, m) for m in machines] for g in groups]
    ticks = nice_ticks(max(v for row in values for v in row))
    top = ticks[-1]
    for t in ticks:
        y = y0 + h - h * t / top
        out.append(f'<line x1="{x0}" x2="{x0 + w}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e5e5e5"/>')
        out.append(f'<text x="{x0 - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="12">{fmt(t)}</text>')
    out.append(f'<text transform="translate({x0 - 58},{y0 + h / 2}) rotate(-90)" text-anchor="middle" '
               f'font-size="13">{esc(y_label)}</text>')
    gw = w / len(groups)
    bw = gw * 0.8 / len(machines)
    for gi, (g, row) in enumerate(zip(groups, values)):
        gx = x0 + gi * gw + gw * 0.1
        for mi, (m, v) in enumerate(zip(machines, row)):
            bh = h * v / top
            x, y = gx + mi * bw, y0 + h - bh
            out.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bw - 1:.1f}" height="{bh:.1f}" '
                       f'fill="{COLORS[mi]}"><title>{esc(g)} on {esc(m)}: {fmt(v)}</title></rect>')
        out.append(f'<text x="{x0 + gi * gw + gw / 2:.1f}" y="{y0 + h + 18}" text-anchor="middle" '
                   f'font-size="13">{esc(g)}</text>')
    out.append(f'<line x1="{x0}" x2="{x0 + w}" y1="{y0 + h}" y2="{y0 + h}" stroke="#333"/>')
    out.append(f'<line x1="{x0}" x2="{x0}" y1="{y0}" y2="{y0 + h}" stroke="#333"/>')
    return out


def machines_svg(rows):
    """Every model on the four machines at batch 1: non-zero MACs per cycle (what the array
    does with its PEs) and energy per image relative to Eyeriss v1."""
    groups = [label for label, _, _ in MODELS]
    machines = [name for name, _, _ in MACHINES]
    at = {(r["model"], r["machine"]): r for r in rows if r["batch"] == 1}
    W, H = 1100, 470
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
           f'font-family="sans-serif"><rect width="{W}" height="{H}" fill="white"/>']
    out += grouped_panel(
        90, 60, 420, 300, "Throughput, batch 1", "non-zero MACs per cycle", groups, machines,
        lambda g, m: at[(g, m)]["steps"]["sparsity"], lambda v: f"{v:g}")
    out += grouped_panel(
        640, 60, 420, 300, "Energy per image, batch 1", "relative to Eyeriss v1 (lower is better)",
        groups, machines, lambda g, m: at[(g, m)]["energy"] / at[(g, "Eyeriss v1")]["energy"],
        lambda v: f"{v:.2f}")
    for mi, m in enumerate(machines):
        area = at[(groups[0], m)]["area_mm2"]
        pes = at[(groups[0], m)]["pes"]
        label = f"{m} ({pes} PEs, {area:.2f} mm²)"
        lx, ly = 200 + 420 * (mi % 2), H - 62 + 24 * (mi // 2)
        out.append(f'<rect x="{lx}" y="{ly}" width="14" height="14" fill="{COLORS[mi]}"/>')
        out.append(f'<text x="{lx + 20}" y="{ly + 12}" font-size="13">{esc(label)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


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
    (ROOT / "docs/flexibility/machines.svg").write_text(machines_svg(rows))
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
