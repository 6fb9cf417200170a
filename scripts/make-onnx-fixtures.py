#!/usr/bin/env python3
"""Writes the ONNX files joule's importer is tested against, made with the official `onnx`
package (an independent producer). Weights are deterministic formulas, so the Rust tests
can check values as well as shapes. Usage: make-onnx-fixtures.py OUT_DIR"""

import json
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 13


def init(name, array):
    return numpy_helper.from_array(np.asarray(array, dtype=np.float32), name)


def pattern(*shape, zero_every=0):
    """Values ((i * 31) % 17 - 8) / 10 over the flat index i; every `zero_every`-th is 0."""
    n = int(np.prod(shape))
    i = np.arange(n)
    v = ((i * 31) % 17 - 8) / 10.0
    if zero_every:
        v[i % zero_every == 0] = 0.0
    return v.reshape(shape).astype(np.float32)


def save(graph, path, opset=OPSET, check=True):
    model = helper.make_model(graph, producer_name="joule-fixtures",
                              opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    if check:
        onnx.checker.check_model(model, full_check=True)
    onnx.save(model, path)


def tensor(name, dims):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, dims)


def tiny_cnn(out):
    """Conv+BN+Relu, MaxPool, grouped Conv, Clip(0,6), GlobalAveragePool, Flatten, Gemm."""
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1",
                         kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[1, 1]),
        helper.make_node("BatchNormalization", ["c1", "bn_s", "bn_b", "bn_m", "bn_v"], ["n1"],
                         name="bn1", epsilon=1e-3),
        helper.make_node("Relu", ["n1"], ["r1"], name="relu1"),
        helper.make_node("MaxPool", ["r1"], ["p1"], name="pool1", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p1", "w2"], ["c2"], name="conv2", group=2, kernel_shape=[3, 3]),
        helper.make_node("Clip", ["c2", "zero", "six"], ["r2"], name="relu6"),
        helper.make_node("GlobalAveragePool", ["r2"], ["g"], name="gap"),
        helper.make_node("Flatten", ["g"], ["f"], name="flatten", axis=1),
        helper.make_node("Gemm", ["f", "w3", "b3"], ["logits"], name="fc", transB=1),
        helper.make_node("Softmax", ["logits"], ["y"], name="prob", axis=1),
    ]
    inits = [
        init("w1", pattern(4, 1, 3, 3)), init("b1", pattern(4)),
        init("bn_s", np.ones(4)), init("bn_b", np.zeros(4)),
        init("bn_m", np.zeros(4)), init("bn_v", np.ones(4)),
        init("w2", pattern(8, 2, 3, 3, zero_every=4)),
        init("zero", np.array(0.0)), init("six", np.array(6.0)),
        init("w3", pattern(10, 8)), init("b3", pattern(10)),
    ]
    g = helper.make_graph(nodes, "tiny_cnn", [tensor("x", ["batch", 1, 8, 8])],
                          [tensor("y", ["batch", 10])], inits)
    save(g, os.path.join(out, "tiny_cnn.onnx"))


def mlp_matmul(out):
    """Reshape (flatten) + MatMul + Add bias, Dropout, Identity: the PyTorch-exporter style."""
    nodes = [
        helper.make_node("Constant", [], ["shape"], name="shape_const",
                         value=numpy_helper.from_array(np.array([1, 784], dtype=np.int64))),
        helper.make_node("Reshape", ["x", "shape"], ["flat"], name="reshape"),
        helper.make_node("MatMul", ["flat", "w1"], ["h1"], name="fc1"),
        helper.make_node("Add", ["h1", "b1"], ["h1b"], name="fc1_bias"),
        helper.make_node("Relu", ["h1b"], ["r1"], name="relu1"),
        helper.make_node("Dropout", ["r1"], ["d1"], name="drop1"),
        helper.make_node("MatMul", ["d1", "w2"], ["h2"], name="fc2"),
        helper.make_node("Add", ["b2", "h2"], ["h2b"], name="fc2_bias"),
        helper.make_node("Identity", ["h2b"], ["y"], name="out"),
    ]
    inits = [
        init("w1", pattern(784, 32, zero_every=2)), init("b1", pattern(32)),
        init("w2", pattern(32, 10)), init("b2", pattern(10)),
    ]
    g = helper.make_graph(nodes, "mlp_matmul", [tensor("x", [1, 1, 28, 28])],
                          [tensor("y", [1, 10])], inits)
    save(g, os.path.join(out, "mlp_matmul.onnx"))


def branches(out):
    """Inception- and residual-style joins: dilated, depthwise and 1x1 CONVs, AveragePool,
    Concat, LRN, Add, ceil-mode MaxPool, GlobalMaxPool, Gemm without transB."""
    nodes = [
        helper.make_node("Conv", ["x", "wa"], ["a"], name="branch_1x1", kernel_shape=[1, 1]),
        helper.make_node("Conv", ["x", "wb"], ["b"], name="branch_dilated",
                         kernel_shape=[3, 3], dilations=[2, 2], pads=[2, 2, 2, 2]),
        helper.make_node("AveragePool", ["x"], ["p"], name="branch_pool",
                         kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["p", "wc"], ["c"], name="branch_dw",
                         kernel_shape=[3, 3], pads=[1, 1, 1, 1], group=16),
        helper.make_node("Concat", ["a", "b", "c"], ["cat"], name="concat", axis=1),
        helper.make_node("LRN", ["cat"], ["n"], name="lrn", size=5),
        helper.make_node("Conv", ["n", "wd"], ["d"], name="project", kernel_shape=[1, 1]),
        helper.make_node("Add", ["d", "x"], ["s"], name="residual"),
        helper.make_node("Relu", ["s"], ["r"], name="relu"),
        helper.make_node("MaxPool", ["r"], ["m"], name="pool", kernel_shape=[3, 3],
                         strides=[2, 2], ceil_mode=1),
        helper.make_node("GlobalMaxPool", ["m"], ["gm"], name="gmp"),
        helper.make_node("Flatten", ["gm"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "wf"], ["y"], name="classifier"),
    ]
    inits = [
        init("wa", pattern(8, 16, 1, 1)), init("wb", pattern(8, 16, 3, 3)),
        init("wc", pattern(16, 1, 3, 3)), init("wd", pattern(16, 32, 1, 1)),
        init("wf", pattern(16, 5)),
    ]
    g = helper.make_graph(nodes, "branches", [tensor("x", [1, 16, 14, 14])],
                          [tensor("y", [1, 5])], inits)
    save(g, os.path.join(out, "branches.onnx"))


def symbolic(out):
    """Every input dimension symbolic: stats need --input-shape."""
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["y"], name="relu"),
    ]
    g = helper.make_graph(nodes, "symbolic", [tensor("x", ["N", "C", "H", "W"])],
                          [tensor("y", ["N", 4, "H", "W"])], [init("w", pattern(4, 3, 3, 3))])
    save(g, os.path.join(out, "symbolic.onnx"))


def unsupported_op(out):
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv", kernel_shape=[1, 1]),
        helper.make_node("Selu", ["c"], ["y"], name="mystery_activation"),
    ]
    g = helper.make_graph(nodes, "unsupported_op", [tensor("x", [1, 3, 8, 8])],
                          [tensor("y", [1, 4, 8, 8])], [init("w", pattern(4, 3, 1, 1))])
    save(g, os.path.join(out, "unsupported_op.onnx"), opset=14)


def concat_mismatch(out):
    """Valid protobuf and valid op set, but the two branches disagree in spatial size."""
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["a"], name="full_res", kernel_shape=[1, 1]),
        helper.make_node("Conv", ["x", "w"], ["b"], name="half_res", kernel_shape=[1, 1], strides=[2, 2]),
        helper.make_node("Concat", ["a", "b"], ["y"], name="bad_concat", axis=1),
    ]
    g = helper.make_graph(nodes, "concat_mismatch", [tensor("x", [1, 3, 8, 8])],
                          [tensor("y", [1, 8, 8, 8])], [init("w", pattern(4, 3, 1, 1))])
    save(g, os.path.join(out, "concat_mismatch.onnx"), check=False)


def reference_shapes(out, names):
    """Per-node output shapes from onnx's own shape inference: an independent reference for
    joule's shape inference (flat tensors are listed as ONNX has them, N x F)."""
    shapes = {}
    for name in names:
        model = onnx.shape_inference.infer_shapes(onnx.load(os.path.join(out, name + ".onnx")), strict_mode=True)
        known = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
                 for v in list(model.graph.value_info) + list(model.graph.output)}
        shapes[name] = {n.name: known[n.output[0]] for n in model.graph.node if n.output[0] in known}
    with open(os.path.join(out, "shapes.json"), "w") as f:
        json.dump(shapes, f, indent=1, sort_keys=True)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/onnx"
    os.makedirs(out, exist_ok=True)
    for make in (tiny_cnn, mlp_matmul, branches, symbolic, unsupported_op, concat_mismatch):
        make(out)
    reference_shapes(out, ["tiny_cnn", "mlp_matmul", "branches"])
    print(f"wrote ONNX fixtures to {out} (onnx {onnx.__version__})")


if __name__ == "__main__":
    main()
