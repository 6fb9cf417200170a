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


def const(name, value, dtype=np.int64):
    """A Constant node holding `value`."""
    return helper.make_node("Constant", [], [name], name=name,
                            value=numpy_helper.from_array(np.asarray(value, dtype=dtype), name))


def attention(out):
    """A one-block vision transformer with a symbolic batch, written the way torch.onnx writes
    it: patch embedding, a Reshape target computed from Shape (Shape -> Gather -> Unsqueeze ->
    Concat), a class token Expanded to the batch, position embedding, LayerNormalization,
    packed QKV projection and Split, two heads (Q K^T, softmax, A V), a scale folded from the
    shape (Shape -> Gather -> Cast -> Sqrt), the opset-13 layer norm decomposition (ReduceMean,
    Sub, Pow, Sqrt, Div), GELU as Erf, and the class token Gathered for a Gemm head.
    MACs per sample by hand: conv 16*3*4*4*2*2 = 3072, qkv 5*16*48 = 3840, Q K^T 2*5*5*8 = 400,
    A V 2*5*8*5 = 400, out 5*16*16 = 1280, fc1 5*16*32 = 2560, fc2 5*32*16 = 2560, head 160."""
    d, t, heads, hd = 16, 5, 2, 8
    nodes = [
        helper.make_node("Conv", ["x", "w_patch", "b_patch"], ["p"], name="patch",
                         kernel_shape=[4, 4], strides=[4, 4]),
        helper.make_node("Shape", ["p"], ["p_shape"], name="p_shape"),
        const("zero", 0),
        helper.make_node("Gather", ["p_shape", "zero"], ["n"], name="batch_size", axis=0),
        const("axes0", [0]),
        helper.make_node("Unsqueeze", ["n", "axes0"], ["n1"], name="n1"),
        const("d_rest", [d, -1]),
        helper.make_node("Concat", ["n1", "d_rest"], ["tokens_shape"], name="tokens_shape", axis=0),
        helper.make_node("Reshape", ["p", "tokens_shape"], ["tok"], name="flatten_patches"),
        helper.make_node("Transpose", ["tok"], ["tokens"], name="to_tokens", perm=[0, 2, 1]),
        const("cls_rest", [1, d]),
        helper.make_node("Concat", ["n1", "cls_rest"], ["cls_shape"], name="cls_shape", axis=0),
        helper.make_node("Expand", ["cls", "cls_shape"], ["cls_n"], name="cls_expand"),
        helper.make_node("Concat", ["cls_n", "tokens"], ["seq"], name="prepend_cls", axis=1),
        helper.make_node("Add", ["seq", "pos"], ["h0"], name="pos_embed"),
        helper.make_node("LayerNormalization", ["h0", "ln1_s", "ln1_b"], ["a0"], name="ln1",
                         axis=-1, epsilon=1e-6),
        helper.make_node("MatMul", ["a0", "w_qkv"], ["qkv0"], name="qkv"),
        helper.make_node("Add", ["b_qkv", "qkv0"], ["qkv1"], name="qkv_bias"),
        const("split", [d, d, d]),
        helper.make_node("Split", ["qkv1", "split"], ["q0", "k0", "v0"], name="split_qkv", axis=-1),
        const("heads_shape", [0, t, heads, hd]),
        helper.make_node("Reshape", ["q0", "heads_shape"], ["q1"], name="q_heads"),
        helper.make_node("Transpose", ["q1"], ["q"], name="q_t", perm=[0, 2, 1, 3]),
        helper.make_node("Reshape", ["k0", "heads_shape"], ["k1"], name="k_heads"),
        helper.make_node("Transpose", ["k1"], ["kt"], name="k_t", perm=[0, 2, 3, 1]),
        helper.make_node("Reshape", ["v0", "heads_shape"], ["v1"], name="v_heads"),
        helper.make_node("Transpose", ["v1"], ["v"], name="v_t", perm=[0, 2, 1, 3]),
        helper.make_node("MatMul", ["q", "kt"], ["s0"], name="scores"),
        helper.make_node("Shape", ["q"], ["q_shape"], name="q_shape"),
        const("last", -1),
        helper.make_node("Gather", ["q_shape", "last"], ["hd_i"], name="head_dim", axis=0),
        helper.make_node("Cast", ["hd_i"], ["hd_f"], name="head_dim_f", to=TensorProto.FLOAT),
        helper.make_node("Sqrt", ["hd_f"], ["scale"], name="scale"),
        helper.make_node("Div", ["s0", "scale"], ["s1"], name="scaled"),
        helper.make_node("Softmax", ["s1"], ["probs"], name="softmax", axis=-1),
        helper.make_node("MatMul", ["probs", "v"], ["o0"], name="attend"),
        helper.make_node("Transpose", ["o0"], ["o1"], name="o_t", perm=[0, 2, 1, 3]),
        const("merge", [0, 0, d]),
        helper.make_node("Reshape", ["o1", "merge"], ["o2"], name="merge_heads"),
        helper.make_node("MatMul", ["o2", "w_out"], ["o3"], name="out_proj"),
        helper.make_node("Add", ["o3", "b_out"], ["o4"], name="out_bias"),
        helper.make_node("Add", ["h0", "o4"], ["h1"], name="residual1"),
        helper.make_node("ReduceMean", ["h1"], ["mu"], name="ln2_mean", axes=[-1]),
        helper.make_node("Sub", ["h1", "mu"], ["dev"], name="ln2_sub"),
        helper.make_node("Pow", ["dev", "two"], ["sq"], name="ln2_pow"),
        helper.make_node("ReduceMean", ["sq"], ["var"], name="ln2_var", axes=[-1]),
        helper.make_node("Add", ["var", "eps"], ["var_eps"], name="ln2_eps"),
        helper.make_node("Sqrt", ["var_eps"], ["std"], name="ln2_sqrt"),
        helper.make_node("Div", ["dev", "std"], ["nrm"], name="ln2_div"),
        helper.make_node("Mul", ["nrm", "ln2_s"], ["nrm_s"], name="ln2_scale"),
        helper.make_node("Add", ["nrm_s", "ln2_b"], ["a1"], name="ln2_shift"),
        helper.make_node("MatMul", ["a1", "w_fc1"], ["f0"], name="fc1"),
        helper.make_node("Add", ["b_fc1", "f0"], ["f1"], name="fc1_bias"),
        helper.make_node("Div", ["f1", "sqrt2"], ["g0"], name="gelu_div"),
        helper.make_node("Erf", ["g0"], ["g1"], name="gelu_erf"),
        helper.make_node("Add", ["g1", "one"], ["g2"], name="gelu_add"),
        helper.make_node("Mul", ["f1", "g2"], ["g3"], name="gelu_mul"),
        helper.make_node("Mul", ["g3", "half"], ["g4"], name="gelu_half"),
        helper.make_node("MatMul", ["g4", "w_fc2"], ["f2"], name="fc2"),
        helper.make_node("Add", ["b_fc2", "f2"], ["f3"], name="fc2_bias"),
        helper.make_node("Add", ["h1", "f3"], ["h2"], name="residual2"),
        helper.make_node("Gather", ["h2", "zero"], ["cls_out"], name="take_cls", axis=1),
        helper.make_node("Gemm", ["cls_out", "w_head", "b_head"], ["y"], name="head", transB=1),
    ]
    scaled = lambda *shape: pattern(*shape) * 0.25
    inits = [
        init("w_patch", scaled(d, 3, 4, 4)), init("b_patch", pattern(d)),
        init("cls", pattern(1, 1, d)), init("pos", scaled(1, t, d)),
        init("ln1_s", 1 + pattern(d)), init("ln1_b", pattern(d)),
        init("w_qkv", scaled(d, 3 * d)), init("b_qkv", pattern(3 * d)),
        init("w_out", scaled(d, d)), init("b_out", pattern(d)),
        init("two", 2.0), init("eps", 1e-6), init("ln2_s", 1 - pattern(d)), init("ln2_b", pattern(d)),
        init("w_fc1", scaled(d, 2 * d)), init("b_fc1", pattern(2 * d)),
        init("sqrt2", np.sqrt(2.0)), init("one", 1.0), init("half", 0.5),
        init("w_fc2", scaled(2 * d, d)), init("b_fc2", pattern(d)),
        init("w_head", scaled(10, d)), init("b_head", pattern(10)),
    ]
    g = helper.make_graph(nodes, "attention", [tensor("x", ["N", 3, 8, 8])], [tensor("y", ["N", 10])], inits)
    save(g, os.path.join(out, "attention.onnx"), opset=17)


def mobile_block(out):
    """Squeeze-and-excitation with HardSwish/HardSigmoid, a SiLU (Sigmoid then Mul), Pad and
    Slice, and a channel shuffle (Reshape to 5-D, Transpose, Reshape back). MACs by hand:
    conv 8*8*9*36 = 20736, squeeze 8*4 = 32, excite 4*8 = 32, classifier 8*3 = 24."""
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], name="conv", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("HardSwish", ["c1"], ["a1"], name="hswish"),
        helper.make_node("ReduceMean", ["a1"], ["m"], name="squeeze_mean", axes=[2, 3], keepdims=1),
        helper.make_node("Conv", ["m", "w_sq", "b_sq"], ["s1"], name="squeeze", kernel_shape=[1, 1]),
        helper.make_node("Relu", ["s1"], ["s2"], name="squeeze_relu"),
        helper.make_node("Conv", ["s2", "w_ex", "b_ex"], ["s3"], name="excite", kernel_shape=[1, 1]),
        helper.make_node("HardSigmoid", ["s3"], ["gate"], name="gate", alpha=1.0 / 6, beta=0.5),
        helper.make_node("Mul", ["a1", "gate"], ["se"], name="se_scale"),
        const("pads", [0, 0, 1, 1, 0, 0, 1, 1]),
        helper.make_node("Pad", ["se", "pads"], ["padded"], name="pad"),
        const("starts", [1, 1]), const("ends", [7, 7]), const("axes23", [2, 3]),
        helper.make_node("Slice", ["padded", "starts", "ends", "axes23"], ["cropped"], name="crop"),
        const("groups_shape", [1, 2, 4, 6, 6]),
        helper.make_node("Reshape", ["cropped", "groups_shape"], ["g5"], name="shuffle_split"),
        helper.make_node("Transpose", ["g5"], ["g5t"], name="shuffle", perm=[0, 2, 1, 3, 4]),
        const("flat_shape", [1, 8, 6, 6]),
        helper.make_node("Reshape", ["g5t", "flat_shape"], ["shuffled"], name="shuffle_merge"),
        helper.make_node("Sigmoid", ["shuffled"], ["sig"], name="silu_sigmoid"),
        helper.make_node("Mul", ["shuffled", "sig"], ["silu"], name="silu"),
        helper.make_node("GlobalAveragePool", ["silu"], ["gap"], name="gap"),
        helper.make_node("Flatten", ["gap"], ["flat"], name="flatten", axis=1),
        helper.make_node("Gemm", ["flat", "w_fc", "b_fc"], ["logits"], name="classifier", transB=1),
        helper.make_node("Softmax", ["logits"], ["y"], name="prob", axis=1),
    ]
    inits = [
        init("w1", pattern(8, 8, 3, 3) * 0.25),
        init("w_sq", pattern(4, 8, 1, 1)), init("b_sq", pattern(4)),
        init("w_ex", pattern(8, 4, 1, 1)), init("b_ex", pattern(8)),
        init("w_fc", pattern(3, 8)), init("b_fc", pattern(3)),
    ]
    g = helper.make_graph(nodes, "mobile_block", [tensor("x", [1, 8, 6, 6])], [tensor("y", [1, 3])], inits)
    save(g, os.path.join(out, "mobile_block.onnx"), opset=14)


def products(out):
    """Products of two activations written as Einsum and as Gemm, summed by ReduceSum (axes
    an input from opset 13). MACs by hand at batch N: Einsum 2N * 4*4*6, Gemm (8N)^2 * 4."""
    nodes = [
        helper.make_node("Transpose", ["x"], ["xt"], name="xt", perm=[0, 1, 3, 2]),
        helper.make_node("Einsum", ["x", "xt"], ["gram"], name="einsum", equation="bhij,bhjk->bhik"),
        const("rows", [-1, 4]),
        helper.make_node("Reshape", ["gram", "rows"], ["flat"], name="rows_of_4"),
        helper.make_node("Transpose", ["flat"], ["flat_t"], name="flat_t", perm=[1, 0]),
        helper.make_node("Gemm", ["flat", "flat_t"], ["outer"], name="gemm"),
        const("axis1", [1]),
        helper.make_node("ReduceSum", ["outer", "axis1"], ["y"], name="sum", keepdims=0),
    ]
    g = helper.make_graph(nodes, "products", [tensor("x", ["N", 2, 4, 6])], [tensor("y", ["M"])])
    save(g, os.path.join(out, "products.onnx"), opset=13)


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
    for make in (tiny_cnn, mlp_matmul, branches, symbolic, unsupported_op, concat_mismatch,
                 attention, mobile_block, products):
        make(out)
    reference_shapes(out, ["tiny_cnn", "mlp_matmul", "branches", "attention", "mobile_block"])
    print(f"wrote ONNX fixtures to {out} (onnx {onnx.__version__})")


if __name__ == "__main__":
    main()
