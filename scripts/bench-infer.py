#!/usr/bin/env python3
"""onnxruntime's side of scripts/bench-infer.sh: times MODEL.onnx at batch 1 and 64 with the
same method as joule's bench_infer example (warm-up, median of repeats) and prints
`model batch seconds_per_batch` lines. Usage: bench-infer.py DIR THREADS MODEL..."""

import sys
import time

import numpy as np
import onnxruntime as ort


def median_seconds(run, repeats):
    for _ in range((repeats + 4) // 5):
        run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    times.sort()
    return times[len(times) // 2]


def main():
    directory, threads, models = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    for name in models:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        session = ort.InferenceSession(f"{directory}/{name}.onnx", opts, providers=["CPUExecutionProvider"])
        inp = session.get_inputs()[0]
        sample = [d if isinstance(d, int) else 1 for d in inp.shape]
        for batch, repeats in ((1, 200), (64, 20)):
            x = np.full([batch] + sample[1:], 0.5, dtype=np.float32)
            seconds = median_seconds(lambda: session.run(None, {inp.name: x}), repeats)
            print(f"{name} {batch} {seconds:.6f}")


if __name__ == "__main__":
    main()
