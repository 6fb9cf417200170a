//! Energy-guided mixed precision into a run directory (docs/quantize.md): the greedy search
//! of [`joule_compress::quantize::mixed`] on a trained model, scored on a holdout carved from
//! the training split, then every family member and every uniform width scored on the test
//! split, with their energy on one machine. Writes `state.json`, `summary.json`
//! ([`MixedSummary`]), `mixed.safetensors` and `mixed.onnx` (the last family member, QDQ),
//! `accuracy_vs_energy.svg` (test) and `holdout_vs_energy.svg`.

use crate::data::DataSpec;
use crate::error::LabError;
use crate::hardware;
use crate::model::Model;
use joule_compress::quantize;
use joule_compress::quantize::mixed::{
    Assignment, Judge, Member, Planner, PtqJudge, SearchConfig, Status,
};
pub use joule_compress::quantize::mixed::{Event, FineTune, Operand, Proposal};
use joule_compress::RunDir;
use joule_nn::evaluate;
use joule_report::{scatter_svg, Scatter, Series};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// A mixed-precision search.
#[derive(Clone, Debug)]
pub struct MixedOptions {
    /// A trained model (checkpoint or ONNX file with weights).
    pub model: String,
    pub data: DataSpec,
    pub hw: String,
    pub config: SearchConfig,
    /// Images carved from the training split to score candidates on (with the
    /// configuration's seed: the split `joule train --holdout N --seed S` leaves out).
    pub holdout: usize,
    /// The uniform widths to compare against (each `w/w`).
    pub uniform: Vec<u32>,
    pub out: PathBuf,
    pub resume: bool,
}

impl MixedOptions {
    pub fn new(model: &str, data: DataSpec, hw: &str, max_drop_points: f64, out: PathBuf) -> Self {
        MixedOptions {
            model: model.to_string(),
            data,
            hw: hw.to_string(),
            config: SearchConfig::new(max_drop_points),
            holdout: 2000,
            uniform: (2..=8).collect(),
            out,
            resume: false,
        }
    }
}

/// A network of the comparison: a family member or a uniform width.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// `8/8` for uniform widths, `step N` for family members.
    pub label: String,
    pub energy: f64,
    pub holdout_accuracy: f64,
    pub test_accuracy: f64,
}

/// A family member with its test accuracy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FamilyMember {
    #[serde(flatten)]
    pub member: Member,
    pub test_accuracy: f64,
    /// Energy relative to the start (uniform at the ladder's first width).
    pub energy_ratio: f64,
}

/// `summary.json` of a mixed-precision search.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MixedSummary {
    pub model: String,
    pub data: String,
    pub hardware: String,
    pub unit: String,
    pub holdout: usize,
    pub config: SearchConfig,
    pub status: Status,
    /// The float network: its accuracies, and its energy at the machine's word width.
    pub float: Point,
    pub family: Vec<FamilyMember>,
    /// Uniform widths (first and last layers under the same policy as the search).
    pub uniform: Vec<Point>,
    /// The last family member: the search's answer.
    pub chosen: FamilyMember,
    /// Start energy over the chosen member's: how much less energy than uniform at the
    /// ladder's first width (8/8).
    pub energy_ratio_vs_start: f64,
}

/// Runs (or resumes) the search and writes the run directory.
pub fn mixed_precision(
    options: &MixedOptions,
    mut on_event: impl FnMut(&Event),
) -> Result<MixedSummary, LabError> {
    options.config.check()?;
    for &b in &options.uniform {
        quantize::check_bits("uniform", b)?;
    }
    let machine = hardware::machine(&options.hw)?;
    let model = Model::load(&options.model)?;
    let network = model.weighted_network()?;
    let data = options.data.load()?;
    let seed = options.config.quant.seed;
    let (train_set, holdout) = data.carve(options.holdout, 0, seed)?;
    let (dir, resumed) = RunDir::create_or_resume(&options.out, options.resume)?;
    // The holdout is not among the search's settings: recorded beside them, so that a resume
    // cannot score on another split.
    let split = crate::data::Holdout {
        holdout: options.holdout,
        train_samples: 0,
        seed,
    };
    crate::data::check_split(&dir, &split, resumed)?;
    let mut judge = PtqJudge::new(
        &network,
        &train_set,
        &holdout,
        &options.config,
        machine.clone(),
    )?;
    let float_holdout = || Ok(evaluate(&network, &holdout, 500)?.accuracy);
    let mut planner = Planner::open(
        dir.clone(),
        &options.config,
        network.graph(),
        float_holdout,
        &mut judge,
    )?;
    planner.run(&mut judge, &mut on_event)?;
    let state = planner.state.clone();

    // Test accuracies: every family member and every uniform width, by the same judge.
    let mut holdout_scores = Vec::new();
    for &b in &options.uniform {
        let c = options.config.uniform_config(b, b);
        holdout_scores.push((b, judge.energy(&c)?, judge.accuracy(&c)?));
    }
    judge.scoring_on(&data.test);
    let start_energy = state.family[0].energy;
    let mut family = Vec::with_capacity(state.family.len());
    for m in &state.family {
        let c = options.config.quant_config(&m.widths);
        family.push(FamilyMember {
            test_accuracy: judge.accuracy(&c)?,
            energy_ratio: m.energy / start_energy,
            member: m.clone(),
        });
    }
    let mut uniform = Vec::new();
    for (b, energy, holdout_accuracy) in holdout_scores {
        let c = options.config.uniform_config(b, b);
        uniform.push(Point {
            label: format!("{b}/{b}"),
            energy,
            holdout_accuracy,
            test_accuracy: judge.accuracy(&c)?,
        });
    }
    let float_energy = {
        let options = crate::estimate::EnergyOptions::new(&options.model, &options.hw);
        crate::estimate::energy_on(&model, &machine, &options)?
            .total
            .energy
            .total
    };
    let float = Point {
        label: "float".into(),
        energy: float_energy,
        holdout_accuracy: state.float_holdout_accuracy,
        test_accuracy: evaluate(&network, &data.test, 500)?.accuracy,
    };
    let chosen = family.last().expect("the family holds its start").clone();
    let last = options.config.quant_config(&chosen.member.widths);
    let quantized = {
        let mut n = judge.network(&last)?;
        n.bake_weights();
        n
    };
    dir.save_checkpoint("mixed.safetensors", &quantized)?;
    // QDQ export reads the quantizers, which baking keeps.
    dir.write("mixed.onnx", quantize::export_qdq(&quantized)?)?;
    let summary = MixedSummary {
        model: options.model.clone(),
        data: data.source.name().to_string(),
        hardware: machine.name().to_string(),
        unit: machine.unit().to_string(),
        holdout: options.holdout,
        config: options.config.clone(),
        status: state.status,
        float,
        energy_ratio_vs_start: start_energy / chosen.member.energy,
        chosen,
        family,
        uniform,
    };
    for (name, chart) in charts(&summary) {
        dir.write(name, scatter_svg(&chart)?)?;
    }
    dir.write_json(RunDir::SUMMARY, &summary)?;
    Ok(summary)
}

/// The widths of an assignment as `layer=W/A,...`, the form `joule quantize --layer-bits`
/// reads.
pub fn layer_bits(widths: &Assignment) -> String {
    widths
        .iter()
        .map(|(l, w)| format!("{l}={}/{}", w.weight, w.activation))
        .collect::<Vec<_>>()
        .join(",")
}

/// How far below float a uniform point may be and still be drawn: a 2-bit network near
/// chance would squash the interesting top of the axis (the table keeps every point).
const CHART_WINDOW_POINTS: f64 = 10.0;

/// Accuracy against energy, test (`accuracy_vs_energy.svg`) and holdout
/// (`holdout_vs_energy.svg`): every uniform width, the mixed family, float at the machine's
/// word width, and the accuracy floor.
pub fn charts(s: &MixedSummary) -> Vec<(&'static str, Scatter)> {
    let model = crate::prune::display_name(&s.model);
    let energy_axis = crate::estimate::energy_label(&s.unit);
    let make = |file: &'static str, what: &str, acc: fn(&Point) -> f64| {
        let floor = 100.0 * acc(&s.float) - s.config.max_drop_points;
        let window = 100.0 * acc(&s.float) - CHART_WINDOW_POINTS;
        let uniform: Vec<&Point> = s
            .uniform
            .iter()
            .filter(|p| 100.0 * acc(p) >= window)
            .collect();
        let family: Vec<Point> = s
            .family
            .iter()
            .map(|m| Point {
                label: format!("step {}", m.member.step),
                energy: m.member.energy,
                holdout_accuracy: m.member.holdout_accuracy,
                test_accuracy: m.test_accuracy,
            })
            .collect();
        let xs = s
            .uniform
            .iter()
            .chain(&family)
            .map(|p| p.energy)
            .chain([s.float.energy]);
        let (lo, hi) = xs.fold((f64::INFINITY, 0f64), |(a, b), x| (a.min(x), b.max(x)));
        let left_out = s.uniform.len() - uniform.len();
        let note = if left_out > 0 {
            format!(" ({left_out} more than {CHART_WINDOW_POINTS} points below float not drawn)")
        } else {
            String::new()
        };
        (
            file,
            Scatter {
                title: format!("{model} on {}: {what} accuracy vs energy", s.hardware),
                x_label: energy_axis.clone(),
                y_label: format!("{what} accuracy (%)"),
                series: vec![
                    Series {
                        name: "energy-guided mixed precision (family)".into(),
                        points: family.iter().map(|p| (p.energy, 100.0 * acc(p))).collect(),
                        line: true,
                        labels: Vec::new(),
                    },
                    Series {
                        name: format!("uniform W/A{note}"),
                        points: uniform.iter().map(|p| (p.energy, 100.0 * acc(p))).collect(),
                        line: true,
                        labels: uniform.iter().map(|p| p.label.clone()).collect(),
                    },
                    Series {
                        name: "float (machine word width)".into(),
                        points: vec![(s.float.energy, 100.0 * acc(&s.float))],
                        line: false,
                        labels: Vec::new(),
                    },
                    Series {
                        name: format!("float - {} points", s.config.max_drop_points),
                        points: vec![(lo, floor), (hi, floor)],
                        line: true,
                        labels: Vec::new(),
                    },
                ],
                diagonal: false,
            },
        )
    };
    vec![
        make("accuracy_vs_energy.svg", "test", |p| p.test_accuracy),
        make("holdout_vs_energy.svg", "holdout", |p| p.holdout_accuracy),
    ]
}

/// The best uniform width whose holdout accuracy keeps the constraint: the comparison at
/// equal accuracy (the search's own selection rule, applied to the uniform networks).
pub fn best_uniform(s: &MixedSummary) -> Option<&Point> {
    let floor = s.float.holdout_accuracy - s.config.max_drop_points / 100.0;
    s.uniform
        .iter()
        .filter(|p| p.holdout_accuracy >= floor)
        .min_by(|a, b| a.energy.total_cmp(&b.energy))
}

/// The run as text.
pub fn report(s: &MixedSummary) -> String {
    let pct = |v: f64| format!("{:.2}%", 100.0 * v);
    let mut t = format!(
        "{} on {}, {}: float holdout {}, test {}; search stopped: {:?}\n",
        s.model,
        s.data,
        s.hardware,
        pct(s.float.holdout_accuracy),
        pct(s.float.test_accuracy),
        s.status
    );
    t += "family (step, change, energy, x less than the start, holdout, test):\n";
    for m in &s.family {
        let change = m.member.change.as_ref().map_or("start".to_string(), |c| {
            let what = match c.operand {
                Operand::Weight => "w",
                Operand::Activation => "a",
            };
            format!("{} {what} {}->{}", c.layer, c.from, c.to)
        });
        t += &format!(
            "  {:>3} {:<22} {:.4e} {:>5.2}x  {}  {}\n",
            m.member.step,
            change,
            m.member.energy,
            1.0 / m.energy_ratio,
            pct(m.member.holdout_accuracy),
            pct(m.test_accuracy)
        );
    }
    t += "uniform (W/A, energy, holdout, test):\n";
    for p in &s.uniform {
        t += &format!(
            "  {:>5} {:.4e}  {}  {}\n",
            p.label,
            p.energy,
            pct(p.holdout_accuracy),
            pct(p.test_accuracy)
        );
    }
    t += &format!(
        "chosen: {} ({:.2}x less energy than the start, test {})\n",
        layer_bits(&s.chosen.member.widths),
        s.energy_ratio_vs_start,
        pct(s.chosen.test_accuracy)
    );
    if let Some(u) = best_uniform(s) {
        t += &format!(
            "best uniform within the constraint (holdout): {} at {:.4e}; mixed is {:.2}x less\n",
            u.label,
            u.energy,
            u.energy / s.chosen.member.energy
        );
    }
    t
}

/// Parses a list of widths, `8,6,5,4,3,2`; `field` names the option.
pub fn parse_widths(field: &str, text: &str) -> Result<Vec<u32>, LabError> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| crate::quantize::parse_bits(field, s))
        .collect()
}

/// Parses an energy budget: a fraction of the start's energy, `0.5` or `0.5x`.
pub fn parse_budget(text: &str) -> Result<f64, LabError> {
    let number = text.trim().trim_end_matches('x');
    match number.parse::<f64>() {
        Ok(v) if v > 0.0 && v < 1.0 => Ok(v),
        _ => Err(LabError::config(
            "energy_budget",
            format!("{text:?}: expected a fraction of the 8/8 energy between 0 and 1, e.g. 0.5x"),
        )),
    }
}
