//! Neuron elimination on whole networks: a hand-built network with known redundancy, a
//! briefly trained LeNet-300-100 on MNIST (data from `scripts/fetch-data.sh`; a missing
//! dataset fails, never skips), and the argument errors.

use joule_compress::eliminate::reconstruction::{largest_outgoing, restrict, Reconstructor};
use joule_compress::eliminate::selection::Decomposition;
use joule_compress::eliminate::{layer, Config, Eliminator};
use joule_energy::machine;
use joule_model::ops::{Activation, Conv, FullyConnected, Pool};
use joule_model::{zoo, Graph, NodeId, Op, Shape, Tensor, Value};
use joule_nn::train::{argmax, Schedule};
use joule_nn::{
    evaluate, train, DataSource, Dataset, FeatureMap, Network, OptimizerConfig, Split, TrainConfig,
};
use std::path::PathBuf;

/// Deterministic values in [-1, 1) (xorshift).
fn noise(len: usize, seed: u64) -> Vec<f32> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// 4 inputs -> fc1 (6 neurons; neurons 3, 4, 5 duplicate 0, 1, 2) -> relu -> fc2 (3).
fn duplicated() -> Graph {
    let mut g = Graph::new("dup", Some(Shape::new(1, 1, 2, 2)));
    let fc = |outputs| {
        Op::FullyConnected(FullyConnected {
            outputs,
            bias: true,
        })
    };
    let x = g.push("flatten", Op::Flatten, &[Value::Input]);
    let x = g.push("fc1", fc(6), &[x]);
    let x = g.push("fc1/relu", Op::Activation(Activation::Relu), &[x]);
    g.push("fc2", fc(3), &[x]);
    let base = noise(12, 1);
    let w1: Vec<f32> = base.iter().chain(&base).copied().collect();
    g.node_mut(NodeId(1)).params = vec![
        Tensor::new(vec![6, 4], w1).unwrap(),
        Tensor::new(vec![6], vec![0.5, 0.6, 0.7, 0.5, 0.6, 0.7]).unwrap(),
    ];
    g.node_mut(NodeId(3)).params = vec![
        Tensor::new(vec![3, 6], noise(18, 2)).unwrap(),
        Tensor::new(vec![3], noise(3, 3)).unwrap(),
    ];
    g
}

/// Random images labelled by `network` itself: its accuracy is 100%.
fn self_labelled(network: &Network, samples: usize) -> Dataset {
    let images: Vec<f32> = noise(samples * 4, 4)
        .iter()
        .map(|v| 0.5 + 0.5 * v)
        .collect();
    let input = FeatureMap::new(Shape::new(samples, 1, 2, 2), images.clone()).unwrap();
    let out = network.forward(&input).unwrap();
    let labels = out.data.chunks(3).map(|r| argmax(r) as u8).collect();
    Dataset {
        sample: Shape::new(1, 1, 2, 2),
        images,
        labels,
        classes: 3,
    }
}

fn hardware() -> Vec<joule_energy::Machine> {
    vec![
        machine::preset("horowitz45").unwrap(),
        machine::preset("eyeriss").unwrap(),
    ]
}

#[test]
fn duplicated_neurons_are_eliminated_with_zero_error() {
    let network = Network::new(duplicated(), 1).unwrap();
    let data = self_labelled(&network, 64);
    let eliminator = Eliminator::new(
        &network,
        &data,
        &data,
        &data,
        Config::new(0.0, hardware()).unwrap(),
    );
    let original = eliminator.reference().unwrap();
    assert_eq!(original.accuracy, 1.0);
    assert_eq!(original.params, 6 * 4 + 6 + 3 * 6 + 3);
    let sweep = eliminator.sweep("fc1", original.accuracy, |_| {}).unwrap();
    assert_eq!(
        (sweep.neurons, sweep.rank, sweep.next.as_str()),
        (6, 3, "fc2")
    );
    let first = &sweep.points[0];
    assert_eq!(first.kept, 3);
    assert!(
        first.reconstruction_error < 1e-6,
        "{}",
        first.reconstruction_error
    );
    assert_eq!(first.accuracy, 1.0);
    assert!(first.within);
    assert_eq!(first.params, original.params - 3 * (4 + 1) - 3 * 3);
    // One neuron of each duplicated pair is kept.
    let mut kinds: Vec<usize> = first.neurons.iter().map(|&j| j % 3).collect();
    kinds.sort();
    assert_eq!(kinds, vec![0, 1, 2]);
    // The simplified network computes the same logits on every sample.
    let simplified = Network::new(eliminator.simplified(&sweep, first).unwrap(), 1).unwrap();
    let input = FeatureMap::new(Shape::new(64, 1, 2, 2), data.images.clone()).unwrap();
    let (a, b) = (
        network.forward(&input).unwrap(),
        simplified.forward(&input).unwrap(),
    );
    let diff = a
        .data
        .iter()
        .zip(&b.data)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max);
    assert!(diff < 1e-5, "logits differ by {diff}");
    // Fewer MACs and weights: less energy on both models.
    for (e, e0) in first.energy.iter().zip(&original.energy) {
        assert!(
            e.total < e0.total,
            "{} {} vs {}",
            e.hardware,
            e.total,
            e0.total
        );
        assert!(e.mac < e0.mac);
    }
    // Algorithm 1's stopping rule: decreasing p, only the last point past the threshold.
    let kept: Vec<usize> = sweep.points.iter().map(|p| p.kept).collect();
    assert!(kept.windows(2).all(|w| w[1] + 1 == w[0]), "{kept:?}");
    let last = sweep.points.last().unwrap();
    assert!(sweep.points[..sweep.points.len() - 1]
        .iter()
        .all(|p| p.within));
    assert!(!last.within || last.kept == 1);
}

/// 1x6x6 -> conv1 (4 channels; 2, 3 duplicate 0, 1) -> relu -> pool -> conv2 (3; 2 duplicates
/// 0) -> relu -> flatten -> fc (2 outputs).
fn duplicated_conv() -> Graph {
    let mut g = Graph::new("dupconv", Some(Shape::new(1, 1, 6, 6)));
    let x = g.push("conv1", Op::Conv(Conv::new(4, 3, 1, 1)), &[Value::Input]);
    let x = g.push("conv1/relu", Op::Activation(Activation::Relu), &[x]);
    let x = g.push("pool1", Op::Pool(Pool::max(2, 2, 0)), &[x]);
    let x = g.push("conv2", Op::Conv(Conv::new(3, 3, 1, 1)), &[x]);
    let x = g.push("conv2/relu", Op::Activation(Activation::Relu), &[x]);
    let x = g.push("flatten", Op::Flatten, &[x]);
    g.push(
        "fc",
        Op::FullyConnected(FullyConnected {
            outputs: 2,
            bias: true,
        }),
        &[x],
    );
    let f1 = noise(18, 11);
    g.node_mut(NodeId(0)).params = vec![
        Tensor::new(vec![4, 1, 3, 3], f1.iter().chain(&f1).copied().collect()).unwrap(),
        Tensor::new(vec![4], vec![0.3, 0.2, 0.3, 0.2]).unwrap(),
    ];
    let f2 = noise(72, 12);
    g.node_mut(NodeId(3)).params = vec![
        Tensor::new(
            vec![3, 4, 3, 3],
            f2.iter().chain(&f2[..36]).copied().collect(),
        )
        .unwrap(),
        Tensor::new(vec![3], vec![0.4, 0.5, 0.4]).unwrap(),
    ];
    g.node_mut(NodeId(6)).params = vec![
        Tensor::new(vec![2, 27], noise(54, 13)).unwrap(),
        Tensor::new(vec![2], vec![0.1, -0.1]).unwrap(),
    ];
    g
}

/// 40 noise images of 1 x 6 x 6 (seeded) as a batch, `network`'s output on them, and the
/// images labelled with its own two-class predictions (an exact elimination keeps every
/// label).
fn labelled_by(network: &Network, seed: u64) -> (FeatureMap, FeatureMap, Dataset) {
    let images: Vec<f32> = noise(40 * 36, seed).iter().map(|v| 0.5 + 0.5 * v).collect();
    let input = FeatureMap::new(Shape::new(40, 1, 6, 6), images.clone()).unwrap();
    let reference = network.forward(&input).unwrap();
    let data = Dataset {
        sample: Shape::new(1, 1, 6, 6),
        images,
        labels: reference.data.chunks(2).map(|r| argmax(r) as u8).collect(),
        classes: 2,
    };
    (input, reference, data)
}

#[test]
fn duplicated_conv_channels_are_eliminated_with_zero_error() {
    let network = Network::new(duplicated_conv(), 1).unwrap();
    let (input, reference, data) = labelled_by(&network, 5);
    let config = Config::new(0.0, vec![machine::preset("horowitz45").unwrap()]).unwrap();
    let eliminator = Eliminator::new(&network, &data, &data, &data, config);
    // conv1 loses 2 filters (9 + 1 each) and conv2 their 2 x 9 taps per filter; conv2 loses
    // one filter (4 x 9 + 1) and fc its 9 columns per output.
    for (layer, rank, params_saved) in [("conv1", 2, 2 * 10 + 3 * 2 * 9), ("conv2", 2, 37 + 2 * 9)]
    {
        let sweep = eliminator.sweep(layer, 1.0, |_| {}).unwrap();
        assert_eq!(sweep.rank, rank, "{layer}");
        let first = &sweep.points[0];
        assert_eq!(first.kept, rank);
        assert!(
            first.reconstruction_error < 1e-6,
            "{layer}: {}",
            first.reconstruction_error
        );
        let original = layer::parameters(network.graph());
        assert_eq!(first.params, original - params_saved, "{layer}");
        let simplified = Network::new(eliminator.simplified(&sweep, first).unwrap(), 1).unwrap();
        let out = simplified.forward(&input).unwrap();
        let diff = reference
            .data
            .iter()
            .zip(&out.data)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(diff < 1e-5, "{layer}: logits differ by {diff}");
    }
}

/// 1x6x6 -> conv1 (4 channels, no bias; 2, 3 duplicate 0, 1) -> batch norm (its entries
/// 2, 3 duplicate 0, 1 too) -> relu -> global average pool -> flatten -> fc (2 outputs): the
/// shape of a MobileNet head.
fn duplicated_conv_bn() -> Graph {
    let mut g = Graph::new("dupconvbn", Some(Shape::new(1, 1, 6, 6)));
    let mut conv = Conv::new(4, 3, 1, 1);
    conv.bias = false;
    let x = g.push("conv1", Op::Conv(conv), &[Value::Input]);
    let x = g.push("conv1/bn", Op::BatchNorm(Default::default()), &[x]);
    let x = g.push("conv1/relu", Op::Activation(Activation::Relu), &[x]);
    let x = g.push(
        "gap",
        Op::GlobalPool {
            kind: joule_model::ops::PoolKind::Average,
        },
        &[x],
    );
    let x = g.push("flatten", Op::Flatten, &[x]);
    g.push(
        "fc",
        Op::FullyConnected(FullyConnected {
            outputs: 2,
            bias: true,
        }),
        &[x],
    );
    let f1 = noise(18, 21);
    g.node_mut(NodeId(0)).params =
        vec![Tensor::new(vec![4, 1, 3, 3], f1.iter().chain(&f1).copied().collect()).unwrap()];
    let pair = |a: f32, b: f32| Tensor::new(vec![4], vec![a, b, a, b]).unwrap();
    g.node_mut(NodeId(1)).params = vec![
        pair(1.5, 0.7),
        pair(0.2, -0.1),
        pair(0.1, -0.05),
        pair(0.8, 1.2),
    ];
    g.node_mut(NodeId(5)).params = vec![
        Tensor::new(vec![2, 4], noise(8, 22)).unwrap(),
        Tensor::new(vec![2], vec![0.1, -0.1]).unwrap(),
    ];
    g
}

#[test]
fn a_batch_norm_after_the_layer_loses_the_eliminated_channels_too() {
    let network = Network::new(duplicated_conv_bn(), 1).unwrap();
    let (input, reference, data) = labelled_by(&network, 6);
    let site = layer::site(network.graph(), "conv1").unwrap();
    assert_eq!(site.norms, vec![NodeId(1)]);
    assert_eq!(site.next_name, "fc");
    let config = Config::new(0.0, vec![machine::preset("horowitz45").unwrap()]).unwrap();
    let eliminator = Eliminator::new(&network, &data, &data, &data, config);
    let sweep = eliminator.sweep("conv1", 1.0, |_| {}).unwrap();
    assert_eq!(sweep.rank, 2);
    let first = &sweep.points[0];
    assert_eq!(first.kept, 2);
    assert!(
        first.reconstruction_error < 1e-6,
        "{}",
        first.reconstruction_error
    );
    // Two filters of 9 weights, their 4 batch-norm entries each, and 2 columns of fc.
    let original = layer::parameters(network.graph());
    assert_eq!(first.params, original - (2 * 9 + 2 * 4 + 2 * 2));
    let graph = eliminator.simplified(&sweep, first).unwrap();
    assert!(graph
        .node(NodeId(1))
        .params
        .iter()
        .all(|t| t.shape == vec![2]));
    let out = Network::new(graph, 1).unwrap().forward(&input).unwrap();
    let diff = reference
        .data
        .iter()
        .zip(&out.data)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    assert!(diff < 1e-5, "logits differ by {diff}");
}

#[test]
fn in_mobilenet_v2_only_the_head_is_eliminable() {
    // Every other CONV feeds a depthwise (grouped) CONV or a residual add, neither of which
    // can absorb a combination of channels; the classifier is the output layer.
    let network = Network::new(zoo::build("mobilenetv2-28").unwrap(), 1).unwrap();
    assert_eq!(layer::eliminable_names(network.graph()), vec!["head"]);
    let err = layer::site(network.graph(), "block2/expand")
        .unwrap_err()
        .to_string();
    assert!(err.contains("block2/dw") && err.contains("conv"), "{err}");
}

fn data_dir() -> PathBuf {
    std::env::var_os("JOULE_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data"))
}

fn mnist(split: Split) -> Dataset {
    DataSource::Mnist
        .load(&data_dir(), split)
        .unwrap_or_else(|e| panic!("{e} (run scripts/fetch-data.sh)"))
}

#[test]
fn reconstruction_beats_the_outgoing_norm_baseline_on_trained_lenet300() {
    let train_set = mnist(Split::Train).take(4000);
    let test_set = mnist(Split::Test).take(1000);
    let mut network = Network::new(zoo::build("lenet300").unwrap(), 1).unwrap();
    let config = TrainConfig {
        epochs: 1,
        batch_size: 64,
        learning_rate: 0.05,
        schedule: Schedule::Constant,
        optimizer: OptimizerConfig::Sgd {
            momentum: 0.9,
            weight_decay: 0.0,
        },
        seed: 1,
        shift: 0,
    };
    train(&mut network, &train_set, &config, |_| {}).unwrap();
    let original = evaluate(&network, &test_set, 250).unwrap().accuracy;
    assert!(original > 0.85, "briefly trained accuracy {original}");

    let graph = network.graph();
    let site = layer::site(graph, "fc1").unwrap();
    let x = layer::activations(&network, &site, &train_set.clone().take(2000), 250).unwrap();
    let next = layer::next_weights(graph, &site);
    let p = 30;
    let kept = Decomposition::new(&x, "fc1").unwrap().representatives(p);
    let reconstructor = Reconstructor::new(&x, &next, "fc1").unwrap();
    let solved = reconstructor.solve(&kept);
    let base_kept = largest_outgoing(&next, p);
    let base = reconstructor.scored(&base_kept, restrict(&next, &base_kept));
    assert!(
        solved.relative_error < 0.5 * base.relative_error,
        "{} vs {}",
        solved.relative_error,
        base.relative_error
    );
    let accuracy = |g: Graph| {
        evaluate(&Network::new(g, 1).unwrap(), &test_set, 250)
            .unwrap()
            .accuracy
    };
    let ours = accuracy(layer::simplify(graph, &site, &kept, &solved.weights, &[]));
    let baseline = accuracy(layer::simplify(
        graph,
        &site,
        &base_kept,
        &base.weights,
        &[],
    ));
    assert!(
        ours > baseline + 0.05,
        "p = {p}: reconstruction {ours}, baseline {baseline}, original {original}"
    );
    assert!(
        ours > original - 0.1,
        "reconstruction {ours} vs original {original}"
    );
}

#[test]
fn bad_arguments_give_one_line_errors_naming_the_argument() {
    let check = |message: String, parts: &[&str]| {
        assert!(!message.contains('\n'), "{message}");
        for part in parts {
            assert!(message.contains(part), "{message:?} lacks {part:?}");
        }
    };
    check(
        Config::new(-1.0, hardware()).unwrap_err().to_string(),
        &["max_drop", "-1"],
    );
    check(
        Config::new(f64::NAN, hardware()).unwrap_err().to_string(),
        &["max_drop"],
    );
    check(Config::new(1.0, vec![]).unwrap_err().to_string(), &["hw"]);

    let trained = Network::new(zoo::build("lenet300").unwrap(), 1)
        .unwrap()
        .into_graph();
    check(
        layer::site(&trained, "fc9").unwrap_err().to_string(),
        &["layers fc9", "fc1, fc2"],
    );
    check(
        layer::site(&trained, "flatten").unwrap_err().to_string(),
        &["layers flatten", "flatten", "not fully connected or CONV"],
    );
    check(
        layer::site(&trained, "fc3").unwrap_err().to_string(),
        &["layers fc3", "output layer"],
    );
    // A structure without weights (a zoo name) is eliminable in shape but cannot be swept.
    let structure = zoo::build("lenet300").unwrap();
    let site = layer::site(&structure, "fc1").unwrap();
    check(
        layer::trained(&structure, &site).unwrap_err().to_string(),
        &["fc1", "no trained weights"],
    );
    assert!(layer::trained(&trained, &layer::site(&trained, "fc1").unwrap()).is_ok());
    let lenet5 = Network::new(zoo::build("lenet5").unwrap(), 1)
        .unwrap()
        .into_graph();
    check(
        layer::site(&lenet5, "pool1").unwrap_err().to_string(),
        &["layers pool1", "maxpool", "not fully connected or CONV"],
    );
    assert_eq!(
        layer::eliminable_names(&lenet5),
        vec!["conv1", "conv2", "fc1", "fc2"]
    );
    // CONV: channels over positions; FC after flatten sees 5 x 5 positions per channel.
    let conv2 = layer::site(&lenet5, "conv2").unwrap();
    assert_eq!(
        (
            conv2.next_name.as_str(),
            conv2.neurons,
            conv2.positions,
            conv2.taps
        ),
        ("fc1", 16, 25, 25)
    );
    let conv1 = layer::site(&lenet5, "conv1").unwrap();
    assert_eq!(
        (
            conv1.next_name.as_str(),
            conv1.neurons,
            conv1.positions,
            conv1.taps
        ),
        ("conv2", 6, 196, 25)
    );
}

#[test]
fn thresholds_read_the_validation_split_and_the_test_split_is_only_reported() {
    // The validation split is labelled by the network (100%); the test split is the same
    // images with every label moved to the next class (0%). A sweep that read the test split
    // would find every point within a threshold of 0 points (0% - 0%) and sweep to p = 1.
    let network = Network::new(duplicated(), 1).unwrap();
    let validation = self_labelled(&network, 64);
    let mut scrambled = validation.clone();
    for l in &mut scrambled.labels {
        *l = (*l + 1) % 3;
    }
    let sweep_with = |test: &Dataset| {
        let eliminator = Eliminator::new(
            &network,
            &validation,
            &validation,
            test,
            Config::new(0.0, hardware()).unwrap(),
        );
        let original = eliminator.reference().unwrap();
        let sweep = eliminator
            .sweep("fc1", original.validation_accuracy.unwrap(), |_| {})
            .unwrap();
        let front = joule_compress::eliminate::pareto::pareto(std::slice::from_ref(&sweep), 0);
        (original, sweep, front)
    };
    let (honest, honest_sweep, honest_front) = sweep_with(&validation);
    let (blind, blind_sweep, blind_front) = sweep_with(&scrambled);
    let decisions = |points: &[joule_compress::eliminate::Point]| -> Vec<_> {
        points
            .iter()
            .map(|p| (p.kept, p.within, p.validation_accuracy))
            .collect()
    };
    assert_eq!(
        decisions(&honest_sweep.points),
        decisions(&blind_sweep.points)
    );
    let kept = |f: &[joule_compress::eliminate::pareto::ParetoPoint]| -> Vec<usize> {
        f.iter().map(|p| p.kept).collect()
    };
    assert_eq!(kept(&honest_front), kept(&blind_front));
    // The rank is 3: p = 3 and p = 2 keep every validation label (within), p = 1 loses
    // some and is past the threshold of 0 points; the front is the cheaper of the two
    // within. (Reading the scrambled test split, 0% everywhere, p = 1 would be within.)
    assert_eq!(
        honest_sweep
            .points
            .iter()
            .map(|p| (p.kept, p.within))
            .collect::<Vec<_>>(),
        vec![(3, true), (2, true), (1, false)]
    );
    assert_eq!(kept(&honest_front), vec![2]);
    // The reported test accuracy is each split's own.
    assert_eq!((honest.accuracy, blind.accuracy), (1.0, 0.0));
    assert_eq!(honest.validation_accuracy, blind.validation_accuracy);
    assert_eq!(blind_sweep.points[0].accuracy, 0.0);
    assert_eq!(honest_sweep.points[0].accuracy, 1.0);
}
