//! Pruning runs on real data (a small slice of MNIST, LeNet-5 trained for one epoch): the
//! layer order, fixed masks, resume, the restore search and bad inputs. The data comes from
//! `scripts/fetch-data.sh`; a missing dataset fails these tests, it never skips them.

use joule_compress::eap::{patches, restore};
use joule_compress::metrics::measure_layers;
use joule_compress::run::{Action, Inputs, Limit};
use joule_compress::{CompressError, Method, Run, RunConfig};
use joule_energy::{machine, spec};
use joule_model::ops::{Activation, FullyConnected};
use joule_model::{zoo, Graph, NodeId, Op, Shape, Value};
use joule_nn::{train, DataSource, Dataset, FeatureMap, Network, Rng, Split, TrainConfig};
use std::path::PathBuf;

fn data_dir() -> PathBuf {
    std::env::var_os("JOULE_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data"))
}

/// Validation images carved from the 1,500 training images (seed 3, as `small_config`).
const HOLDOUT: usize = 300;

/// (training images less the validation split, validation split, test split).
fn mnist() -> (Dataset, Dataset, Dataset) {
    let load = |split, n| {
        DataSource::Mnist
            .load(&data_dir(), split)
            .unwrap_or_else(|e| panic!("{e}"))
            .take(n)
    };
    let (train, validation) = load(Split::Train, 1500).split_holdout(HOLDOUT, 3);
    (train, validation, load(Split::Test, 400))
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

fn small_config(method: Method) -> RunConfig {
    let mut c = RunConfig::new(method);
    c.seed = 3;
    c.max_rounds = 2;
    c.max_drop = 5.0;
    c.calibration_images = 48;
    c.finetune_epochs = 1;
    c.eap.max_patches = 512;
    c.magnitude.grid = vec![0.3, 0.6, 0.9];
    c.magnitude.sensitivity_samples = 200;
    c.holdout = HOLDOUT;
    c
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("joule-prune-{name}-{}", std::process::id()));
    std::fs::remove_dir_all(&dir).ok();
    dir
}

fn inputs<'a>(
    train: &'a Dataset,
    validation: &'a Dataset,
    test: &'a Dataset,
    hw: &'a joule_energy::Machine,
) -> Inputs<'a> {
    Inputs {
        train,
        validation,
        test,
        hw,
        model: "lenet5".into(),
        data: "mnist".into(),
        hardware: "eyeriss".into(),
        train_samples: None,
    }
}

#[test]
fn eap_prunes_layers_in_energy_order_and_masks_survive_fine_tuning() {
    let (train_set, validation, test_set) = mnist();
    let hw = machine::preset("eyeriss").unwrap();
    let network = trained_lenet(&train_set);
    let dir = temp_dir("order");
    let mut run = Run::start(
        &dir,
        network.clone(),
        inputs(&train_set, &validation, &test_set, &hw),
        small_config(Method::Eap),
    )
    .unwrap();
    run.proceed(Limit::default(), |_| {}).unwrap();
    let state = run.state.clone();
    // The first pass visits every layer once, most energy first, as the engine ranks them
    // for the unpruned network.
    let mut by_energy = state.original.layers.clone();
    by_energy.sort_by(|a, b| b.energy.total_cmp(&a.energy));
    let first_pass: Vec<String> = state
        .history
        .iter()
        .take_while(|r| r.action == Action::PruneLayer)
        .map(|r| r.layer.clone().unwrap())
        .collect();
    let expected: Vec<String> = by_energy.iter().map(|l| l.name.clone()).collect();
    assert_eq!(first_pass, expected);
    assert!(by_energy[0].energy > by_energy[4].energy);
    // Every pruning step ends within its threshold after the least-squares refit, and prunes.
    for r in state
        .history
        .iter()
        .filter(|r| r.action == Action::PruneLayer)
    {
        let e = r.eap.as_ref().unwrap();
        assert!(e.error_refit <= e.error_restored + 1e-9, "{e:?}");
        assert!(e.kept_after <= e.kept_before, "{e:?}");
    }
    // Fine-tuning ran, yet every pruned weight is still exactly zero and energy went down.
    let best = run.best_network().unwrap();
    assert!(state
        .history
        .iter()
        .any(|r| r.action == Action::Finetune && r.accepted == Some(true)));
    let mut pruned = 0;
    for (id, node) in best.graph().weighted_layers() {
        let mask = best.mask(id).expect("every layer got a mask");
        for (w, m) in node.params[0].data.iter().zip(mask) {
            if *m == 0.0 {
                assert_eq!(*w, 0.0, "{}", node.name);
                pruned += 1;
            }
        }
    }
    assert!(pruned > 0);
    assert!(state.best.nonzero_weights < state.original.nonzero_weights);
    assert!(state.best.energy < state.original.energy);
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn resume_after_interruption_reaches_the_same_result() {
    let (train_set, validation, test_set) = mnist();
    let hw = machine::preset("eyeriss").unwrap();
    let network = trained_lenet(&train_set);
    for method in [Method::Magnitude, Method::Eap] {
        let mut config = small_config(method);
        config.max_rounds = 3;
        let whole = temp_dir("whole");
        let mut run = Run::start(
            &whole,
            network.clone(),
            inputs(&train_set, &validation, &test_set, &hw),
            config.clone(),
        )
        .unwrap();
        run.proceed(Limit::default(), |_| {}).unwrap();
        let reference = run.state.clone();
        let expected = run.best_network().unwrap();

        let parts = temp_dir("parts");
        let mut run = Run::start(
            &parts,
            network.clone(),
            inputs(&train_set, &validation, &test_set, &hw),
            config,
        )
        .unwrap();
        run.proceed(
            Limit {
                stop_after: Some(1),
            },
            |_| {},
        )
        .unwrap();
        assert!(!run.state.done);
        drop(run);
        // A new process would do exactly this: reopen the directory.
        let mut run = Run::resume(&parts, inputs(&train_set, &validation, &test_set, &hw)).unwrap();
        run.proceed(
            Limit {
                stop_after: Some(2),
            },
            |_| {},
        )
        .unwrap();
        drop(run);
        let mut run = Run::resume(&parts, inputs(&train_set, &validation, &test_set, &hw)).unwrap();
        run.proceed(Limit::default(), |_| {}).unwrap();
        let resumed = run.state.clone();
        assert!(resumed.done);
        assert!(
            reference.history.len() >= 3,
            "{method:?}: {}",
            reference.history.len()
        );
        let key = |s: &joule_compress::run::State| -> Vec<(usize, u64, usize)> {
            s.history
                .iter()
                .map(|r| (r.step, r.accuracy.to_bits(), r.nonzero_weights))
                .collect()
        };
        assert_eq!(key(&resumed), key(&reference), "{method:?}");
        let got = run.best_network().unwrap();
        for (a, b) in got.graph().nodes().iter().zip(expected.graph().nodes()) {
            assert_eq!(a.params, b.params, "{method:?}: {}", a.name);
        }
        std::fs::remove_dir_all(whole).ok();
        std::fs::remove_dir_all(parts).ok();
    }
}

#[test]
fn restore_search_stops_at_the_threshold() {
    // An FC layer whose inputs are often zero in some columns: output error, not magnitude,
    // tells which weights matter.
    let mut rng = Rng::new(11);
    let (n, k, m) = (300, 24, 4);
    let data: Vec<f32> = (0..n * k)
        .map(|i| {
            let column = i % k;
            let v = rng.symmetric(1.0);
            if column % 3 == 0 && rng.uniform() < 0.9 {
                0.0
            } else {
                v
            }
        })
        .collect();
    let weights: Vec<f32> = (0..m * k).map(|_| rng.symmetric(1.0)).collect();
    let mut y = vec![0f32; n * m];
    for s in 0..n {
        for f in 0..m {
            y[s * m + f] = (0..k).map(|j| weights[f * k + j] * data[s * k + j]).sum();
        }
    }
    let input = FeatureMap::new(Shape::new(n, k, 1, 1), data.clone()).unwrap();
    let target = FeatureMap::new(Shape::new(n, m, 1, 1), y.clone()).unwrap();
    let op = Op::FullyConnected(FullyConnected {
        outputs: m,
        bias: false,
    });
    let problems = patches::build(&op, &[m, k], false, &input, &target, 10_000, &mut rng);
    let mut layer = restore::LayerWeights {
        filters: (0..m)
            .map(|f| {
                weights[f * k..(f + 1) * k]
                    .iter()
                    .map(|&v| v as f64)
                    .collect()
            })
            .collect(),
        kept: vec![vec![true; k]; m],
    };
    let threshold = 0.3;
    let s = restore::remove_and_restore(&problems, &mut layer, threshold, 2.0);
    assert!(s.error_removed > threshold, "{s:?}");
    assert!(s.restored > 0 && s.restored < s.removed, "{s:?}");
    // The error, recomputed directly from the patches, is within the threshold...
    let direct = |w: &[Vec<f64>]| {
        let (mut err, mut total) = (0.0, 0.0);
        for smp in 0..n {
            for (f, wf) in w.iter().enumerate() {
                let out: f64 = (0..k).map(|j| wf[j] * data[smp * k + j] as f64).sum();
                let want = y[smp * m + f] as f64;
                err += (want - out).powi(2);
                total += want * want;
            }
        }
        (err / total).sqrt()
    };
    let e = direct(&layer.filters);
    assert!(
        e <= threshold + 1e-9 && (e - s.error_restored).abs() < 1e-6,
        "{e} {s:?}"
    );
    // ... and the search stopped there: dropping the smallest kept weight of the result
    // would still be in bounds only if the search had restored one weight too many, which
    // greedy restore with single-weight blocks never does for this tiny layer.
    let kept: usize = layer.kept.iter().flatten().filter(|k| **k).count();
    assert_eq!(kept, m * k - s.removed + s.restored);
    let mut worst = layer.filters.clone();
    let mut smallest = (f64::INFINITY, 0, 0);
    for (f, wf) in layer.filters.iter().enumerate() {
        for (j, v) in wf.iter().enumerate() {
            if *v != 0.0 && v.abs() < smallest.0 {
                smallest = (v.abs(), f, j);
            }
        }
    }
    worst[smallest.1][smallest.2] = 0.0;
    assert!(direct(&worst) > e);
}

#[test]
fn bad_inputs_give_one_line_errors() {
    let (train_set, validation, test_set) = mnist();
    let hw = machine::preset("eyeriss").unwrap();
    // No CONV/FC layer.
    let mut g = Graph::new("relu-only", Some(Shape::new(1, 1, 28, 28)));
    g.push("relu", Op::Activation(Activation::Relu), &[Value::Input]);
    let network = Network::new(g, 0).unwrap();
    let err = Run::start(
        &temp_dir("none"),
        network,
        inputs(&train_set, &validation, &test_set, &hw),
        small_config(Method::Eap),
    )
    .err()
    .unwrap();
    assert!(
        matches!(err, CompressError::NoWeightedLayers { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("relu-only") && !err.to_string().contains('\n'));
    // Unknown hardware field.
    let yaml = "name: x\narray: {rows: 2, cols: 2}\nrf: {words: 64}\nbuffer: {words: 1024}\nword_bits: 16\nenergy: {unit: mac, mac: 1, rf: 1, array: 2, buffer: 6, dram: 200, sram: 3}\n";
    let err = spec::parse(yaml, "hw.yaml").unwrap_err().to_string();
    assert!(
        err.contains("hw.yaml") && err.contains("sram") && !err.contains('\n'),
        "{err}"
    );
    // Out-of-range settings.
    let mut c = small_config(Method::Magnitude);
    c.max_drop = -1.0;
    assert!(c
        .validate()
        .unwrap_err()
        .to_string()
        .starts_with("max_drop:"));
    // A target that cannot be met: 1% of the energy within 0.01 points in one round.
    let mut c = small_config(Method::Magnitude);
    c.max_rounds = 1;
    c.max_drop = 0.01;
    c.target_energy = Some(0.01);
    let dir = temp_dir("target");
    let mut run = Run::start(
        &dir,
        trained_lenet(&train_set),
        inputs(&train_set, &validation, &test_set, &hw),
        c,
    )
    .unwrap();
    run.proceed(Limit::default(), |_| {}).unwrap();
    let err = run.check_target().unwrap_err().to_string();
    assert!(
        err.starts_with("target cannot be met: energy 0.01") && !err.contains('\n'),
        "{err}"
    );
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn measured_densities_feed_the_energy_model() {
    let (train_set, _, _) = mnist();
    let hw = machine::preset("eyeriss").unwrap();
    let network = trained_lenet(&train_set);
    let calibration = joule_compress::metrics::calibration_batch(&train_set, 32, 1).unwrap();
    let dense = measure_layers(&network, &calibration, &hw).unwrap();
    // conv1 reads raw images (MNIST is mostly background): its ifmap density is the fraction
    // of non-zero pixels; layers after ReLU see fewer than all values non-zero.
    let pixels = calibration.data.iter().filter(|v| **v != 0.0).count() as f64
        / calibration.data.len() as f64;
    assert_eq!(dense[0].ifmap_density, pixels);
    assert!(dense[1].ifmap_density < 1.0);
    // Zeroing half of fc1's weights lowers its non-skipped MACs by about half and its energy.
    let mut half = network.clone();
    let fc1 = half.graph().find("fc1").unwrap();
    let len = half.graph().node(fc1).params[0].len();
    half.set_mask(fc1, (0..len).map(|i| (i % 2) as f32).collect())
        .unwrap();
    let sparse = measure_layers(&half, &calibration, &hw).unwrap();
    let i = dense.iter().position(|l| l.name == "fc1").unwrap();
    let ratio = sparse[i].nonskipped_macs / dense[i].nonskipped_macs;
    assert!((ratio - 0.5).abs() < 0.05, "{ratio}");
    assert!(sparse[i].energy < dense[i].energy);
    assert_eq!(sparse[i].nonzero_weights, len / 2);
    let _ = NodeId(0);
}

#[test]
fn a_diverging_fine_tune_stops_the_run_and_names_the_last_good_checkpoint() {
    // A learning rate of 1e6 on a few hundred digits: the first global fine-tuning (step 6,
    // after one prune step per layer of LeNet-5) explodes.
    let (train_set, validation, test_set) = mnist();
    let (train_set, test_set) = (train_set.take(300), test_set.take(200));
    let hw = machine::preset("eyeriss").unwrap();
    let mut config = small_config(Method::Eap);
    config.finetune_learning_rate = 1e6;
    let dir = temp_dir("diverged");
    let mut run = Run::start(
        &dir,
        trained_lenet(&train_set),
        inputs(&train_set, &validation, &test_set, &hw),
        config,
    )
    .unwrap();
    let err = run.proceed(Limit::default(), |_| {}).unwrap_err();
    let message = err.to_string();
    let CompressError::Diverged {
        step,
        what,
        checkpoint,
        ..
    } = err
    else {
        panic!("expected Diverged, got {message}");
    };
    let layers = run.state.original.layers.len();
    assert_eq!(layers, 5);
    assert_eq!(step, layers + 1, "{message}");
    assert_eq!(what, "global fine-tuning");
    // The last good checkpoint is the last prune step's, inside the run directory.
    let last_good = dir.join(format!("steps/step-{layers:04}.safetensors"));
    assert_eq!(PathBuf::from(&checkpoint), last_good, "{message}");
    assert!(
        message.starts_with(&format!(
            "step {step} (global fine-tuning): training diverged: "
        )) && message.ends_with(&format!("the last good checkpoint is {checkpoint}"))
            && !message.contains('\n'),
        "{message}"
    );
    // It holds the pruned network with every weight finite, and the state on disk stops
    // before the step that diverged.
    let network = joule_nn::checkpoint::load(&last_good).unwrap();
    let params: Vec<f32> = network
        .graph()
        .nodes()
        .iter()
        .flat_map(|n| &n.params)
        .flat_map(|t| t.data.iter().copied())
        .collect();
    assert!(!params.is_empty() && params.iter().all(|v| v.is_finite()));
    assert!(params.contains(&0.0), "the prune steps zeroed weights");
    let state = joule_compress::run::load_state(&dir).unwrap();
    assert_eq!((state.next_step, state.history.len()), (step, layers));
    assert!(!state.done);
    std::fs::remove_dir_all(dir).ok();
}

/// The test split with every label moved to the next class: no network classifies it.
fn scrambled(test: &Dataset) -> Dataset {
    let mut s = test.clone();
    for l in &mut s.labels {
        *l = (*l + 1) % 10;
    }
    s
}

#[test]
fn selection_reads_the_validation_split_and_the_test_split_is_only_reported() {
    let (train_set, validation, test_set) = mnist();
    let wrong = scrambled(&test_set);
    let hw = machine::preset("eyeriss").unwrap();
    let network = trained_lenet(&train_set);
    for method in [Method::Magnitude, Method::Eap] {
        let mut config = small_config(method);
        // A tight budget, so that some round is judged close to it (a run that read the test
        // split would accept everything on the scrambled one: nothing is classified there).
        config.max_drop = 1.0;
        let run_with = |test: &Dataset, name: &str| {
            let dir = temp_dir(name);
            let mut run = Run::start(
                &dir,
                network.clone(),
                inputs(&train_set, &validation, test, &hw),
                config.clone(),
            )
            .unwrap();
            run.proceed(Limit::default(), |_| {}).unwrap();
            let best = run.best_network().unwrap();
            let state = run.state.clone();
            std::fs::remove_dir_all(dir).ok();
            (state, best)
        };
        let (honest, honest_best) = run_with(&test_set, "honest");
        let (blind, blind_best) = run_with(&wrong, "scrambled");
        // Every decision is the same: the rounds, what was kept, the validation accuracies,
        // the weights left, why it stopped, and the resulting network bit for bit.
        let decisions = |s: &joule_compress::run::State| -> Vec<_> {
            s.history
                .iter()
                .map(|r| {
                    (
                        r.step,
                        r.round,
                        r.threshold.to_bits(),
                        r.accepted,
                        r.validation_accuracy.map(f64::to_bits),
                        r.nonzero_weights,
                        r.energy.to_bits(),
                    )
                })
                .collect()
        };
        assert!(!honest.history.is_empty());
        assert_eq!(decisions(&honest), decisions(&blind), "{method:?}");
        assert_eq!(honest.stop_reason, blind.stop_reason, "{method:?}");
        assert_eq!(
            honest.original.validation_accuracy,
            blind.original.validation_accuracy
        );
        assert_eq!(honest.best.energy, blind.best.energy, "{method:?}");
        for (a, b) in honest_best
            .graph()
            .nodes()
            .iter()
            .zip(blind_best.graph().nodes())
        {
            assert_eq!(a.params, b.params, "{method:?}: {}", a.name);
        }
        // ...while the reported test accuracy is the split's own: high on the real labels,
        // near zero on the scrambled ones.
        assert!(
            honest.original.accuracy > 0.5,
            "{}",
            honest.original.accuracy
        );
        assert!(blind.original.accuracy < 0.2, "{}", blind.original.accuracy);
        for (a, b) in honest.history.iter().zip(&blind.history) {
            assert_ne!(a.accuracy, b.accuracy, "{method:?} step {}", a.step);
        }
    }
}

#[test]
fn a_resume_with_another_validation_split_is_refused() {
    let (train_set, validation, test_set) = mnist();
    let hw = machine::preset("eyeriss").unwrap();
    let dir = temp_dir("holdout");
    let mut run = Run::start(
        &dir,
        trained_lenet(&train_set),
        inputs(&train_set, &validation, &test_set, &hw),
        small_config(Method::Eap),
    )
    .unwrap();
    run.proceed(
        Limit {
            stop_after: Some(1),
        },
        |_| {},
    )
    .unwrap();
    drop(run);
    let all = DataSource::Mnist
        .load(&data_dir(), Split::Train)
        .unwrap()
        .take(1500);
    // The same number of images carved with another seed, then another number: both refused,
    // naming the setting; the run's own split resumes.
    let (other_train, reseeded) = all.split_holdout(HOLDOUT, 4);
    let (smaller_train, smaller) = all.split_holdout(HOLDOUT - 1, 3);
    for (train, v) in [(&other_train, &reseeded), (&smaller_train, &smaller)] {
        let err = Run::resume(&dir, inputs(train, v, &test_set, &hw))
            .err()
            .expect("a different validation split must be refused")
            .to_string();
        assert!(
            err.contains("field `config.holdout`")
                && err.contains(&format!("{HOLDOUT} training images carved with seed 3"))
                && !err.contains('\n'),
            "{err}"
        );
    }
    Run::resume(&dir, inputs(&train_set, &validation, &test_set, &hw)).unwrap();
    // A run saved before validation splits existed (no `holdout` in its configuration) is
    // refused too: it selected on the test split.
    let state_path = dir.join("state.json");
    let mut state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&state_path).unwrap()).unwrap();
    state["config"].as_object_mut().unwrap().remove("holdout");
    std::fs::write(&state_path, state.to_string()).unwrap();
    let err = Run::resume(&dir, inputs(&train_set, &validation, &test_set, &hw))
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("saved before pruning selected on a validation split"),
        "{err}"
    );
    // And a new run whose validation split does not match its configuration is refused.
    let mut c = small_config(Method::Eap);
    c.holdout = HOLDOUT + 1;
    let err = Run::start(
        &temp_dir("mismatch"),
        trained_lenet(&train_set),
        inputs(&train_set, &validation, &test_set, &hw),
        c,
    )
    .err()
    .unwrap()
    .to_string();
    assert!(err.starts_with("holdout: "), "{err}");
    std::fs::remove_dir_all(dir).ok();
}
