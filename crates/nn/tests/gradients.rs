//! Finite-difference checks of every layer kind's backward pass: the analytic gradient of
//! `L = sum(output * r)` (random `r`) against central differences, for the input and every
//! learned tensor.

use joule_model::ops::{Activation, BatchNorm, Conv, FullyConnected, Lrn, Padding, Pool, PoolKind};
use joule_model::{Graph, NodeId, Op, Shape, Value};
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
