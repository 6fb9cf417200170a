//! Masks stay applied through training; filter surgery removes zero filters without
//! changing what the network computes, through batch norm, depthwise, Add and Concat, and
//! removes live filters through squeeze-and-excitation and a channel shuffle exactly as
//! zeroing those channels would.

use joule_model::ops::{
    Activation, BatchNorm, Binary, BinaryKind, Conv, Extent, FullyConnected, PoolKind, Reshape,
    Transpose,
};
use joule_model::{zoo, Graph, NodeId, Op, Shape, Value};
use joule_nn::prune::{magnitude_mask, remove_filters, zero_filters};
use joule_nn::{train, DataSource, FeatureMap, Network, Rng, Split, TrainConfig};
use std::path::PathBuf;

#[test]
fn masked_weights_stay_zero_through_training() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data");
    let dir = std::env::var_os("JOULE_DATA")
        .map(PathBuf::from)
        .unwrap_or(dir);
    let data = DataSource::Mnist
        .load(&dir, Split::Train)
        .unwrap_or_else(|e| panic!("{e}"))
        .take(640);
    let mut net = Network::new(zoo::build("lenet5").unwrap(), 2).unwrap();
    let before = net.clone();
    let mut masked = Vec::new();
    for name in ["conv2", "fc1"] {
        let id = net.graph().find(name).unwrap();
        let mask = magnitude_mask(&net.graph().node(id).params[0].data, 0.8);
        assert_eq!(
            mask.iter().filter(|m| **m == 0.0).count(),
            (mask.len() as f64 * 0.8).round() as usize
        );
        net.set_mask(id, mask).unwrap();
        masked.push(id);
    }
    train(&mut net, &data, &TrainConfig::default(), |_| {}).unwrap();
    for id in masked {
        let (w, w0) = (
            &net.graph().node(id).params[0].data,
            &before.graph().node(id).params[0].data,
        );
        let mask = net.mask(id).unwrap();
        let mut moved = 0;
        for ((w, w0), m) in w.iter().zip(w0).zip(mask) {
            if *m == 0.0 {
                assert_eq!(*w, 0.0);
            } else if w != w0 {
                moved += 1;
            }
        }
        assert!(
            moved > mask.iter().filter(|m| **m == 1.0).count() / 2,
            "kept weights barely trained"
        );
    }
}

/// conv1 -> bn -> relu -> {depthwise -> relu, conv_b} -> add -> concat(add, relu) -> flatten -> fc
fn branchy() -> Graph {
    let mut g = Graph::new("branchy", Some(Shape::new(1, 3, 6, 6)));
    let c1 = g.push("conv1", Op::Conv(Conv::new(8, 3, 1, 1)), &[Value::Input]);
    let bn = g.push("bn", Op::BatchNorm(BatchNorm::default()), &[c1]);
    let r1 = g.push("relu1", Op::Activation(Activation::Relu), &[bn]);
    let dw = g.push("dw", Op::Conv(Conv::new(8, 3, 1, 1).with_groups(8)), &[r1]);
    let r2 = g.push("relu2", Op::Activation(Activation::Relu), &[dw]);
    let cb = g.push("conv_b", Op::Conv(Conv::new(8, 1, 1, 0)), &[r1]);
    let add = g.push("add", Op::Add, &[r2, cb]);
    let cat = g.push("cat", Op::Concat { axis: 1 }, &[add, r1]);
    let flat = g.push("flatten", Op::Flatten, &[cat]);
    g.push(
        "fc",
        Op::FullyConnected(FullyConnected {
            outputs: 5,
            bias: true,
        }),
        &[flat],
    );
    g
}

#[test]
fn removing_zero_filters_keeps_outputs() {
    let mut net = Network::new(branchy(), 4).unwrap();
    let mut rng = Rng::new(1);
    let id = |net: &Network, name: &str| net.graph().find(name).unwrap();
    // Random biases and batch-norm statistics everywhere...
    for i in 0..net.graph().len() {
        for (k, t) in net.params_mut(NodeId(i)).iter_mut().enumerate() {
            if k > 0 {
                t.data
                    .iter_mut()
                    .for_each(|v| *v = 0.5 + rng.symmetric(0.4));
            }
        }
    }
    // ...except on the channels to remove, which are zero all the way through.
    let dead = [2usize, 5];
    for &f in &dead {
        let (c1, bn, dw, cb) = (
            id(&net, "conv1"),
            id(&net, "bn"),
            id(&net, "dw"),
            id(&net, "conv_b"),
        );
        let p = net.params_mut(c1);
        p[0].data[f * 27..(f + 1) * 27].fill(0.0);
        p[1].data[f] = 0.0;
        net.params_mut(bn)[1].data[f] = 0.0;
        net.params_mut(bn)[2].data[f] = 0.0;
        net.params_mut(dw)[1].data[f] = 0.0;
        let p = net.params_mut(cb);
        p[0].data[f * 8..(f + 1) * 8].fill(0.0);
        p[1].data[f] = 0.0;
    }
    assert_eq!(zero_filters(net.graph(), id(&net, "conv1")), dead);
    let x = FeatureMap::new(
        Shape::new(3, 3, 6, 6),
        (0..324).map(|_| rng.symmetric(1.0)).collect(),
    )
    .unwrap();
    let before = net.forward(&x).unwrap();
    let small = remove_filters(&net, id(&net, "conv1"), &dead).unwrap();
    let after = small.forward(&x).unwrap();
    assert_eq!(before.shape, after.shape);
    for (a, b) in before.data.iter().zip(&after.data) {
        assert!((a - b).abs() <= 1e-5 * a.abs().max(1.0), "{a} vs {b}");
    }
    let g = small.graph();
    let node = |name: &str| g.node(g.find(name).unwrap());
    let Op::Conv(dw) = &node("dw").op else {
        panic!()
    };
    assert_eq!((dw.filters, dw.groups), (6, 6));
    assert_eq!(node("conv1").params[0].shape, vec![6, 3, 3, 3]);
    assert_eq!(node("bn").params[3].len(), 6);
    assert_eq!(node("conv_b").params[0].shape, vec![6, 6, 1, 1]);
    assert_eq!(node("fc").params[0].shape, vec![5, 12 * 36]);
}

#[test]
fn surgery_refuses_what_it_cannot_cut() {
    let net = Network::new(branchy(), 4).unwrap();
    let fc = net.graph().find("fc").unwrap();
    let err = remove_filters(&net, fc, &[0]).unwrap_err().to_string();
    assert!(
        err.contains("\"fc\"") && err.contains("network output"),
        "{err}"
    );
    let conv1 = net.graph().find("conv1").unwrap();
    assert!(remove_filters(&net, conv1, &[8])
        .unwrap_err()
        .to_string()
        .contains("no filter 8"));
    let mut g = Graph::new("grouped", Some(Shape::new(1, 2, 4, 4)));
    let a = g.push("a", Op::Conv(Conv::new(4, 1, 1, 0)), &[Value::Input]);
    let b = g.push("b", Op::Conv(Conv::new(4, 3, 1, 1).with_groups(2)), &[a]);
    g.push(
        "head",
        Op::GlobalPool {
            kind: joule_model::ops::PoolKind::Average,
        },
        &[b],
    );
    let net = Network::new(g, 0).unwrap();
    let err = remove_filters(&net, NodeId(0), &[1])
        .unwrap_err()
        .to_string();
    assert!(err.contains("\"b\"") && err.contains("grouped"), "{err}");
}

fn fc(outputs: usize) -> Op {
    Op::FullyConnected(FullyConnected {
        outputs,
        bias: true,
    })
}

fn reshape(target: &[Extent]) -> Op {
    Op::Reshape(Reshape {
        target: target.to_vec(),
    })
}

/// conv1 (8) -> bn1 -> relu6 = x; SE: global pool -> flatten -> fc_sq (4) -> relu -> fc_ex (8)
/// -> hard sigmoid -> reshape [N, 8, 1, 1] -> mul(x, s) = y; shuffle of y in 2 groups = z;
/// depthwise -> bn2 -> hard swish = w; add(w, z) -> conv3 (5) -> global pool -> flatten -> fc.
fn se_shuffle() -> Graph {
    let mut g = Graph::new("se_shuffle", Some(Shape::new(1, 2, 5, 5)));
    let c1 = g.push("conv1", Op::Conv(Conv::new(8, 3, 1, 1)), &[Value::Input]);
    let bn1 = g.push("bn1", Op::BatchNorm(BatchNorm::default()), &[c1]);
    let x = g.push("relu6", Op::Activation(Activation::Relu6), &[bn1]);
    let avg = Op::GlobalPool {
        kind: PoolKind::Average,
    };
    let p = g.push("se/pool", avg.clone(), &[x]);
    let f = g.push("se/flatten", Op::Flatten, &[p]);
    let sq = g.push("fc_sq", fc(4), &[f]);
    let r = g.push("se/relu", Op::Activation(Activation::Relu), &[sq]);
    let ex = g.push("fc_ex", fc(8), &[r]);
    let gate = Activation::HardSigmoid {
        alpha: 1.0 / 6.0,
        beta: 0.5,
    };
    let s = g.push("se/gate", Op::Activation(gate), &[ex]);
    let s = g.push(
        "se/unflatten",
        reshape(&[
            Extent::Copy,
            Extent::Fixed(8),
            Extent::Fixed(1),
            Extent::Fixed(1),
        ]),
        &[s],
    );
    let mul = Op::Binary(Binary {
        kind: BinaryKind::Mul,
        constant: None,
    });
    let y = g.push("se/scale", mul, &[x, s]);
    let split = reshape(&[
        Extent::Copy,
        Extent::Fixed(2),
        Extent::Fixed(4),
        Extent::Fixed(5),
        Extent::Fixed(5),
    ]);
    let t = g.push("shuffle/split", split, &[y]);
    let swap = Op::Transpose(Transpose {
        perm: vec![0, 2, 1, 3, 4],
    });
    let t = g.push("shuffle/swap", swap, &[t]);
    let merge = reshape(&[
        Extent::Copy,
        Extent::Fixed(8),
        Extent::Fixed(5),
        Extent::Fixed(5),
    ]);
    let z = g.push("shuffle/merge", merge, &[t]);
    let dw = g.push("dw", Op::Conv(Conv::new(8, 3, 1, 1).with_groups(8)), &[z]);
    let bn2 = g.push("bn2", Op::BatchNorm(BatchNorm::default()), &[dw]);
    let w = g.push("hswish", Op::Activation(Activation::HardSwish), &[bn2]);
    let sum = g.push("add", Op::Add, &[w, z]);
    let c3 = g.push("conv3", Op::Conv(Conv::new(5, 1, 1, 0)), &[sum]);
    let p = g.push("pool", avg, &[c3]);
    let f = g.push("flatten", Op::Flatten, &[p]);
    g.push("fc", fc(3), &[f]);
    g
}

#[test]
fn surgery_through_squeeze_excitation_and_a_shuffle_equals_zeroing_the_channels() {
    let mut net = Network::new(se_shuffle(), 5).unwrap();
    let mut rng = Rng::new(2);
    // Non-trivial biases and batch-norm parameters everywhere (variances stay positive).
    for i in 0..net.graph().len() {
        for (k, t) in net.params_mut(NodeId(i)).iter_mut().enumerate() {
            if k > 0 {
                t.data
                    .iter_mut()
                    .for_each(|v| *v = 0.5 + rng.symmetric(0.4));
            }
        }
    }
    let id = |net: &Network, name: &str| net.graph().find(name).unwrap();
    // Channels {1, 3} of each group of 4; after the shuffle (channel i*4 + j goes to
    // j*2 + i) they are channels {2, 3, 6, 7}.
    let removed = [1usize, 3, 5, 7];
    let shuffled = [2usize, 3, 6, 7];
    // The expectation: the same network with those channels forced to zero where they are
    // made (batch norm scale and shift 0 gives 0, which ReLU6 and hard swish keep).
    let mut zeroed = net.clone();
    for (bn, set) in [("bn1", &removed), ("bn2", &shuffled)] {
        let p = zeroed.params_mut(id(&net, bn));
        for &c in set.iter() {
            p[0].data[c] = 0.0;
            p[1].data[c] = 0.0;
        }
    }
    let x = FeatureMap::new(
        Shape::new(3, 2, 5, 5),
        (0..150).map(|_| rng.symmetric(1.0)).collect(),
    )
    .unwrap();
    let want = zeroed.forward(&x).unwrap();
    let full = net.forward(&x).unwrap();
    assert!(
        want.data
            .iter()
            .zip(&full.data)
            .any(|(a, b)| (a - b).abs() > 1e-3),
        "the removed channels must matter, or the test proves nothing"
    );
    let small = remove_filters(&net, id(&net, "conv1"), &removed).unwrap();
    let got = small.forward(&x).unwrap();
    assert_eq!(got.shape, want.shape);
    for (a, b) in got.data.iter().zip(&want.data) {
        assert!((a - b).abs() <= 1e-5 * b.abs().max(1.0), "{a} vs {b}");
    }
    let g = small.graph();
    let node = |name: &str| g.node(g.find(name).unwrap());
    assert_eq!(node("conv1").params[0].shape, vec![4, 2, 3, 3]);
    assert_eq!(node("bn1").params[0].len(), 4);
    assert_eq!(node("fc_sq").params[0].shape, vec![4, 4]);
    assert_eq!(node("fc_ex").params[0].shape, vec![4, 4]);
    assert_eq!(node("fc_ex").params[1].len(), 4);
    let Op::Conv(dw) = &node("dw").op else {
        panic!()
    };
    assert_eq!((dw.filters, dw.groups), (4, 4));
    assert_eq!(node("conv3").params[0].shape, vec![5, 4, 1, 1]);
    let dims = small.graph().infer(Shape::new(1, 2, 5, 5)).unwrap();
    let at = |name: &str| dims[g.find(name).unwrap().0].output_dims.to_vec();
    assert_eq!(at("se/unflatten"), [1, 4, 1, 1]);
    assert_eq!(at("shuffle/split"), [1, 2, 2, 5, 5]);
    assert_eq!(at("shuffle/merge"), [1, 4, 5, 5]);
    // The excitation layer's gate outputs are tied to the channels they gate: removing
    // two of them is removing those channels of conv1.
    let via_gate = remove_filters(&net, id(&net, "fc_ex"), &[1, 5]).unwrap();
    let via_conv = remove_filters(&net, id(&net, "conv1"), &[1, 5]).unwrap();
    assert_eq!(
        via_gate.forward(&x).unwrap().data,
        via_conv.forward(&x).unwrap().data
    );
    assert_eq!(
        via_gate.graph().node(id(&net, "conv1")).params[0].shape[0],
        6
    );
}

#[test]
fn a_shuffle_refuses_cuts_that_differ_between_groups() {
    let net = Network::new(se_shuffle(), 5).unwrap();
    let conv1 = net.graph().find("conv1").unwrap();
    for cut in [&[1usize][..], &[1, 4], &[0, 1, 4]] {
        let err = remove_filters(&net, conv1, cut).unwrap_err().to_string();
        assert!(
            err.contains("shuffle/split") && err.contains("every group"),
            "{cut:?}: {err}"
        );
    }
    // The squeeze layer's outputs are free: only the excitation layer's inputs follow.
    let sq = net.graph().find("fc_sq").unwrap();
    let small = remove_filters(&net, sq, &[0, 2]).unwrap();
    let g = small.graph();
    assert_eq!(g.node(g.find("fc_ex").unwrap()).params[0].shape, vec![8, 2]);
    assert_eq!(g.node(conv1).params[0].shape[0], 8);
}
