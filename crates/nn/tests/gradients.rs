//! Finite-difference checks of every layer kind's backward pass: the analytic gradient of
//! `L = sum(output * r)` (random `r`) against central differences, for the input and every
//! learned tensor.
//!
//! The network computes in f32; the differences are taken with step 1e-2 and summed in
//! f64, and an analytic value passes when it is within 2% of the larger magnitude plus
//! 2e-3 of the central difference (`close`).

use joule_model::ops::{
    Activation, BatchNorm, Binary, BinaryKind, ConstantOperand, Conv, Expand, Extent,
    FullyConnected, Gather, LayerNorm, Lrn, Pad, Padding, Pool, PoolKind, Reduce, ReduceKind,
    Reshape, Side, Slice, SliceAxis, Transpose,
};
use joule_model::{Graph, NodeId, Op, Shape, Tensor, Value};
use joule_nn::layers::softmax_cross_entropy;
use joule_nn::{FeatureMap, Network, Rng};

fn loss(network: &Network, input: &FeatureMap, r: &[f32]) -> f64 {
    let mut net = network.clone();
    let trace = net.forward_train(input, &mut Rng::new(99)).unwrap();
    let out = trace.output(net.graph().output().unwrap());
    out.data
        .iter()
        .zip(r)
        .map(|(a, b)| *a as f64 * *b as f64)
        .sum()
}

fn close(analytic: f32, numeric: f64, what: &str) {
    let tol = 2e-2 * numeric.abs().max(analytic.abs() as f64) + 2e-3;
    assert!(
        (analytic as f64 - numeric).abs() <= tol,
        "{what}: analytic {analytic} vs numeric {numeric}"
    );
}

/// Checks the gradients of `graph` at a random point. `scale` spreads the input values.
fn check((graph, input): (Graph, Shape), scale: f32) {
    eprintln!(
        "checking {:?} on {input}",
        graph
            .nodes()
            .iter()
            .map(|n| n.op.kind())
            .collect::<Vec<_>>()
    );
    // Outputs on NaN-filled buffers: a kernel that leaves an element unwritten fails here.
    joule_nn::poison_reused_buffers();
    let mut rng = Rng::new(7);
    let mut network = Network::new(graph, 3).unwrap();
    // Random (non-trivial) batch-norm parameters and biases.
    for i in 0..network.graph().len() {
        for t in network.params_mut(NodeId(i)).iter_mut() {
            for v in t.data.iter_mut() {
                *v += rng.symmetric(0.3);
            }
        }
    }
    let data: Vec<f32> = (0..input.elements())
        .map(|_| rng.symmetric(scale))
        .collect();
    let x = FeatureMap::new(input, data).unwrap();
    let mut probe = network.clone();
    let trace = probe.forward_train(&x, &mut Rng::new(99)).unwrap();
    let last = network.graph().output().unwrap();
    let out_len = trace.output(last).data.len();
    let r: Vec<f32> = (0..out_len).map(|_| rng.symmetric(1.0)).collect();
    let grads = network.backward(&trace, last, r.clone(), true);
    let eps = 1e-2f32;
    let picks = |len: usize, rng: &mut Rng| -> Vec<usize> {
        if len <= 24 {
            (0..len).collect()
        } else {
            (0..24).map(|_| rng.below(len)).collect()
        }
    };
    let input_grad = grads.input.as_ref().unwrap();
    for i in picks(x.data.len(), &mut rng) {
        let mut plus = x.clone();
        plus.data[i] += eps;
        let mut minus = x.clone();
        minus.data[i] -= eps;
        let numeric = (loss(&network, &plus, &r) - loss(&network, &minus, &r)) / (2.0 * eps as f64);
        close(input_grad[i], numeric, &format!("input[{i}]"));
    }
    for node in 0..network.graph().len() {
        let name = network.graph().nodes()[node].name.clone();
        let op = network.graph().nodes()[node].op.clone();
        for k in 0..network.graph().nodes()[node].params.len() {
            if !joule_nn::trainable(&op, k) {
                continue;
            }
            let len = network.graph().nodes()[node].params[k].len();
            for i in picks(len, &mut rng) {
                let mut plus = network.clone();
                plus.params_mut(NodeId(node))[k].data[i] += eps;
                let mut minus = network.clone();
                minus.params_mut(NodeId(node))[k].data[i] -= eps;
                let numeric = (loss(&plus, &x, &r) - loss(&minus, &x, &r)) / (2.0 * eps as f64);
                close(
                    grads.params[node][k][i],
                    numeric,
                    &format!("{name} param {k}[{i}]"),
                );
            }
        }
    }
}

fn single(op: Op, input: Shape) -> (Graph, Shape) {
    let mut g = Graph::new("single", Some(Shape { n: 1, ..input }));
    g.push("layer", op, &[Value::Input]);
    (g, input)
}

#[test]
fn conv_plain_strided_padded_dilated() {
    check(
        single(Op::Conv(Conv::new(4, 3, 1, 1)), Shape::new(2, 3, 6, 6)),
        1.0,
    );
    let mut conv = Conv::new(3, 3, 2, 0);
    conv.dilation_h = 2;
    conv.padding = Padding {
        top: 2,
        left: 1,
        bottom: 0,
        right: 1,
    };
    check(single(Op::Conv(conv), Shape::new(2, 2, 7, 6)), 1.0);
    check(
        single(
            Op::Conv(Conv::new(5, 1, 1, 0).without_bias()),
            Shape::new(2, 3, 4, 4),
        ),
        1.0,
    );
    // Stride 1 with dilation and padding on one side only, and 5x5 taps at batch 1: the
    // input gradient as a forward convolution of dY with the flipped filters.
    let mut conv = Conv::new(3, 3, 1, 0);
    conv.dilation_h = 2;
    conv.dilation_w = 2;
    conv.padding = Padding {
        top: 2,
        left: 1,
        bottom: 0,
        right: 3,
    };
    check(single(Op::Conv(conv), Shape::new(2, 2, 7, 6)), 1.0);
    check(
        single(Op::Conv(Conv::new(6, 5, 1, 2)), Shape::new(1, 4, 6, 5)),
        1.0,
    );
    // More than 8 input channels: the input gradient on the blocked kernel (fewer take the
    // direct one, on AVX2 machines).
    check(
        single(Op::Conv(Conv::new(5, 3, 1, 1)), Shape::new(2, 11, 5, 4)),
        1.0,
    );
}

#[test]
fn conv_grouped_and_depthwise() {
    check(
        single(
            Op::Conv(Conv::new(4, 3, 1, 1).with_groups(2)),
            Shape::new(2, 6, 5, 5),
        ),
        1.0,
    );
    check(
        single(
            Op::Conv(Conv::new(6, 3, 1, 1).with_groups(3)),
            Shape::new(2, 3, 5, 5),
        ),
        1.0,
    );
}

/// 32 or more filters a group take our product kernel for the weight gradient (dW^T summed
/// over a chunk's samples, then folded into dW); more than 8 samples make two chunks.
#[test]
fn conv_with_many_filters_over_several_chunks() {
    check(
        single(Op::Conv(Conv::new(32, 3, 1, 1)), Shape::new(10, 2, 4, 4)),
        1.0,
    );
    check(
        single(
            Op::Conv(Conv::new(64, 3, 1, 1).with_groups(2)),
            Shape::new(9, 4, 3, 3),
        ),
        1.0,
    );
}

#[test]
fn fully_connected_on_flat_and_spatial_inputs() {
    let fc = Op::FullyConnected(FullyConnected {
        outputs: 5,
        bias: true,
    });
    check(single(fc.clone(), Shape::new(3, 7, 1, 1)), 1.0);
    check(single(fc, Shape::new(2, 2, 3, 3)), 1.0);
}

#[test]
fn pooling_max_average_global() {
    // Max pooling: spread inputs far apart so that no finite-difference step crosses a tie.
    check(
        single(Op::Pool(Pool::max(2, 2, 0)), Shape::new(2, 2, 6, 6)),
        50.0,
    );
    check(
        single(Op::Pool(Pool::max(3, 2, 1)), Shape::new(2, 2, 7, 7)),
        50.0,
    );
    check(
        single(Op::Pool(Pool::average(3, 2, 1)), Shape::new(2, 2, 6, 6)),
        1.0,
    );
    let mut avg = Pool::average(3, 2, 1).ceil();
    avg.count_include_pad = true;
    check(single(Op::Pool(avg), Shape::new(2, 2, 6, 6)), 1.0);
    for kind in [PoolKind::Max, PoolKind::Average] {
        check(
            single(Op::GlobalPool { kind }, Shape::new(2, 3, 4, 4)),
            50.0,
        );
    }
}

#[test]
fn activations() {
    for act in [
        Activation::Relu,
        Activation::Relu6,
        Activation::LeakyRelu { alpha: 0.1 },
        Activation::Clip {
            min: -1.0,
            max: 2.0,
        },
        Activation::Sigmoid,
        Activation::Tanh,
        Activation::HardSigmoid {
            alpha: 1.0 / 6.0,
            beta: 0.5,
        },
        Activation::HardSwish,
        Activation::Gelu,
        Activation::Erf,
    ] {
        check(single(Op::Activation(act), Shape::new(2, 3, 3, 3)), 8.0);
    }
}

#[test]
fn batch_norm_training_mode() {
    check(
        single(Op::BatchNorm(BatchNorm::default()), Shape::new(4, 3, 3, 3)),
        2.0,
    );
}

/// Batch norm, ReLU and 2x2 max pooling, which a training pass runs as one (on odd planes
/// here: a row and a column no window reads), then a batch norm and ReLU run as one. The
/// normalised values sit near the ReLU's and the pooling's kinks: this batch puts none within
/// the step of one (3 samples of 5x5, or 4x4 planes, do, and their differences jump).
#[test]
fn batch_norm_relu_and_pooling_fused() {
    let mut g = Graph::new("chain", Some(Shape::new(1, 2, 5, 5)));
    let bn = || Op::BatchNorm(BatchNorm::default());
    let relu = Op::Activation(Activation::Relu);
    let x = g.push("bn", bn(), &[Value::Input]);
    let x = g.push("relu", relu.clone(), &[x]);
    let x = g.push("pool", Op::Pool(Pool::max(2, 2, 0)), &[x]);
    let x = g.push("conv", Op::Conv(Conv::new(3, 1, 1, 0)), &[x]);
    let x = g.push("bn2", bn(), &[x]);
    g.push("relu2", relu, &[x]);
    check((g, Shape::new(4, 2, 5, 5)), 2.0);
}

/// A ReLU and 2x2 max pooling with no batch norm before, which a training pass runs as one
/// (on odd planes: a row and a column no window reads), behind a CONV whose outputs the
/// ReLU cuts. As above, this batch puts no CONV output within the step of a kink (1 or 2
/// samples of 5x5, or 7x7 planes, do, fused or node by node alike).
#[test]
fn relu_and_pooling_fused() {
    let mut g = Graph::new("chain", Some(Shape::new(1, 2, 5, 5)));
    let x = g.push("conv", Op::Conv(Conv::new(3, 3, 1, 1)), &[Value::Input]);
    let x = g.push("relu", Op::Activation(Activation::Relu), &[x]);
    let x = g.push("pool", Op::Pool(Pool::max(2, 2, 0)), &[x]);
    let x = g.push("flat", Op::Flatten, &[x]);
    let fc = FullyConnected {
        outputs: 3,
        bias: true,
    };
    g.push("fc", Op::FullyConnected(fc), &[x]);
    check((g, Shape::new(3, 2, 5, 5)), 2.0);
}

/// A training step through fused batch norm, ReLU and pooling (two stages), and through a
/// fused ReLU and pooling with no batch norm (a third), gives the bits of the same network
/// run node by node (kept apart by a second reader of each batch norm and ReLU, which the
/// loss does not see): the logits, the running statistics; and every parameter's gradient
/// and the input's gradient within a few roundings.
#[test]
fn fused_training_equals_node_by_node() {
    let build = |apart: bool| {
        let mut g = Graph::new("stages", Some(Shape::new(1, 2, 13, 13)));
        let mut x = Value::Input;
        for (stage, filters) in [4, 8, 6].into_iter().enumerate() {
            let conv = Op::Conv(Conv::new(filters, 3, 1, 1));
            x = g.push(format!("conv{stage}"), conv, &[x]);
            if stage < 2 {
                x = g.push(
                    format!("bn{stage}"),
                    Op::BatchNorm(BatchNorm::default()),
                    &[x],
                );
                if apart {
                    g.push(format!("reader{stage}"), Op::Flatten, &[x]);
                }
            }
            x = g.push(
                format!("relu{stage}"),
                Op::Activation(Activation::Relu),
                &[x],
            );
            if apart {
                g.push(format!("relu reader{stage}"), Op::Flatten, &[x]);
            }
            x = g.push(format!("pool{stage}"), Op::Pool(Pool::max(2, 2, 0)), &[x]);
        }
        let x = g.push("flat", Op::Flatten, &[x]);
        let fc = FullyConnected {
            outputs: 5,
            bias: true,
        };
        g.push("fc", Op::FullyConnected(fc), &[x]);
        Network::new(g, 5).unwrap()
    };
    let mut fused = build(false);
    let mut apart = build(true);
    let mut rng = Rng::new(11);
    let names: Vec<String> = fused
        .graph()
        .nodes()
        .iter()
        .map(|n| n.name.clone())
        .collect();
    let id = |net: &Network, name: &str| {
        NodeId(
            net.graph()
                .nodes()
                .iter()
                .position(|n| n.name == name)
                .unwrap(),
        )
    };
    for (i, name) in names.iter().enumerate() {
        for t in fused.params_mut(NodeId(i)).iter_mut() {
            t.data.iter_mut().for_each(|v| *v += rng.symmetric(0.3));
        }
        let params = fused.graph().nodes()[i].params.clone();
        *apart.params_mut(id(&apart, name)) = params;
    }
    let input = Shape::new(3, 2, 13, 13);
    let data = (0..input.elements()).map(|_| rng.symmetric(2.0)).collect();
    let x = FeatureMap::new(input, data).unwrap();
    let ta = fused.forward_train(&x, &mut Rng::new(1)).unwrap();
    let tb = apart.forward_train(&x, &mut Rng::new(1)).unwrap();
    // Fused: the trace keeps no output for the batch norms.
    let hidden = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        ta.output(id(&fused, "bn0"))
    }));
    assert!(hidden.is_err());
    assert_eq!(tb.output(id(&apart, "bn0")).data.len(), 3 * 4 * 13 * 13);
    // ... nor for the ReLU fused with its pooling.
    let hidden = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        ta.output(id(&fused, "relu2"))
    }));
    assert!(hidden.is_err());
    assert_eq!(tb.output(id(&apart, "relu2")).data.len(), 3 * 6 * 3 * 3);
    let (la, lb) = (fused.logits_node(), apart.logits_node());
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&ta.output(la).data), bits(&tb.output(lb).data));
    let r: Vec<f32> = (0..15).map(|_| rng.symmetric(1.0)).collect();
    let ga = fused.backward(&ta, la, r.clone(), true);
    let gb = apart.backward(&tb, lb, r, true);
    // Through a fused pooling the batch norm's sums add the same terms in another order
    // (`layers::batch_norm_relu_pool_backward`): within a few roundings of the largest
    // value, and of the terms where they cancel (a convolution's bias before a batch norm
    // has a gradient of zero but for roundings: 2e-8 against 1e-7 here).
    let close = |a: &[f32], b: &[f32], what: &str| {
        let scale = b.iter().fold(0f32, |m, v| m.max(v.abs()));
        for (k, (x, y)) in a.iter().zip(b).enumerate() {
            let within = 1e-5 * scale + 1e-6;
            assert!((x - y).abs() <= within, "{what}[{k}]: {x} against {y}");
        }
        assert_eq!(a.len(), b.len(), "{what}");
    };
    close(
        ga.input.as_ref().unwrap(),
        gb.input.as_ref().unwrap(),
        "the input's gradient",
    );
    for (i, name) in names.iter().enumerate() {
        let j = id(&apart, name).0;
        for (k, (a, b)) in ga.params[i].iter().zip(&gb.params[j]).enumerate() {
            close(a, b, &format!("{name} gradient {k}"));
        }
        let (pa, pb) = (
            &fused.graph().nodes()[i].params,
            &apart.graph().nodes()[j].params,
        );
        for (k, (a, b)) in pa.iter().zip(pb).enumerate() {
            assert_eq!(bits(&a.data), bits(&b.data), "{name} parameter {k}");
        }
    }
    // The running statistics moved.
    let bn = &fused.graph().nodes()[id(&fused, "bn0").0].params;
    assert!(bn[2].data.iter().any(|m| *m != 0.0));
}

#[test]
fn lrn_softmax_dropout_flatten() {
    let lrn = Lrn {
        size: 3,
        alpha: 0.5,
        beta: 0.75,
        bias: 1.0,
    };
    check(single(Op::Lrn(lrn), Shape::new(2, 5, 2, 2)), 2.0);
    check(
        single(
            Op::Lrn(Lrn {
                size: 4,
                ..Lrn::default()
            }),
            Shape::new(2, 6, 2, 2),
        ),
        2.0,
    );
    check(single(Op::Softmax { axis: 1 }, Shape::new(2, 4, 2, 2)), 2.0);
    check(
        single(Op::Dropout { ratio: 0.5 }, Shape::new(2, 3, 2, 2)),
        1.0,
    );
    check(single(Op::Flatten, Shape::new(2, 3, 2, 2)), 1.0);
}

#[test]
fn add_concat_and_a_residual_block() {
    let mut g = Graph::new("block", Some(Shape::new(1, 3, 5, 5)));
    let a = g.push("a", Op::Conv(Conv::new(3, 3, 1, 1)), &[Value::Input]);
    let r = g.push("relu", Op::Activation(Activation::Tanh), &[a]);
    let s = g.push("sum", Op::Add, &[r, Value::Input]);
    let b = g.push("b", Op::Conv(Conv::new(2, 1, 1, 0)), &[s]);
    let c = g.push("cat", Op::Concat { axis: 1 }, &[s, b, Value::Input]);
    let f = g.push("flat", Op::Flatten, &[c]);
    g.push(
        "fc",
        Op::FullyConnected(FullyConnected {
            outputs: 3,
            bias: true,
        }),
        &[f],
    );
    check((g, Shape::new(2, 3, 5, 5)), 1.0);
}

#[test]
fn softmax_cross_entropy_gradient() {
    let logits = [0.3f32, -1.2, 2.0, 0.5, 0.1, -0.4];
    let labels = [2u8, 0];
    let (loss, grad) = softmax_cross_entropy(&logits, 3, &labels);
    // By hand: mean of -log softmax at the labels.
    let nll = |row: &[f32], l: usize| {
        let z: f32 = row.iter().map(|v| v.exp()).sum();
        -(row[l].exp() / z).ln()
    };
    let want = (nll(&logits[..3], 2) + nll(&logits[3..], 0)) / 2.0;
    assert!((loss - want).abs() < 1e-6, "{loss} vs {want}");
    for i in 0..6 {
        let mut plus = logits;
        plus[i] += 1e-3;
        let mut minus = logits;
        minus[i] -= 1e-3;
        let numeric = (softmax_cross_entropy(&plus, 3, &labels).0
            - softmax_cross_entropy(&minus, 3, &labels).0)
            / 2e-3;
        assert!(
            (grad[i] - numeric).abs() < 1e-3,
            "{i}: {} vs {numeric}",
            grad[i]
        );
    }
}

fn binary(kind: BinaryKind) -> Op {
    Op::Binary(Binary {
        kind,
        constant: None,
    })
}

/// A binary op with a constant operand of `dims` holding `values` (set before
/// [`Network::new`], which keeps parameters that are already there).
fn push_constant(
    g: &mut Graph,
    name: &str,
    kind: BinaryKind,
    side: Side,
    dims: Vec<usize>,
    values: Vec<f32>,
    input: Value,
) -> Value {
    let op = Op::Binary(Binary {
        kind,
        constant: Some(ConstantOperand {
            side,
            dims: dims.clone(),
        }),
    });
    let v = g.push(name, op, &[input]);
    let Value::Node(id) = v else { unreachable!() };
    g.node_mut(id).params = vec![Tensor {
        shape: dims,
        data: values,
    }];
    v
}

fn reshape(target: &[Extent]) -> Op {
    Op::Reshape(Reshape {
        target: target.to_vec(),
    })
}

#[test]
fn squeeze_and_excitation_gate_broadcasts_over_space() {
    // x * s[N, C, 1, 1]: the squeeze is a ReduceMean, the excitation two FC layers with a
    // HardSigmoid gate, reshaped back to [N, C, 1, 1] for the broadcasting Mul.
    let mut g = Graph::new("se", Some(Shape::new(1, 4, 3, 3)));
    let c = g.push("conv", Op::Conv(Conv::new(4, 3, 1, 1)), &[Value::Input]);
    let mean = Op::Reduce(Reduce {
        kind: ReduceKind::Mean,
        axes: vec![2, 3],
        keep_dims: false,
    });
    let s = g.push("squeeze", mean, &[c]);
    let fc = |outputs| {
        Op::FullyConnected(FullyConnected {
            outputs,
            bias: true,
        })
    };
    let s = g.push("fc1", fc(2), &[s]);
    let s = g.push("relu", Op::Activation(Activation::Relu), &[s]);
    let s = g.push("fc2", fc(4), &[s]);
    let gate = Activation::HardSigmoid {
        alpha: 1.0 / 6.0,
        beta: 0.5,
    };
    let s = g.push("gate", Op::Activation(gate), &[s]);
    let s = g.push(
        "unflatten",
        reshape(&[
            Extent::Copy,
            Extent::Fixed(4),
            Extent::Fixed(1),
            Extent::Fixed(1),
        ]),
        &[s],
    );
    g.push("scale", binary(BinaryKind::Mul), &[c, s]);
    check((g, Shape::new(2, 4, 3, 3)), 1.0);
}

#[test]
fn binary_ops_broadcast_both_ways_with_activations_and_constants() {
    for kind in [
        BinaryKind::Add,
        BinaryKind::Sub,
        BinaryKind::Mul,
        BinaryKind::Div,
        BinaryKind::Pow,
    ] {
        // Operands kept away from 0 (Div) and positive (Pow's base): x + 3 with x in
        // [-1, 1]; the exponent is a constant near 2.
        let mut g = Graph::new("binary", Some(Shape::new(1, 3, 2, 4)));
        let pos = push_constant(
            &mut g,
            "shift",
            BinaryKind::Add,
            Side::Right,
            vec![1],
            vec![3.0],
            Value::Input,
        );
        let row = g.push(
            "row",
            Op::Reduce(Reduce {
                kind: ReduceKind::Mean,
                axes: vec![1, 2],
                keep_dims: true,
            }),
            &[pos],
        );
        // [N, 3, 2, 4] op [N, 1, 1, 4]: broadcast over C and H.
        let (a, b) = if kind == BinaryKind::Pow {
            let e = push_constant(
                &mut g,
                "exponent",
                BinaryKind::Mul,
                Side::Left,
                vec![1, 1, 1, 4],
                vec![2.0, 1.5, 0.5, 2.5],
                row,
            );
            let e = g.push("exp_scale", Op::Activation(Activation::Tanh), &[e]);
            (pos, e)
        } else {
            (pos, row)
        };
        let y = g.push("op", binary(kind), &[a, b]);
        // The other order broadcasts the left operand.
        let z = g.push("swapped", binary(kind), &[b, y]);
        // A constant on each side.
        let z = push_constant(
            &mut g,
            "left",
            kind,
            Side::Left,
            vec![3, 1, 1],
            vec![1.5, 2.0, 2.5],
            z,
        );
        if kind != BinaryKind::Pow {
            push_constant(
                &mut g,
                "right",
                kind,
                Side::Right,
                vec![2, 4],
                (0..8).map(|i| 2.0 + 0.1 * i as f32).collect(),
                z,
            );
        }
        check((g, Shape::new(2, 3, 2, 4)), 1.0);
    }
}

#[test]
fn reductions_mean_sum_l2() {
    for (kind, axes, keep_dims) in [
        (ReduceKind::Mean, vec![2, 3], true),
        (ReduceKind::Mean, vec![-1], false),
        (ReduceKind::Sum, vec![1], false),
        (ReduceKind::Sum, vec![], true),
        (ReduceKind::L2, vec![1, 3], true),
    ] {
        let op = Op::Reduce(Reduce {
            kind,
            axes,
            keep_dims,
        });
        check(single(op, Shape::new(2, 3, 2, 4)), 1.0);
    }
}

#[test]
fn layer_norm_with_and_without_bias() {
    for (axis, bias) in [(-1, true), (1, true), (2, false)] {
        let op = Op::LayerNorm(LayerNorm {
            axis,
            epsilon: 1e-5,
            bias,
        });
        check(single(op, Shape::new(2, 3, 2, 5)), 1.0);
    }
    // Behind a convolution, so that the input gradient and the scale gradients meet.
    let mut g = Graph::new("ln", Some(Shape::new(1, 2, 3, 3)));
    let c = g.push("conv", Op::Conv(Conv::new(3, 3, 1, 1)), &[Value::Input]);
    let ln = Op::LayerNorm(LayerNorm {
        axis: 1,
        epsilon: 1e-5,
        bias: true,
    });
    g.push("ln", ln, &[c]);
    check((g, Shape::new(2, 2, 3, 3)), 1.0);
}

#[test]
fn channel_shuffle_reshape_transpose_reshape() {
    // ShuffleNet's shuffle of 6 channels in 2 groups, between two grouped convolutions.
    let mut g = Graph::new("shuffle", Some(Shape::new(1, 4, 3, 3)));
    let a = g.push(
        "gconv1",
        Op::Conv(Conv::new(6, 1, 1, 0).with_groups(2)),
        &[Value::Input],
    );
    let r = g.push(
        "split",
        reshape(&[
            Extent::Copy,
            Extent::Fixed(2),
            Extent::Fixed(3),
            Extent::Fixed(3),
            Extent::Fixed(3),
        ]),
        &[a],
    );
    let t = g.push(
        "swap",
        Op::Transpose(Transpose {
            perm: vec![0, 2, 1, 3, 4],
        }),
        &[r],
    );
    let m = g.push(
        "merge",
        reshape(&[
            Extent::Copy,
            Extent::Infer,
            Extent::Fixed(3),
            Extent::Fixed(3),
        ]),
        &[t],
    );
    g.push(
        "gconv2",
        Op::Conv(Conv::new(4, 3, 1, 1).with_groups(2)),
        &[m],
    );
    check((g, Shape::new(2, 4, 3, 3)), 1.0);
}

#[test]
fn layout_ops_slice_gather_pad_expand_squeeze_concat_any_axis() {
    let mut g = Graph::new("layout", Some(Shape::new(1, 3, 4, 5)));
    let c = g.push("conv", Op::Conv(Conv::new(3, 1, 1, 0)), &[Value::Input]);
    // Every other column backwards, and rows 1..3.
    let s = g.push(
        "slice",
        Op::Slice(Slice {
            axes: vec![
                SliceAxis {
                    axis: 3,
                    start: -1,
                    end: i64::MIN,
                    step: -2,
                },
                SliceAxis {
                    axis: 2,
                    start: 1,
                    end: 3,
                    step: 1,
                },
            ],
        }),
        &[c],
    );
    // Channel 2 twice and channel 0 (a repeated index collects both gradients).
    let gth = g.push(
        "gather",
        Op::Gather(Gather {
            axis: 1,
            indices: vec![2, -1, 0],
            scalar: false,
        }),
        &[s],
    );
    let p = g.push(
        "pad",
        Op::Pad(Pad {
            begin: vec![0, 0, 1, 0],
            end: vec![0, 1, 0, 2],
            value: 0.5,
        }),
        &[gth],
    );
    // [N, 4, 3, 5] concatenated with the input's first 4 columns... along H and W.
    let cut = g.push(
        "cut",
        Op::Slice(Slice {
            axes: vec![SliceAxis {
                axis: 1,
                start: 0,
                end: 1,
                step: 1,
            }],
        }),
        &[c],
    );
    let sq = g.push("squeeze", Op::Squeeze { axes: vec![1] }, &[cut]);
    let un = g.push("unsqueeze", Op::Unsqueeze { axes: vec![1] }, &[sq]);
    let e = g.push(
        "expand",
        Op::Expand(Expand {
            target: vec![
                Extent::Fixed(1),
                Extent::Fixed(4),
                Extent::Fixed(4),
                Extent::Fixed(5),
            ],
        }),
        &[un],
    );
    let h = g.push("cat_h", Op::Concat { axis: 2 }, &[p, e]);
    let col = g.push(
        "col",
        Op::Reduce(Reduce {
            kind: ReduceKind::Sum,
            axes: vec![3],
            keep_dims: true,
        }),
        &[h],
    );
    g.push("cat_w", Op::Concat { axis: -1 }, &[h, col]);
    check((g, Shape::new(2, 3, 4, 5)), 1.0);
}

#[test]
fn linear_matmul_and_a_constant_token() {
    // A tiny attention-like block on [N, T, D] tokens: a learned class token concatenated
    // in front, a Linear projection, and a token-token product.
    let mut g = Graph::new("tokens", Some(Shape::new(1, 3, 4, 1)));
    let x = g.push(
        "tokens",
        reshape(&[Extent::Copy, Extent::Fixed(3), Extent::Fixed(4)]),
        &[Value::Input],
    );
    let cls = g.push(
        "cls",
        Op::Constant {
            dims: vec![1, 1, 4],
            target: vec![Extent::Batch(1), Extent::Fixed(1), Extent::Fixed(4)],
        },
        &[],
    );
    let t = g.push("cat", Op::Concat { axis: 1 }, &[cls, x]);
    let q = g.push(
        "q",
        Op::Linear(FullyConnected {
            outputs: 4,
            bias: true,
        }),
        &[t],
    );
    let kt = g.push(
        "kt",
        Op::Transpose(Transpose {
            perm: vec![0, 2, 1],
        }),
        &[t],
    );
    let a = g.push("scores", Op::MatMul, &[q, kt]);
    let a = g.push("attend", Op::Softmax { axis: -1 }, &[a]);
    g.push("mix", Op::MatMul, &[a, t]);
    check((g, Shape::new(2, 3, 4, 1)), 1.0);
}

#[test]
fn sqrt_on_a_positive_input() {
    // x + 3 keeps the square root's input in [2, 4].
    let mut g = Graph::new("sqrt", Some(Shape::new(1, 2, 3, 3)));
    let pos = push_constant(
        &mut g,
        "shift",
        BinaryKind::Add,
        Side::Right,
        vec![1],
        vec![3.0],
        Value::Input,
    );
    g.push("sqrt", Op::Activation(Activation::Sqrt), &[pos]);
    check((g, Shape::new(2, 2, 3, 3)), 1.0);
}
