//! Tiny problems whose trained result is known in advance, and checkpoint round trips.

use joule_model::ops::{Activation, FullyConnected};
use joule_model::{zoo, Graph, NodeId, Op, Shape, Tensor, Value};
use joule_nn::train::Schedule;
use joule_nn::{
    checkpoint, evaluate, train, Dataset, FeatureMap, Network, OptimizerConfig, TrainConfig,
};
use std::path::Path;

fn fc(outputs: usize) -> Op {
    Op::FullyConnected(FullyConnected {
        outputs,
        bias: true,
    })
}

/// One FC layer 2 -> 2 with chosen weights: a softmax regression.
fn logistic() -> Network {
    let mut g = Graph::new("logistic", Some(Shape::new(1, 2, 1, 1)));
    g.push("fc", fc(2), &[Value::Input]);
    let mut net = Network::new(g, 0).unwrap();
    net.params_mut(NodeId(0))[0] = Tensor::new(vec![2, 2], vec![0.5, -0.25, 0.0, 1.0]).unwrap();
    net.params_mut(NodeId(0))[1] = Tensor::new(vec![2], vec![0.1, -0.1]).unwrap();
    net
}

fn one_sample() -> Dataset {
    Dataset {
        sample: Shape::new(1, 2, 1, 1),
        images: vec![1.0, 2.0],
        labels: vec![1],
        classes: 2,
    }
}

fn one_step(net: &mut Network, optimizer: OptimizerConfig, lr: f32) {
    let config = TrainConfig {
        epochs: 1,
        batch_size: 1,
        learning_rate: lr,
        schedule: Schedule::Constant,
        optimizer,
        seed: 0,
        shift: 0,
    };
    train(net, &one_sample(), &config, |_| {}).unwrap();
}

#[test]
fn one_sgd_step_matches_the_update_by_hand() {
    // Logits z = W x + b = [0.5 - 0.5 + 0.1, 0 + 2 - 0.1] = [0.1, 1.9]; label 1.
    let p0 = 1.0 / (1.0 + (1.9f32 - 0.1).exp());
    // dL/dz = softmax(z) - onehot(1) = [p0, (1 - p0) - 1].
    let (g0, g1) = (p0, -p0);
    let mut net = logistic();
    one_step(
        &mut net,
        OptimizerConfig::Sgd {
            momentum: 0.9,
            weight_decay: 0.0,
        },
        0.5,
    );
    let w = &net.graph().node(NodeId(0)).params[0].data;
    let b = &net.graph().node(NodeId(0)).params[1].data;
    let want_w = [
        0.5 - 0.5 * g0 * 1.0,
        -0.25 - 0.5 * g0 * 2.0,
        0.0 - 0.5 * g1 * 1.0,
        1.0 - 0.5 * g1 * 2.0,
    ];
    for (got, want) in w.iter().zip(want_w) {
        assert!((got - want).abs() < 1e-6, "{w:?} vs {want_w:?}");
    }
    assert!(
        (b[0] - (0.1 - 0.5 * g0)).abs() < 1e-6 && (b[1] - (-0.1 - 0.5 * g1)).abs() < 1e-6,
        "{b:?}"
    );
}

#[test]
fn first_adam_step_moves_every_weight_by_the_learning_rate() {
    // Adam's first bias-corrected step is lr * g / (|g| + eps): the sign of the gradient.
    let before = logistic();
    let mut net = logistic();
    one_step(
        &mut net,
        OptimizerConfig::Adam {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
        },
        0.01,
    );
    let old = &before.graph().node(NodeId(0)).params[0].data;
    let new = &net.graph().node(NodeId(0)).params[0].data;
    // Gradient signs: row 0 (wrong class) positive, row 1 (label) negative; x > 0.
    let want = [-0.01f32, -0.01, 0.01, 0.01];
    for i in 0..4 {
        assert!(
            (new[i] - old[i] - want[i]).abs() < 1e-5,
            "{i}: {} -> {}",
            old[i],
            new[i]
        );
    }
}

#[test]
fn mlp_learns_xor() {
    let mut g = Graph::new("xor", Some(Shape::new(1, 2, 1, 1)));
    let h = g.push("fc1", fc(8), &[Value::Input]);
    let h = g.push("relu", Op::Activation(Activation::Tanh), &[h]);
    g.push("fc2", fc(2), &[h]);
    let mut net = Network::new(g, 5).unwrap();
    let data = Dataset {
        sample: Shape::new(1, 2, 1, 1),
        images: vec![0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0],
        labels: vec![0, 1, 1, 0],
        classes: 2,
    };
    let config = TrainConfig {
        epochs: 300,
        batch_size: 4,
        learning_rate: 0.2,
        schedule: Schedule::Constant,
        optimizer: OptimizerConfig::Sgd {
            momentum: 0.9,
            weight_decay: 0.0,
        },
        seed: 3,
        shift: 0,
    };
    let losses = train(&mut net, &data, &config, |_| {}).unwrap();
    assert!(
        losses.last().unwrap() < &0.05,
        "final loss {:?}",
        losses.last()
    );
    let eval = evaluate(&net, &data, 4).unwrap();
    assert_eq!(eval.accuracy, 1.0);
    assert_eq!(eval.confusion, vec![vec![2, 0], vec![0, 2]]);
}

#[test]
fn checkpoint_round_trip_is_bit_exact() {
    let mut net = Network::new(zoo::build("vgg-small").unwrap(), 11).unwrap();
    // Non-trivial batch-norm statistics and a mask.
    let bn = net.graph().find("conv2/bn").unwrap();
    for (k, t) in net.params_mut(bn).iter_mut().enumerate() {
        t.data
            .iter_mut()
            .enumerate()
            .for_each(|(i, v)| *v = 0.5 + (i * (k + 1)) as f32 * 0.01);
    }
    let fc1 = net.graph().find("fc1").unwrap();
    let mask = joule_nn::prune::magnitude_mask(&net.graph().node(fc1).params[0].data, 0.5);
    net.set_mask(fc1, mask.clone()).unwrap();
    let dir = std::env::temp_dir().join(format!("joule-nn-ckpt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("vgg.safetensors");
    checkpoint::save(&net, &path).unwrap();
    let back = checkpoint::load(&path).unwrap();
    assert_eq!(back.graph(), net.graph());
    assert_eq!(back.mask(fc1), Some(mask.as_slice()));
    let x = FeatureMap::new(
        Shape::new(2, 1, 28, 28),
        (0..1568).map(|i| (i % 17) as f32 / 17.0).collect(),
    )
    .unwrap();
    let (a, b) = (net.forward(&x).unwrap(), back.forward(&x).unwrap());
    assert!(a
        .data
        .iter()
        .zip(&b.data)
        .all(|(p, q)| p.to_bits() == q.to_bits()));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_checkpoints_name_the_file_and_field() {
    let err =
        checkpoint::from_bytes(b"not a safetensors file", Path::new("x.safetensors")).unwrap_err();
    assert!(
        err.to_string().starts_with("x.safetensors: header:"),
        "{err}"
    );
    let net = logistic();
    let mut bytes = checkpoint::to_bytes(&net).unwrap();
    // Corrupt the graph JSON inside the header.
    let at = bytes
        .windows(4)
        .position(|w| w == b"fc\\\"")
        .or_else(|| bytes.windows(2).position(|w| w == b"fc"))
        .unwrap();
    bytes[at] = b'#';
    let err = checkpoint::from_bytes(&bytes, Path::new("y.safetensors"))
        .map(|_| ())
        .unwrap_err();
    assert!(err.to_string().starts_with("y.safetensors: "), "{err}");
}
