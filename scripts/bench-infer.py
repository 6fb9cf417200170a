#!/usr/bin/env python3
"""Driver of scripts/bench-infer.sh: joule's engine against onnxruntime, interleaved.

  bench-infer.py JOULE_BIN DIR [--models M,...] [--threads 1,2] [--rounds 3] [--seconds 0.3]

For every model, batch and thread count it writes one seeded input (normal, seed 0), runs
joule (`JOULE_BIN run`, its own process, RAYON_NUM_THREADS=T) and onnxruntime (this script's
`ort` mode in its own process, intra_op_num_threads=T, inter_op 1) on the same ONNX file and
input, checks that both outputs agree within 1e-4 (relative to the output's largest magnitude,
at least 1) before anything is timed, then runs ROUNDS rounds, the two alternating which goes
first (A B, B A, ...), each timing forward passes for SECONDS after a warm-up. It prints a
markdown table: min and median seconds per batch of each side over all rounds, the ratio of
medians (above 1: joule slower) and of mins, and the 1-minute load average before and after the
row. A row whose load before it exceeded 1 per core is flagged LOADED, and its ratio is not a
result; a row whose outputs differ prints MISMATCH instead of times.

  bench-infer.py ort MODEL.onnx BATCH INPUT.bin OUTPUT.bin THREADS SECONDS
is onnxruntime's worker (same protocol as joule's `run`).
"""

import argparse
import os
import sys
import time

import numpy as np

from benchrun import cpu, load1, times_of

# Inputs: the zoo's own networks at their native size, torchvision's as the exported fixtures
# (3x112x112, a stated smaller input than 224 so that the table runs in minutes). Big batch:
# 64 for the small networks, 16 for the 112x112 ones (64 would take ~1 s per pass each side).
ZOO = {"lenet5": 64, "vgg-small": 64}
TORCH = {"resnet18": 16, "mobilenet_v2": 16, "efficientnet_b0": 16}
FIXTURES = "tests/fixtures/torch"


def ort_worker(model, batch, input_path, output_path, threads, seconds):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = int(threads)
    opts.inter_op_num_threads = 1
    session = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
    inp = session.get_inputs()[0]
    sample = [d for d in inp.shape[1:]]
    x = np.fromfile(input_path, dtype="<f4").reshape([int(batch)] + sample)
    y = session.run(None, {inp.name: x})[0]
    y.astype("<f4").tofile(output_path)
    session.run(None, {inp.name: x})
    times = []
    start = time.perf_counter()
    while len(times) < 3 or (time.perf_counter() - start < float(seconds) and len(times) < 500):
        t = time.perf_counter()
        session.run(None, {inp.name: x})
        times.append(time.perf_counter() - t)
    print("times " + " ".join(f"{t:.7f}" for t in times))


def dynamic_batch(src, dst):
    """A copy of `src` whose input and output batch dimension is symbolic, so onnxruntime takes
    any batch; joule's engine takes any batch of the file as it is."""
    import onnx

    model = onnx.load(src)
    for v in list(model.graph.input[:1]) + list(model.graph.output):
        v.type.tensor_type.shape.dim[0].dim_param = "N"
    # Shapes recorded for intermediate values carry batch 1; onnxruntime infers its own.
    del model.graph.value_info[:]
    onnx.save(model, dst)


def fmt(seconds):
    return f"{seconds * 1e3:.3f}" if seconds < 10 else f"{seconds:.1f} s"


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "ort":
        ort_worker(*sys.argv[2:8])
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("joule")
    ap.add_argument("dir")
    ap.add_argument("--models", default=",".join(list(ZOO) + list(TORCH)))
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=0.3)
    args = ap.parse_args()
    cores = os.cpu_count()
    print(f"cpu: {cpu()}; cores: {cores}; load average at start: "
          f"{open('/proc/loadavg').read().split()[:3]}")
    print()
    print("| model | input | batch | threads | joule ms/batch min / median | onnxruntime ms/batch min / median "
          "| joule / ort (median) | (min) | load before / after |")
    print("|---|---|---|---|---|---|---|---|---|")
    loaded_rows = 0
    for name in args.models.split(","):
        big = ZOO.get(name) or TORCH.get(name)
        if big is None:
            sys.exit(f"bench-infer.py: --models: unknown model {name!r}")
        path = f"{args.dir}/{name}.onnx" if name in ZOO else f"{FIXTURES}/{name}-op13-perturbed.onnx"
        if not os.path.exists(path):
            sys.exit(f"bench-infer.py: {path}: missing")
        dyn = f"{args.dir}/{name}-dyn.onnx"
        dynamic_batch(path, dyn)
        import onnx

        dims = onnx.load(path, load_external_data=False).graph.input[0].type.tensor_type.shape.dim
        sample = [d.dim_value for d in dims[1:]]
        for batch in (1, big):
            x = np.random.default_rng(0).standard_normal([batch] + sample).astype("<f4")
            xin = f"{args.dir}/{name}-{batch}.in"
            x.tofile(xin)
            for threads in [int(t) for t in args.threads.split(",")]:
                before = load1()
                env = dict(os.environ, RAYON_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
                jout, oout = f"{args.dir}/joule.out", f"{args.dir}/ort.out"
                joule_cmd = [args.joule, "run", path, str(batch), xin, jout, str(args.seconds)]
                ort_cmd = [sys.executable, __file__, "ort", dyn, str(batch), xin, oout, str(threads),
                           str(args.seconds)]
                sides = {"joule": [], "ort": []}
                for r in range(args.rounds):
                    order = [("joule", joule_cmd), ("ort", ort_cmd)]
                    for side, cmd in order if r % 2 == 0 else order[::-1]:
                        sides[side] += times_of(cmd, env)
                    if r == 0:
                        a, b = np.fromfile(jout, "<f4"), np.fromfile(oout, "<f4")
                        scale = max(1.0, float(np.abs(b).max()))
                        err = float(np.abs(a - b).max()) / scale if a.shape == b.shape else float("inf")
                        if not err <= 1e-4:
                            break
                after = load1()
                label = f"| {name} | {'x'.join(map(str, sample))} | {batch} | {threads} |"
                if not err <= 1e-4:
                    print(f"{label} MISMATCH: outputs differ by {err:.2e} (relative) | | | | {before:.2f} / {after:.2f} |")
                    continue
                j, o = sorted(sides["joule"]), sorted(sides["ort"])
                jm, om = j[len(j) // 2], o[len(o) // 2]
                flag = ""
                if before > cores:
                    flag = " LOADED"
                    loaded_rows += 1
                print(f"{label} {fmt(j[0])} / {fmt(jm)} | {fmt(o[0])} / {fmt(om)} "
                      f"| {jm / om:.2f}x{flag} | {j[0] / o[0]:.2f}x | {before:.2f} / {after:.2f} |",
                      flush=True)
    print()
    print(f"load average at end: {open('/proc/loadavg').read().split()[:3]}; outputs checked equal "
          f"within 1e-4 before timing; {args.rounds} alternating rounds of >= {args.seconds} s per side.")
    if loaded_rows:
        print(f"{loaded_rows} row(s) ran with the 1-minute load above 1 per core ({cores} cores): "
              "flagged LOADED, not results.")


if __name__ == "__main__":
    main()
