//! The inference path (`Network::forward`: buffers freed and reused, CONV/FC fused with the
//! batch norm and activation after them) computes what a trace computes, bit for bit.

use joule_model::ops::{Activation, BatchNorm, Conv, FullyConnected, Pool};
use joule_model::{zoo, Graph, NodeId, Op, Shape, Value};
use joule_nn::{FeatureMap, Network, Optimizer, Rng, Sgd};

/// A network with batch-norm statistics away from their initial values, so that the fused
/// affine map is not the identity.
fn network(graph: Graph) -> Network {
    let mut net = Network::new(graph, 7).unwrap();
    let mut rng = Rng::new(3);
    for i in 0..net.graph().len() {
        if let Op::BatchNorm(_) = net.graph().node(NodeId(i)).op {
            for (k, t) in net.params_mut(NodeId(i)).iter_mut().enumerate() {
                for v in &mut t.data {
                    let u = rng.uniform();
                    *v = if k == 3 { 0.5 + u } else { u - 0.5 };
                }
            }
        }
    }
    net
}

fn batch(net: &Network, n: usize, seed: u64) -> FeatureMap {
    let shape = Shape {
        n,
        ..net.input_shape().unwrap()
    };
    let mut rng = Rng::new(seed);
    let data = (0..shape.elements()).map(|_| rng.uniform() - 0.5).collect();
    FeatureMap::new(shape, data).unwrap()
}

/// Branches (Add, Concat), a depthwise CONV, batch norm read by two nodes, average pooling,
/// dropout and softmax at the end.
fn branchy() -> Graph {
    let mut g = Graph::new("branchy", Some(Shape::new(1, 3, 9, 9)));
    let c1 = g.push("conv1", Op::Conv(Conv::new(8, 3, 1, 1)), &[Value::Input]);
    let bn = g.push("bn", Op::BatchNorm(BatchNorm::default()), &[c1]);
    let r1 = g.push("relu1", Op::Activation(Activation::Relu), &[bn]);
    let side = g.push("side", Op::Activation(Activation::Tanh), &[bn]);
    let dw = g.push("dw", Op::Conv(Conv::new(8, 3, 2, 1).with_groups(8)), &[r1]);
    let r2 = g.push("relu2", Op::Activation(Activation::Relu6), &[dw]);
    let cb = g.push("conv_b", Op::Conv(Conv::new(8, 1, 2, 0)), &[side]);
    let add = g.push("add", Op::Add, &[r2, cb]);
    let cat = g.push("cat", Op::Concat { axis: 1 }, &[add, cb]);
    let pool = g.push("pool", Op::Pool(Pool::average(2, 2, 1)), &[cat]);
    let flat = g.push("flatten", Op::Flatten, &[pool]);
    let fc = g.push(
        "fc",
        Op::FullyConnected(FullyConnected {
            outputs: 5,
            bias: true,
        }),
        &[flat],
    );
    let drop = g.push("drop", Op::Dropout { ratio: 0.5 }, &[fc]);
    g.push("softmax", Op::Softmax { axis: 1 }, &[drop]);
    g
}

/// A stem CONV at stride 2 over 3 channels with batch norm and ReLU6 (the blocked kernel,
/// writing channel blocks on AVX2 machines), a depthwise and a 1x1 layer reading them, a
/// residual addition in blocks, and a 1x1 head writing planes for a global pooling.
fn stem_into_blocks() -> Graph {
    let mut g = Graph::new("stem-blocks", Some(Shape::new(1, 3, 17, 17)));
    let stem = g.push("stem", Op::Conv(Conv::new(16, 3, 2, 1)), &[Value::Input]);
    let bn = g.push("bn", Op::BatchNorm(BatchNorm::default()), &[stem]);
    let act = g.push("act", Op::Activation(Activation::Relu6), &[bn]);
    let dw = g.push(
        "dw",
        Op::Conv(Conv::new(16, 3, 1, 1).with_groups(16)),
        &[act],
    );
    let pw = g.push("pw", Op::Conv(Conv::new(16, 1, 1, 0)), &[dw]);
    let add = g.push("add", Op::Add, &[pw, act]);
    let head = g.push("head", Op::Conv(Conv::new(24, 1, 1, 0)), &[add]);
    let kind = joule_model::ops::PoolKind::Average;
    g.push("pool", Op::GlobalPool { kind }, &[head]);
    g
}

#[test]
fn forward_equals_the_trace_bit_for_bit() {
    for net in [
        network(zoo::build("lenet5").unwrap()),
        network(zoo::build("vgg-small").unwrap()),
        network(zoo::build("lenet300").unwrap()),
        network(branchy()),
        network(stem_into_blocks()),
    ] {
        let last = net.graph().output().unwrap();
        // Different batch sizes one after the other: reused buffers hold stale values. At
        // 29 samples vgg-small's first CONV writes 2.9 MB: its pooling runs with it a few
        // samples at a time, the last chunk short.
        for (n, seed) in [(3, 1), (1, 2), (5, 3), (3, 4), (29, 5)] {
            let x = batch(&net, n, seed);
            let got = net.forward(&x).unwrap();
            let want = net.trace(&x).unwrap().output(last);
            assert_eq!(got.shape, want.shape, "{}", net.graph().name);
            let same = got
                .data
                .iter()
                .zip(&want.data)
                .all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(same, "{} batch {n}", net.graph().name);
        }
    }
}

/// MobileNet v1: depthwise CONVs (their own kernel), 1x1 CONVs on 7x7 to 112x112 maps (samples
/// lowered side by side), ReLU6 fused into the CONV's pass, a batch of 2 and of 1 (the
/// batch-1 split of the filters over two halves). The MobileNet-V2 and V3 styles at 28x28 pass
/// channel blocks between their depthwise and 1x1 layers and through residual additions, and
/// (V3) back to planes for a squeeze-excitation with hard swish.
#[test]
fn forward_equals_the_trace_bit_for_bit_on_mobilenet() {
    for (name, n, seed) in [
        ("mobilenet", 2, 5),
        ("mobilenet", 1, 6),
        ("mobilenetv2-28", 3, 7),
        ("mobilenetv2-28", 1, 8),
        ("mobilenetv3-28", 3, 9),
        ("mobilenetv3-28", 1, 10),
    ] {
        let net = network(zoo::build(name).unwrap());
        let last = net.graph().output().unwrap();
        let x = batch(&net, n, seed);
        let got = net.forward(&x).unwrap();
        let want = net.trace(&x).unwrap().output(last);
        assert_eq!(got.shape, want.shape);
        assert!(
            got.data
                .iter()
                .zip(&want.data)
                .all(|(a, b)| a.to_bits() == b.to_bits()),
            "{name} batch {n}"
        );
    }
}

#[test]
fn forward_into_reuses_the_output_storage_and_computes_the_same() {
    // A one-CONV network whose output is the CONV's (fused with its ReLU): the case of a
    // latency-table probe.
    let mut g = Graph::new("probe", Some(Shape::new(1, 4, 6, 6)));
    let c = g.push("conv", Op::Conv(Conv::new(8, 3, 1, 1)), &[Value::Input]);
    g.push("relu", Op::Activation(Activation::Relu), &[c]);
    for net in [network(g), network(branchy())] {
        let mut out = FeatureMap::new(Shape::new(1, 1, 1, 1), vec![0.0]).unwrap();
        let mut storage = None;
        // Batch 3, then a smaller batch 1 (storage large enough: kept), then 3 again.
        for (n, seed) in [(3, 1), (1, 2), (3, 4)] {
            let x = batch(&net, n, seed);
            net.forward_into(&x, &mut out).unwrap();
            let want = net.forward(&x).unwrap();
            assert_eq!(out.shape, want.shape);
            assert!(out
                .data
                .iter()
                .zip(&want.data)
                .all(|(a, b)| a.to_bits() == b.to_bits()));
            if n == 3 && storage.is_none() {
                storage = Some(out.data.as_ptr());
            }
        }
        // The storage of the first call came back for the later ones (no new allocation).
        assert_eq!(Some(out.data.as_ptr()), storage, "{}", net.graph().name);
    }
}

/// Inference packs a layer's filters once and keeps them; every way of changing a weight
/// (a parameter written, a mask set, the masks applied, a training step's update) must drop
/// that copy, so the next forward pass computes with the new weights (as the trace does,
/// which never packs them).
#[test]
fn forward_sees_every_change_of_the_weights() {
    let mut net = network(zoo::build("vgg-small").unwrap());
    let last = net.graph().output().unwrap();
    let conv = (0..net.graph().len())
        .map(NodeId)
        .find(|&id| matches!(net.graph().node(id).op, Op::Conv(_)) && id.0 > 0)
        .unwrap();
    let x = batch(&net, 1, 9);
    let check = |net: &Network, what: &str, before: &[f32]| {
        let got = net.forward(&x).unwrap();
        let want = net.trace(&x).unwrap().output(last);
        assert!(
            got.data
                .iter()
                .zip(&want.data)
                .all(|(a, b)| a.to_bits() == b.to_bits()),
            "{what}: forward differs from the trace"
        );
        assert_ne!(got.data, before, "{what}: the output did not change");
        got.data
    };
    let mut out = net.forward(&x).unwrap().data;
    for w in &mut net.params_mut(conv)[0].data {
        *w *= -0.5;
    }
    out = check(&net, "params_mut", &out);
    let len = net.graph().node(conv).params[0].len();
    let mask: Vec<f32> = (0..len).map(|i| (i % 3 != 0) as u8 as f32).collect();
    net.set_mask(conv, mask).unwrap();
    out = check(&net, "set_mask", &out);
    let mut grads = net.backward(&net.trace(&x).unwrap(), last, vec![1.0; 10], false);
    net.mask_gradients(&mut grads);
    let mut sgd = Sgd::new(0.0, 0.0);
    sgd.step(&mut net, &grads, 0.1);
    check(&net, "a training step", &out);
}

/// A 3x3 stride-1 CONV wide enough for Winograd's F(2x2, 3x3) (64 -> 64 channels on 28x28,
/// the shape of resnet18's first stage), with batch norm and ReLU fused: the forward pass
/// equals the trace bit for bit (both run the transformed filters, rebuilt after the
/// weights change), and stays within 1e-4 of the direct convolution (AVX2 machines; on
/// AVX-512 ones the blocked kernel runs it, with the direct convolution's bits).
#[test]
fn winograd_layers_agree_with_the_trace_and_the_direct_convolution() {
    let mut g = Graph::new("winograd", Some(Shape::new(1, 64, 28, 28)));
    let conv = g.push("conv", Op::Conv(Conv::new(64, 3, 1, 1)), &[Value::Input]);
    g.push("relu", Op::Activation(Activation::Relu), &[conv]);
    let mut net = network(g);
    // Winograd runs where the blocked kernel's 16-lane tile does not (AVX-512 machines run
    // every 3x3 layer on it: `winograd::pays`), unless they are asked to choose as AVX2
    // machines (`JOULE_ISA=avx2`).
    #[cfg(target_arch = "x86_64")]
    let avx512 = std::arch::is_x86_feature_detected!("avx512f")
        && std::env::var("JOULE_ISA").map_or(true, |v| v != "avx2");
    #[cfg(not(target_arch = "x86_64"))]
    let avx512 = false;
    for round in 0..2 {
        for (n, seed) in [(1, 11), (3, 12)] {
            let x = batch(&net, n, seed);
            let got = net.forward(&x).unwrap();
            let trace = net.trace(&x).unwrap();
            let want = trace.output(NodeId(1));
            assert!(
                got.data
                    .iter()
                    .zip(&want.data)
                    .all(|(a, b)| a.to_bits() == b.to_bits()),
                "batch {n}, round {round}: forward differs from the trace"
            );
            // The direct kernel (im2col + product) on the same weights.
            let node = net.graph().node(NodeId(0));
            let Op::Conv(op) = &node.op else {
                unreachable!()
            };
            let nest = net.graph().infer(x.shape).unwrap()[0].loop_nest.unwrap();
            let mut direct = vec![0f32; got.data.len()];
            let epilogue = joule_nn::layers::Epilogue {
                activation: Some(Activation::Relu),
                ..Default::default()
            };
            let filter = &node.params[0].data;
            joule_nn::layers::conv_forward(op, &nest, &x.data, filter, &epilogue, &mut direct);
            let worst = got
                .data
                .iter()
                .zip(&direct)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(worst <= 1e-4, "batch {n}: {worst} from the direct result");
            if avx512 {
                // The blocked kernel takes the layer there: the direct sums' bits.
                assert!(worst == 0.0, "batch {n}: {worst} from the direct result");
            } else {
                // Winograd's rounding differs from the direct sum's somewhere: it ran.
                assert!(worst > 0.0, "batch {n}: bit-identical to the direct kernel");
            }
        }
        // Rebuilt after a change of the weights.
        for w in &mut net.params_mut(NodeId(0))[0].data {
            *w *= -0.75;
        }
    }
}
