//! Training on real data and on a problem whose answer is known. The data comes from
//! `scripts/fetch-data.sh`, which `scripts/test.sh` runs first; a missing dataset fails these
//! tests with the command to run, it never skips them.

use joule_model::{zoo, Shape};
use joule_nn::train::{Event, Schedule};
use joule_nn::{
    evaluate, train, DataSource, Dataset, Network, OptimizerConfig, Split, TrainConfig,
};
use std::path::PathBuf;

fn data_dir() -> PathBuf {
    std::env::var_os("JOULE_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data"))
}

fn load(source: DataSource, split: Split) -> Dataset {
    source
        .load(&data_dir(), split)
        .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn lenet5_learns_mnist_in_three_epochs() {
    let train_set = load(DataSource::Mnist, Split::Train);
    let test_set = load(DataSource::Mnist, Split::Test);
    assert_eq!((train_set.len(), test_set.len()), (8000, 2000));
    let mut network = Network::new(zoo::build("lenet5").unwrap(), 1).unwrap();
    let config = TrainConfig {
        epochs: 3,
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
    let mut seconds = Vec::new();
    let losses = train(&mut network, &train_set, &config, |e| {
        if let Event::Epoch { seconds: s, .. } = e {
            seconds.push(*s)
        }
    })
    .unwrap();
    let eval = evaluate(&network, &test_set, 256).unwrap();
    eprintln!(
        "losses {losses:?}, epoch seconds {seconds:?}, accuracy {}",
        eval.accuracy
    );
    assert!(losses[1] < losses[0], "{losses:?}");
    // Three epochs on 8,000 images land at 94.2-96.2% over seeds 1-6 (measured with the FC
    // products on the gemm crate and on the AVX-512 kernel, 2026-12-01) and at 93.6-96.1%
    // over seeds 1-14 with the input gradients of few channels on the direct kernel (94.6-
    // 96.0% without, mean 95.0 against 95.4; AVX2, 2026-12-01): rounding alone moves a seed
    // by up to two points, so the bar sits below that spread, far above chance.
    assert!(eval.accuracy > 0.93, "test accuracy {}", eval.accuracy);
    assert_eq!(eval.confusion.iter().flatten().sum::<u64>(), 2000);
}

#[test]
fn fashion_mnist_is_the_full_gzip_idx_set() {
    let test_set = load(DataSource::FashionMnist, Split::Test);
    assert_eq!(test_set.len(), 10_000);
    assert_eq!(test_set.sample, Shape::new(1, 1, 28, 28));
    let mut per_class = [0usize; 10];
    test_set
        .labels
        .iter()
        .for_each(|&l| per_class[l as usize] += 1);
    assert_eq!(per_class, [1000; 10]);
    let mean = test_set.images.iter().sum::<f32>() / test_set.images.len() as f32;
    assert!((0.2..0.4).contains(&mean), "mean pixel {mean}");
}

#[test]
fn seeded_training_repeats_bit_for_bit() {
    let data = load(DataSource::Mnist, Split::Train).take(512);
    let run = || {
        let mut network = Network::new(zoo::build("lenet5").unwrap(), 9).unwrap();
        let config = TrainConfig {
            seed: 4,
            shift: 1,
            ..TrainConfig::default()
        };
        train(&mut network, &data, &config, |_| {}).unwrap();
        network.into_graph()
    };
    let (a, b) = (run(), run());
    for (x, y) in a.nodes().iter().zip(b.nodes()) {
        for (p, q) in x.params.iter().zip(&y.params) {
            assert!(
                p.data
                    .iter()
                    .zip(&q.data)
                    .all(|(u, v)| u.to_bits() == v.to_bits()),
                "{}",
                x.name
            );
        }
    }
}

/// The same seeded run on pools of 1 and 3 threads gives the same bits (LeNet-5; vgg-small
/// with its batch norms, dropout and wide FC layer): every parallel split (samples'
/// gradient chunks, FC gradient rows, planes) is fixed, not the pool's.
#[test]
fn training_does_not_depend_on_the_thread_count() {
    let data = load(DataSource::Mnist, Split::Train).take(256);
    for model in ["lenet5", "vgg-small"] {
        same_bits_on_1_and_3_threads(model, &data);
    }
}

fn same_bits_on_1_and_3_threads(model: &str, data: &Dataset) {
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let mut network = Network::new(zoo::build(model).unwrap(), 3).unwrap();
            let config = TrainConfig {
                seed: 5,
                batch_size: 96,
                ..TrainConfig::default()
            };
            train(&mut network, data, &config, |_| {}).unwrap();
            network.into_graph()
        })
    };
    let (a, b) = (run(1), run(3));
    for (x, y) in a.nodes().iter().zip(b.nodes()) {
        for (p, q) in x.params.iter().zip(&y.params) {
            let same = p
                .data
                .iter()
                .zip(&q.data)
                .all(|(u, v)| u.to_bits() == v.to_bits());
            assert!(same, "{model}: {}", x.name);
        }
    }
}
