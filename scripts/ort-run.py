#!/usr/bin/env python3
"""Runs an ONNX model with onnxruntime on raw little-endian f32 input and writes the output
the same way: the independent runtime joule's exports are checked against.
Usage: ort-run.py MODEL.onnx INPUT.bin N,C,H,W OUTPUT.bin [THREADS]"""

import sys

import numpy as np
import onnxruntime as ort


def main():
    model, inp, shape, out = sys.argv[1:5]
    threads = int(sys.argv[5]) if len(sys.argv) > 5 else 1
    dims = [int(d) for d in shape.split(",")]
    x = np.fromfile(inp, dtype="<f4").reshape(dims)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    # Keep the graph as exported, so the comparison checks joule's ops, not ORT's fusions.
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
    (y,) = session.run(None, {session.get_inputs()[0].name: x})
    np.asarray(y, dtype="<f4").tofile(out)


if __name__ == "__main__":
    main()
