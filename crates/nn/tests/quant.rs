//! Fake quantization in the engine: the forward pass against a hand count, the fused
//! inference path against the trace, and the straight-through estimator against finite
//! differences of the quantized network itself (at 16 bits, where rounding is below the
//! step of the differences, so the STE gradient is the true gradient inside the clip range
//! and zero outside it).

use joule_model::ops::{Activation, Conv, FullyConnected};
use joule_model::{Graph, NodeId, Op, Shape, Tensor, Value};
use joule_nn::quant::{ActQuant, LayerQuant, WeightQuant, WeightScheme};
use joule_nn::{FeatureMap, Network, Rng};

fn uniform(bits: u32) -> Option<WeightQuant> {
    Some(WeightQuant {
        scheme: WeightScheme::Uniform,
        bits,
    })
}

#[test]
fn a_quantized_fc_layer_computes_the_hand_count() {
    let mut g = Graph::new("fc", Some(Shape::new(1, 2, 1, 1)));
    g.push(
        "fc",
        Op::FullyConnected(FullyConnected {
            outputs: 1,
            bias: true,
        }),
        &[Value::Input],
    );
    let mut net = Network::new(g, 1).unwrap();
    net.params_mut(NodeId(0))[0] = Tensor {
        shape: vec![1, 2],
        data: vec![0.7, -0.3],
    };
    net.params_mut(NodeId(0))[1].data = vec![0.1];
    net.set_quant(
        NodeId(0),
        LayerQuant {
            // 3 bits: step 0.7 / 3; -0.3 is -1.29 steps -> -1.
            weight: uniform(3),
            // 2 bits on [0, 0.6]: step 0.2; 0.55 -> 0.6, 0.9 clips to 0.6.
            input: Some(ActQuant::new(2, 0.0, 0.6)),
        },
    )
    .unwrap();
    let x = FeatureMap::new(Shape::new(1, 2, 1, 1), vec![0.55, 0.9]).unwrap();
    let y = net.forward(&x).unwrap().data[0];
    let want = 0.7 * 0.6 - 0.7 / 3.0 * 0.6 + 0.1;
    assert!((y - want).abs() < 1e-6, "{y} vs {want}");
    // The float weights are kept; baking writes the dequantized ones.
    assert_eq!(net.graph().nodes()[0].params[0].data, [0.7, -0.3]);
    net.bake_weights();
    let baked = &net.graph().nodes()[0].params[0].data;
    assert!((baked[1] + 0.7 / 3.0).abs() < 1e-7, "{baked:?}");
    assert_eq!(net.forward(&x).unwrap().data[0], y);
}

/// Input 2x3x5x5 -> CONV 4x3x3 (pad 1) -> ReLU -> FC 5, both layers quantized at `bits`;
/// the conv's input range [-0.6, 0.6] clips part of the [-1, 1] input.
fn network(bits: u32) -> (Network, FeatureMap) {
    let input = Shape::new(2, 3, 5, 5);
    let mut g = Graph::new("q", Some(Shape { n: 1, ..input }));
    let conv = g.push("conv", Op::Conv(Conv::new(4, 3, 1, 1)), &[Value::Input]);
    let relu = g.push("relu", Op::Activation(Activation::Relu), &[conv]);
    g.push(
        "fc",
        Op::FullyConnected(FullyConnected {
            outputs: 5,
            bias: true,
        }),
        &[relu],
    );
    let mut net = Network::new(g, 3).unwrap();
    let mut rng = Rng::new(11);
    let x: Vec<f32> = (0..input.elements()).map(|_| rng.symmetric(1.0)).collect();
    let x = FeatureMap::new(input, x).unwrap();
    net.set_quant(
        NodeId(0),
        LayerQuant {
            weight: uniform(bits),
            input: Some(ActQuant::new(bits, -0.6, 0.6)),
        },
    )
    .unwrap();
    // The FC input range clips the largest ReLU outputs.
    let relu_out = net.trace(&x).unwrap().output(NodeId(1));
    let max = relu_out.data.iter().fold(0f32, |m, v| m.max(*v));
    net.set_quant(
        NodeId(2),
        LayerQuant {
            weight: uniform(bits),
            input: Some(ActQuant::new(bits, 0.0, 0.8 * max)),
        },
    )
    .unwrap();
    (net, x)
}

#[test]
fn fused_inference_equals_the_trace_bit_for_bit() {
    for bits in [2, 4, 8] {
        let (net, x) = network(bits);
        let fused = net.forward(&x).unwrap();
        let traced = net.trace(&x).unwrap().output(NodeId(2));
        assert_eq!(fused, traced, "{bits} bits");
        // And quantization does something at low width.
        let mut float = net.clone();
        float.clear_quant();
        assert_ne!(float.forward(&x).unwrap(), fused, "{bits} bits");
    }
}

fn loss(net: &Network, x: &FeatureMap, r: &[f32]) -> f64 {
    let y = net.forward(x).unwrap();
    y.data
        .iter()
        .zip(r)
        .map(|(a, b)| *a as f64 * *b as f64)
        .sum()
}

fn close(analytic: f32, numeric: f64, what: &str) {
    let tol = 2e-2 * numeric.abs().max(analytic.abs() as f64) + 2e-3;
    assert!(
        (analytic as f64 - numeric).abs() <= tol,
        "{what}: STE {analytic} vs finite difference {numeric}"
    );
}

#[test]
fn the_straight_through_estimator_matches_finite_differences_and_zeroes_clipped_inputs() {
    let (net, x) = network(16);
    let mut rng = Rng::new(5);
    let r: Vec<f32> = (0..10).map(|_| rng.symmetric(1.0)).collect();
    let trace = net.trace(&x).unwrap();
    let grads = net.backward(&trace, NodeId(2), r.clone(), true);
    let dx = grads.input.as_ref().unwrap();
    let eps = 1e-2f32;
    let (mut inside, mut outside) = (0, 0);
    for (i, &dx_i) in dx.iter().enumerate() {
        let v = x.data[i].abs();
        // Skip values within eps of the clip, where a difference straddles it.
        if (v - 0.6).abs() < 2.0 * eps {
            continue;
        }
        let mut plus = x.clone();
        plus.data[i] += eps;
        let mut minus = x.clone();
        minus.data[i] -= eps;
        let numeric = (loss(&net, &plus, &r) - loss(&net, &minus, &r)) / (2.0 * eps as f64);
        if v > 0.6 {
            // Clipped: the quantized network does not move, and the STE passes nothing.
            assert_eq!(dx_i, 0.0, "input[{i}] = {}", x.data[i]);
            assert_eq!(numeric, 0.0, "input[{i}] = {}", x.data[i]);
            outside += 1;
        } else {
            close(dx_i, numeric, &format!("input[{i}]"));
            inside += 1;
        }
    }
    assert!(
        inside > 50 && outside > 20,
        "{inside} inside, {outside} outside"
    );
    // Weights: the STE passes the gradient of the quantized weight to the float one. Skip
    // each channel's largest weight, whose move would change the channel's step.
    for node in [0, 2] {
        let w = net.graph().nodes()[node].params[0].clone();
        let per = w.len() / w.shape[0];
        let mut checked = 0;
        for i in (0..w.len()).step_by(7) {
            let channel = &w.data[i / per * per..(i / per + 1) * per];
            let max = channel.iter().fold(0f32, |m, v| m.max(v.abs()));
            if w.data[i].abs() + 2.0 * eps > max {
                continue;
            }
            let shifted = |d: f32| {
                let mut n = net.clone();
                n.params_mut(NodeId(node))[0].data[i] += d;
                loss(&n, &x, &r)
            };
            let numeric = (shifted(eps) - shifted(-eps)) / (2.0 * eps as f64);
            close(
                grads.params[node][0][i],
                numeric,
                &format!("node {node} w[{i}]"),
            );
            checked += 1;
        }
        assert!(checked > 5, "node {node}: {checked} weights checked");
    }
}
