//! NetAdapt on real data (LeNet-5 on a few hundred MNIST images, a MACs budget): the budget
//! is met with every iteration smaller, resume ends where an uninterrupted run ends, an
//! unreachable budget stops with the best network saved, filters go by L2 norm, and bad
//! arguments are one-line errors. The data comes from `scripts/fetch-data.sh`.

use joule_compress::lut::ChannelGrid;
use joule_compress::netadapt::search::{filter_norms, shrink_to_target, weakest_filters};
use joule_compress::netadapt::{
    adapt, AdaptConfig, Budget, Estimator, Event, Inputs, Resource, State, Status,
};
use joule_compress::{CompressError, RunDir};
use joule_model::zoo;
use joule_nn::{train, DataSource, Dataset, FeatureMap, Network, Split, TrainConfig};
use std::path::PathBuf;

/// NetAdapt in `out`: a new run, or with `resume` the one `out` holds.
fn run_adapt(
    original: &Network,
    config: &AdaptConfig,
    inputs: &Inputs<'_>,
    out: &std::path::Path,
    resume: bool,
    on_event: impl FnMut(Event<'_>),
) -> Result<State, CompressError> {
    let (dir, _) = RunDir::create_or_resume(out, resume)?;
    adapt(original, config, inputs, &dir, on_event)
}

fn data_dir() -> PathBuf {
    std::env::var_os("JOULE_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data"))
}

/// 800 training images and a 300-image holdout carved from the training split.
fn data() -> (Dataset, Dataset) {
    let all = DataSource::Mnist
        .load(&data_dir(), Split::Train)
        .unwrap_or_else(|e| panic!("{e}"))
        .take(1100);
    let indices: Vec<usize> = (0..all.len()).collect();
    let part = |range: &[usize]| {
        let (images, labels) = all.batch(range);
        Dataset {
            sample: all.sample,
            images,
            labels,
            classes: all.classes,
        }
    };
    (part(&indices[..800]), part(&indices[800..]))
}

fn trained_lenet(train_set: &Dataset) -> Network {
    let mut network = Network::new(zoo::build("lenet5").unwrap(), 5).unwrap();
    let config = TrainConfig {
        epochs: 1,
        batch_size: 32,
        seed: 5,
        ..TrainConfig::default()
    };
    train(&mut network, train_set, &config, |_| {}).unwrap();
    network
}

fn config(budget: &str) -> AdaptConfig {
    AdaptConfig {
        model: "lenet5".into(),
        data: "mnist".into(),
        budgets: vec![Budget::parse(budget).unwrap()],
        initial_reduction: 0.15,
        decay: 0.9,
        max_iterations: 12,
        levels: 8,
        short_term_batches: 4,
        long_term_epochs: 1,
        batch_size: 32,
        learning_rate: 0.02,
        seed: 3,
        ..AdaptConfig::default()
    }
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("joule-netadapt-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn inputs<'a>(train: &'a Dataset, holdout: &'a Dataset) -> Inputs<'a> {
    Inputs {
        train,
        holdout,
        test: None,
        lut: None,
        hardware: None,
        timer: None,
    }
}

#[test]
fn a_macs_budget_is_met_and_every_iteration_is_smaller_and_resume_matches() {
    let (train_set, holdout) = data();
    let original = trained_lenet(&train_set);
    let cfg = config("macs=0.5x");
    let out = temp_dir("whole");
    let state = run_adapt(
        &original,
        &cfg,
        &inputs(&train_set, &holdout),
        &out,
        false,
        |_| {},
    )
    .unwrap();
    assert_eq!(state.status, Status::Met);
    let budget = 0.5 * 416_520.0;
    assert_eq!(state.budgets["macs"], budget);
    let last = state.family.last().unwrap();
    assert!(last.macs as f64 <= budget, "{} > {budget}", last.macs);
    assert!(
        state.family.len() >= 2,
        "a 50% cut at 15% per step takes several iterations"
    );
    let mut previous = state.original.macs;
    let grid = ChannelGrid::even(original.graph(), 8).unwrap();
    for r in &state.family {
        assert!(
            r.macs < previous,
            "iteration {} did not shrink",
            r.iteration
        );
        // Each iteration's constraint held.
        assert!(r.macs as f64 <= r.targets["macs"]);
        previous = r.macs;
        for (layer, count) in &r.channels {
            assert!(
                grid.layers[layer].contains(count),
                "{layer}: {count} is off the grid"
            );
        }
        assert!(
            out.join(&r.checkpoint).exists()
                && out
                    .join(r.checkpoint.replace("safetensors", "onnx"))
                    .exists()
        );
        // Exactly one layer changed per iteration.
    }
    let fin = state.final_network.as_ref().unwrap();
    assert_eq!(fin.macs, last.macs);
    assert!(
        fin.accuracy > 0.5,
        "long-term fine-tuned accuracy {}",
        fin.accuracy
    );
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    for key in ["model", "data", "budget", "family", "final"] {
        assert!(summary.get(key).is_some(), "summary.json lacks {key}");
    }
    for key in [
        "iteration",
        "accuracy",
        "latency_measured_ms",
        "latency_predicted_ms",
        "energy",
        "macs",
        "weights",
        "channels",
    ] {
        assert!(
            summary["family"][1].get(key).is_some(),
            "family member lacks {key}"
        );
        assert!(summary["final"].get(key).is_some(), "final lacks {key}");
    }
    assert_eq!(summary["budget"][0], "macs=0.5x");

    // Kill after two iterations (a panic in the progress callback), then resume.
    let killed = temp_dir("killed");
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        run_adapt(
            &original,
            &cfg,
            &inputs(&train_set, &holdout),
            &killed,
            false,
            |e| {
                if let Event::Iteration { iteration: 3, .. } = e {
                    panic!("killed");
                }
            },
        )
    }));
    assert!(result.is_err());
    let partial: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(killed.join("state.json")).unwrap()).unwrap();
    assert_eq!(partial["family"].as_array().unwrap().len(), 2);
    let again = run_adapt(
        &original,
        &cfg,
        &inputs(&train_set, &holdout),
        &killed,
        false,
        |_| {},
    );
    assert!(again
        .unwrap_err()
        .to_string()
        .contains("already holds a run"));
    let resumed = run_adapt(
        &original,
        &cfg,
        &inputs(&train_set, &holdout),
        &killed,
        true,
        |_| {},
    )
    .unwrap();
    assert_eq!(resumed, state);
    let bytes = |dir: &PathBuf| std::fs::read(dir.join("final.safetensors")).unwrap();
    assert_eq!(bytes(&out), bytes(&killed));
    let mut other = cfg.clone();
    other.seed = 4;
    let err = run_adapt(
        &original,
        &other,
        &inputs(&train_set, &holdout),
        &killed,
        true,
        |_| {},
    )
    .unwrap_err();
    assert!(err.to_string().contains("cannot resume"), "{err}");
    std::fs::remove_dir_all(&out).unwrap();
    std::fs::remove_dir_all(&killed).unwrap();
}

#[test]
fn an_unreachable_budget_stops_at_its_iteration_with_the_best_network_saved() {
    let (train_set, holdout) = data();
    let train_set = train_set.take(300);
    let original = trained_lenet(&train_set);
    let mut cfg = config("weights=100");
    cfg.initial_reduction = 0.5;
    cfg.decay = 1.0;
    cfg.long_term_epochs = 0;
    let out = temp_dir("unreachable");
    let mut said = None;
    let state = run_adapt(
        &original,
        &cfg,
        &inputs(&train_set, &holdout),
        &out,
        false,
        |e| {
            if let Event::Unreachable(m) = e {
                said = Some(m.to_string());
            }
        },
    )
    .unwrap();
    let Status::Unreachable { iteration, message } = &state.status else {
        panic!("{:?}", state.status)
    };
    assert_eq!(*iteration, state.family.len() + 1);
    assert_eq!(said.as_deref(), Some(message.as_str()));
    assert!(
        message.contains(&format!("iteration {iteration}")) && message.contains("weights <="),
        "{message}"
    );
    // The smallest network reached is kept and is the final one.
    let last = state.family.last().unwrap();
    assert!(out.join(&last.checkpoint).exists());
    assert_eq!(state.final_network.as_ref().unwrap().weights, last.weights);
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn filters_go_by_l2_norm_and_surgery_keeps_a_consistent_network() {
    assert_eq!(weakest_filters(&[3.0, 1.0, 2.0, 1.0], 2), vec![1, 3]);
    assert_eq!(weakest_filters(&[3.0, 1.0, 2.0], 0), Vec::<usize>::new());
    let network = Network::new(zoo::build("lenet5").unwrap(), 9).unwrap();
    let graph = network.graph();
    let conv2 = graph.find("conv2").unwrap();
    let norms = filter_norms(&network, conv2);
    let grid = ChannelGrid::even(graph, 4).unwrap(); // conv2: 4, 8, 12, 16
    let estimator = Estimator::new(None, None);
    let macs = 416_520.0;
    // Ask for 10% fewer MACs: conv2 (240k MACs, 16 filters) must drop to 12 filters.
    let (count, smaller, resources) = shrink_to_target(
        &network,
        "conv2",
        &grid,
        &estimator,
        &[(Resource::Macs, 0.9 * macs)],
    )
    .unwrap()
    .unwrap();
    assert_eq!(count, 12);
    assert!(resources.macs as f64 <= 0.9 * macs);
    // The kept filters are the 12 strongest, in order, and fc1 lost the matching columns.
    let kept: Vec<usize> = (0..16)
        .filter(|f| !weakest_filters(&norms, 4).contains(f))
        .collect();
    let w = &smaller.graph().node(conv2).params[0];
    assert_eq!(w.shape, vec![12, 6, 5, 5]);
    let old = &graph.node(conv2).params[0];
    for (row, &f) in kept.iter().enumerate() {
        assert_eq!(
            w.data[row * 150..(row + 1) * 150],
            old.data[f * 150..(f + 1) * 150]
        );
    }
    let fc1 = smaller.graph().find("fc1").unwrap();
    assert_eq!(
        smaller.graph().node(fc1).params[0].shape,
        vec![120, 12 * 25]
    );
    let out = smaller
        .forward(
            &FeatureMap::new(joule_model::Shape::new(2, 1, 28, 28), vec![0.3; 2 * 784]).unwrap(),
        )
        .unwrap();
    assert_eq!(out.data.len(), 20);
    // No count meets an impossible target; an unknown layer is a one-line error.
    assert!(shrink_to_target(
        &network,
        "conv2",
        &grid,
        &estimator,
        &[(Resource::Macs, 1.0)]
    )
    .unwrap()
    .is_none());
    let err = shrink_to_target(
        &network,
        "conv9",
        &grid,
        &estimator,
        &[(Resource::Macs, 1.0)],
    )
    .unwrap_err()
    .to_string();
    assert_eq!(err, "layer: no layer \"conv9\" in the network");
}

#[test]
fn budgets_without_their_estimator_are_refused() {
    let tiny = Dataset {
        sample: joule_model::Shape::new(1, 1, 28, 28),
        images: vec![0.0; 784],
        labels: vec![0],
        classes: 10,
    };
    let network = Network::new(zoo::build("lenet5").unwrap(), 1).unwrap();
    let out = temp_dir("refused");
    for (budget, why) in [
        ("latency=0.5x", "needs a latency table"),
        ("energy=0.4x", "needs a hardware model"),
    ] {
        let err = run_adapt(
            &network,
            &config(budget),
            &inputs(&tiny, &tiny),
            &out,
            false,
            |_| {},
        )
        .unwrap_err();
        assert!(err.to_string().contains(why), "{err}");
    }
    assert!(!out.exists());
}

#[test]
fn the_uniform_baseline_is_matched_to_the_final_network_and_fine_tuned_the_same_way() {
    let (train_set, holdout) = data();
    let original = trained_lenet(&train_set);
    let mut cfg = config("macs=0.5x");
    cfg.baseline = true;
    cfg.baseline_curve = true;
    let out = temp_dir("baseline");
    let mut searched = false;
    let state = run_adapt(
        &original,
        &cfg,
        &inputs(&train_set, &holdout),
        &out,
        false,
        |e| {
            if let Event::BaselineSearch = e {
                searched = true;
            }
        },
    )
    .unwrap();
    assert!(searched);
    let fin = state.final_network.as_ref().unwrap();
    let base = state.baseline.as_ref().unwrap();
    assert_eq!(base.matched_on, "macs");
    assert_eq!(base.matched_target, fin.macs as f64);
    // Seven factors tried (7/8 .. 1/8); the chosen one is the nearest in MACs.
    assert_eq!(base.tried.len(), 7);
    let nearest = base
        .tried
        .iter()
        .map(|(_, v)| (v - fin.macs as f64).abs())
        .fold(f64::INFINITY, f64::min);
    assert_eq!((base.record.macs as f64 - fin.macs as f64).abs(), nearest);
    let k = (base.width_multiplier * 8.0).round() as usize;
    assert!((1..8).contains(&k), "{}", base.width_multiplier);
    for (layer, m) in [("conv1", 6), ("conv2", 16), ("fc1", 120), ("fc2", 84)] {
        assert_eq!(base.record.channels[layer], (m * k).div_ceil(8), "{layer}");
    }
    // Fine-tuned like the final network: it learned, and it is saved with its test split.
    assert!(base.record.accuracy > 0.5, "{}", base.record.accuracy);
    assert_eq!(base.record.checkpoint, "baseline.safetensors");
    assert!(out.join("baseline.safetensors").exists() && out.join("baseline.onnx").exists());
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    for key in [
        "width_multiplier",
        "matched_on",
        "accuracy",
        "macs",
        "channels",
        "latency_measured_ms",
    ] {
        assert!(
            summary["baseline"].get(key).is_some(),
            "baseline lacks {key}"
        );
    }
    // The curve: every width, widest first, each fine-tuned and saved; the matched one in it.
    let widths: Vec<f64> = state
        .baseline_curve
        .iter()
        .map(|b| b.width_multiplier)
        .collect();
    assert_eq!(
        widths,
        (1..8).rev().map(|k| k as f64 / 8.0).collect::<Vec<_>>()
    );
    assert!(state.baseline_curve.contains(base));
    for (b, (width, macs)) in state.baseline_curve.iter().zip(&base.tried) {
        assert_eq!((b.width_multiplier, b.record.macs as f64), (*width, *macs));
        assert!(
            out.join(&b.record.checkpoint).exists(),
            "{}",
            b.record.checkpoint
        );
        assert!(b.record.test_accuracy.is_none(), "no test split was given");
    }
    assert!(out.join("baseline_1of8.safetensors").exists());
    assert_eq!(summary["baseline_curve"].as_array().unwrap().len(), 7);
    // Resuming a finished run changes nothing, baseline included.
    let resumed = run_adapt(
        &original,
        &cfg,
        &inputs(&train_set, &holdout),
        &out,
        true,
        |_| {},
    )
    .unwrap();
    assert_eq!(resumed, state);
    std::fs::remove_dir_all(&out).unwrap();
}

/// The ask/tell planner told the accuracies `adapt` measured makes `adapt`'s choices: the
/// same proposals (layer, filter count, estimated resources, seed) every iteration, the same
/// pick, the same family. Told `adapt`'s fine-tuned networks, even the filters it would
/// remove are the same; told nothing, it keeps its own untuned candidates, which have the
/// same shapes and so lead to the same choices.
#[test]
fn the_ask_tell_planner_makes_adapts_choices_given_its_accuracies() {
    use joule_compress::netadapt::Planner;
    let (train_set, holdout) = data();
    let original = trained_lenet(&train_set);
    let mut cfg = config("macs=0.5x");
    cfg.long_term_epochs = 0;
    cfg.selection = joule_compress::netadapt::Selection::DropPerResource;
    let out = temp_dir("asktell-engine");
    let state = run_adapt(
        &original,
        &cfg,
        &inputs(&train_set, &holdout),
        &out,
        false,
        |_| {},
    )
    .unwrap();
    assert_eq!(state.status, Status::Met);
    assert!(
        state.history.len() >= 3,
        "{} iterations",
        state.history.len()
    );
    assert_eq!(state.history.len(), state.family.len());
    let engine_dir = RunDir::open(&out).unwrap();
    for told_networks in [true, false] {
        let dir = RunDir::create(&temp_dir(&format!("asktell-{told_networks}"))).unwrap();
        let mut planner = Planner::open(
            &original,
            || Ok(state.original.accuracy),
            cfg.clone(),
            Estimator::new(None, None),
            dir,
            None,
        )
        .unwrap();
        for (log, member) in state.history.iter().zip(&state.family) {
            let proposals = planner.propose().unwrap().to_vec();
            assert_eq!(proposals.len(), log.proposals.len());
            for (p, q) in proposals.iter().zip(&log.proposals) {
                assert_eq!(
                    (&p.layer, p.filters, &p.resources, p.seed, p.iteration),
                    (&q.layer, q.filters, &q.resources, q.seed, q.iteration)
                );
                if told_networks {
                    assert_eq!(p.removed, q.removed, "{}", p.layer);
                }
            }
            let accuracies: Vec<f64> = log.proposals.iter().map(|p| p.accuracy.unwrap()).collect();
            let rec = planner
                .tell(&accuracies, |best| {
                    assert_eq!(best, log.chosen);
                    Ok(told_networks.then(|| engine_dir.load_network(&member.checkpoint).unwrap()))
                })
                .unwrap()
                .clone();
            assert_eq!(rec.layer, member.layer);
            assert_eq!(rec.channels, member.channels);
            assert_eq!((rec.macs, rec.accuracy), (member.macs, member.accuracy));
        }
        assert!(planner.propose().unwrap().is_empty());
        assert_eq!(planner.state().status, Status::Met);
        assert_eq!(planner.state().history.len(), state.history.len());
    }
}

/// Telling out of turn, the wrong number of accuracies, a non-finite one, or a network of
/// another shape are one-line errors that leave the pending proposals in place.
#[test]
fn the_planner_refuses_bad_tells() {
    use joule_compress::netadapt::Planner;
    let (train_set, _) = data();
    let original = trained_lenet(&train_set);
    let dir = RunDir::create(&temp_dir("asktell-bad")).unwrap();
    let mut planner = Planner::open(
        &original,
        || Ok(0.9),
        config("macs=0.5x"),
        Estimator::new(None, None),
        dir,
        None,
    )
    .unwrap();
    let err = planner.tell(&[0.5], |_| Ok(None)).unwrap_err().to_string();
    assert!(err.contains("call propose() first"), "{err}");
    let n = planner.propose().unwrap().len();
    assert!(n >= 2);
    let err = planner.tell(&[0.5], |_| Ok(None)).unwrap_err().to_string();
    assert!(err.contains(&format!("got 1 for {n} proposals")), "{err}");
    let mut accuracies = vec![0.5; n];
    accuracies[1] = f64::NAN;
    let err = planner
        .tell(&accuracies, |_| Ok(None))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("accuracies[1]: must be a finite number"),
        "{err}"
    );
    accuracies[1] = 0.6;
    let err = planner
        .tell(&accuracies, |_| Ok(Some(original.clone())))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("does not have the shape of the proposal"),
        "{err}"
    );
    assert!(!err.contains('\n'));
    assert_eq!(planner.propose().unwrap().len(), n);
    let rec = planner.tell(&accuracies, |_| Ok(None)).unwrap();
    assert_eq!(rec.iteration, 1);
    assert_eq!(rec.accuracy, 0.6);
}
