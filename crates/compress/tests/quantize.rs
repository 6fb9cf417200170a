//! Quantization runs on real data (a slice of MNIST, LeNet-5 trained for one epoch): the
//! width plan, PTQ accuracy against float, what QAT recovers, the quantized forward pass
//! against the baked weights, and resume. The data comes from `scripts/fetch-data.sh`; a
//! missing dataset fails these tests, it never skips them.

use joule_compress::quantize::{self, Config, FirstLast, LayerWidths, Qat};
use joule_compress::RunDir;
use joule_model::zoo;
use joule_nn::quant::{quantize_weights, WeightScheme};
use joule_nn::{evaluate, train, DataSource, Dataset, Network, Split, TrainConfig};
use std::path::PathBuf;

fn data_dir() -> PathBuf {
    std::env::var_os("JOULE_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data"))
}

fn mnist() -> (Dataset, Dataset) {
    let load = |split, n| {
        DataSource::Mnist
            .load(&data_dir(), split)
            .unwrap_or_else(|e| panic!("{e}"))
            .take(n)
    };
    (load(Split::Train, 1500), load(Split::Test, 500))
}

fn trained_lenet(train_set: &Dataset) -> Network {
    let mut network = Network::new(zoo::build("lenet5").unwrap(), 7).unwrap();
    let config = TrainConfig {
        epochs: 1,
        seed: 7,
        ..TrainConfig::default()
    };
    train(&mut network, train_set, &config, |_| {}).unwrap();
    network
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("joule-quantize-{name}-{}", std::process::id()));
    std::fs::remove_dir_all(&dir).ok();
    dir
}

#[test]
fn the_plan_keeps_first_and_last_at_eight_bits_and_checks_widths() {
    let network = Network::new(zoo::build("lenet5").unwrap(), 1).unwrap();
    let graph = network.graph();
    let mut config = Config::new(4, 4);
    config.scheme = WeightScheme::Ternary;
    config.layers.insert(
        "fc2".into(),
        LayerWidths {
            weight: Some(6),
            activation: None,
        },
    );
    let plan = quantize::plan(graph, &config).unwrap();
    let summary: Vec<(&str, WeightScheme, u32, u32, &str)> = plan
        .iter()
        .map(|p| {
            (
                p.name.as_str(),
                p.scheme,
                p.weight_bits,
                p.activation_bits,
                p.reason.as_str(),
            )
        })
        .collect();
    use WeightScheme::{Ternary, Uniform};
    assert_eq!(
        summary,
        [
            ("conv1", Uniform, 8, 8, "first"),
            ("conv2", Ternary, 4, 4, "default"),
            ("fc1", Ternary, 4, 4, "default"),
            ("fc2", Ternary, 6, 4, "override"),
            ("fc3", Uniform, 8, 8, "last"),
        ]
    );
    // Energy widths: ternary weights store 2 bits.
    let widths = quantize::energy_widths(&plan);
    assert_eq!(widths["conv2"].filter, Some(2));
    assert_eq!(widths["conv2"].ifmap, Some(4));
    assert_eq!(widths["fc3"].filter, Some(8));
    config.first_last = FirstLast::Same;
    let same = quantize::plan(graph, &config).unwrap();
    assert_eq!((same[0].scheme, same[0].weight_bits), (Ternary, 4));
    for (w, a, field) in [
        (0, 4, "weight_bits"),
        (4, 33, "activation_bits"),
        (1, 4, "weight_bits"),
        (17, 4, "weight_bits"),
    ] {
        let err = quantize::plan(graph, &Config::new(w, a))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with(field) && err.contains("2 to 16"), "{err}");
    }
    let mut bad = Config::new(8, 8);
    bad.layers.insert("conv9".into(), LayerWidths::default());
    let err = quantize::plan(graph, &bad).unwrap_err().to_string();
    assert!(err.contains("conv9") && err.contains("conv1"), "{err}");
}

#[test]
fn ptq_at_eight_bits_keeps_accuracy_and_low_widths_lose_it() {
    let (train_set, test_set) = mnist();
    let network = trained_lenet(&train_set);
    let float = evaluate(&network, &test_set, 500).unwrap().accuracy;
    assert!(float > 0.75, "float accuracy {float}");
    let dir = temp_dir("ptq8");
    let run = RunDir::create(&dir).unwrap();
    let (quantized, outcome) = quantize::run(
        &network,
        &train_set,
        &test_set,
        &Config::new(8, 8),
        &run,
        false,
        |_| {},
    )
    .unwrap();
    assert_eq!(outcome.float_accuracy, float);
    // 8/8 moves at most 2 of 500 test digits.
    assert!((outcome.ptq_accuracy - float).abs() <= 0.004, "{outcome:?}");
    // The baked weights are exactly codes x per-channel steps, at most 255 levels a channel.
    let conv2 = quantized.graph().find("conv2").unwrap();
    let w = &quantized.graph().node(conv2).params[0];
    let mut levels: Vec<f32> = w.data[..w.len() / w.shape[0]].to_vec();
    levels.sort_by(f32::total_cmp);
    levels.dedup();
    assert!(levels.len() <= 255);
    let requant = quantize_weights(&w.data, w.shape[0], outcome.plan[1].weight_quant());
    assert!(requant.fits_int8());
    for (a, b) in requant.dequantized.iter().zip(&w.data) {
        assert!((a - b).abs() <= 1e-6 * b.abs().max(1e-3), "{a} vs {b}");
    }
    // The checkpoint and quantizers are in the run directory.
    assert!(dir.join(quantize::CHECKPOINT).is_file());
    let stored: Vec<quantize::NamedQuant> = run.read_json(quantize::QUANT).unwrap();
    assert_eq!(stored, outcome.quant);
    // Binary weights everywhere but the first and last layers (1 bit): accuracy drops.
    let mut binary = Config::new(8, 8);
    binary.scheme = WeightScheme::Binary;
    let run2 = RunDir::create(&temp_dir("binary")).unwrap();
    let (_, b) = quantize::run(
        &network,
        &train_set,
        &test_set,
        &binary,
        &run2,
        false,
        |_| {},
    )
    .unwrap();
    assert!(b.ptq_accuracy < float, "{b:?}");
    std::fs::remove_dir_all(&dir).ok();
    std::fs::remove_dir_all(run2.path()).ok();
}

#[test]
fn qat_recovers_low_width_accuracy_and_resumes_to_the_same_bytes() {
    let (train_set, test_set) = mnist();
    let network = trained_lenet(&train_set);
    let mut config = Config::new(2, 2);
    config.first_last = FirstLast::Same;
    config.calibration = joule_nn::quant::Calibration::MinMax;
    config.qat = Some(Qat {
        epochs: 2,
        learning_rate: 0.01,
        batch_size: 64,
    });
    let dir = temp_dir("qat");
    let snapshot = temp_dir("qat-snapshot");
    let run = RunDir::create(&dir).unwrap();
    let (_, outcome) = quantize::run(&network, &train_set, &test_set, &config, &run, false, |e| {
        // Emulate an interruption: keep the run directory as it stood after epoch 0.
        if let quantize::Event::Epoch(e) = e {
            if e.epoch == 0 {
                std::fs::create_dir_all(&snapshot).unwrap();
                for f in ["state.json", "quant.json", "qat.safetensors"] {
                    std::fs::copy(dir.join(f), snapshot.join(f)).unwrap();
                }
            }
        }
    })
    .unwrap();
    // 2-bit everything loses accuracy after PTQ; fine-tuning wins much of it back.
    assert!(
        outcome.ptq_accuracy < outcome.float_accuracy - 0.05,
        "{outcome:?}"
    );
    assert!(
        outcome.accuracy > outcome.ptq_accuracy + 0.05,
        "{outcome:?}"
    );
    assert_eq!(outcome.epochs.len(), 2);
    let resumed = RunDir::open(&snapshot).unwrap();
    let (_, again) = quantize::run(
        &network,
        &train_set,
        &test_set,
        &config,
        &resumed,
        true,
        |_| {},
    )
    .unwrap();
    assert_eq!(again, outcome);
    let bytes = |d: &PathBuf| std::fs::read(d.join(quantize::CHECKPOINT)).unwrap();
    assert_eq!(bytes(&dir), bytes(&snapshot));
    std::fs::remove_dir_all(&dir).ok();
    std::fs::remove_dir_all(&snapshot).ok();
}
