//! Masks stay applied through training; filter surgery removes zero filters without
//! changing what the network computes, through batch norm, depthwise, Add and Concat.

use joule_model::ops::{Activation, BatchNorm, Conv, FullyConnected};
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
