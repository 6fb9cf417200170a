//! The tables of docs/*.md, rendered from the committed run summaries, and the marked
//! regions of a Markdown file that hold them.
//!
//! A generated region is delimited by two HTML comments; the first names the command that
//! renders its content, with paths relative to the repository root:
//!
//! ```text
//! <!-- generated: joule docs-tables render prune docs/prune/lenet5-mnist/magnitude-summary.json docs/prune/lenet5-mnist/eap-summary.json -->
//! | model | top-1 accuracy | ... |
//! <!-- end generated -->
//! ```
//!
//! [`update`] re-renders every region of a file ([`render`] per region), so a document whose
//! text equals its update agrees with its summaries. Kinds ([`Kind`]): `prune` (the EAP
//! poster table, [`crate::prune::poster_table`]), `netadapt` (original, NetAdapt's final
//! network and the uniform baseline of every run), `netadapt-seeds` (NetAdapt against the
//! uniform baseline run by run, with the mean and spread of the difference over seeds),
//! `baseline-curve`, `lut-validation` and `eliminate` ([`crate::eliminate::tables`]).
//!
//! ```
//! use joule_lab::doc_tables::update;
//!
//! let text = "# Notes\n\nNothing generated here.\n";
//! assert_eq!(update(text, "notes.md".as_ref(), ".".as_ref()).unwrap(), text);
//! ```

use crate::adapt::LutValidation;
use crate::eliminate::EliminateSummary;
use crate::prune::PruneSummary;
use crate::{LabError, RunDir};
use joule_compress::netadapt::baseline::BaselineRecord;
use joule_compress::netadapt::run::{Record, Status, Summary};
use joule_report::{Scatter, Series};
use serde::de::DeserializeOwned;
use std::fmt::Write;
use std::path::{Path, PathBuf};

const BEGIN: &str = "<!-- generated: joule docs-tables render ";
const END: &str = "<!-- end generated -->";

/// What a generated region shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// One or two pruning summaries: the original, then each summary's final network.
    Prune,
    /// NetAdapt runs of one original network: their final networks and baselines.
    Netadapt,
    /// NetAdapt runs (seeds, budgets) against the uniform baseline: per run and per budget
    /// the mean and standard deviation of the accuracy difference.
    NetadaptSeeds,
    /// The uniform baseline curve of one NetAdapt run.
    BaselineCurve,
    /// The `lut_validation.json` beside each NetAdapt run's summary.
    LutValidation,
    /// The tables of one elimination run; its chart is the run's `curves-<hw>.svg`.
    Eliminate,
    /// A chart only: one pruning summary's energy per layer, the run's `layers.svg`.
    PruneLayers,
}

impl Kind {
    pub const ALL: [(&'static str, Kind); 7] = [
        ("prune", Kind::Prune),
        ("netadapt", Kind::Netadapt),
        ("netadapt-seeds", Kind::NetadaptSeeds),
        ("baseline-curve", Kind::BaselineCurve),
        ("lut-validation", Kind::LutValidation),
        ("eliminate", Kind::Eliminate),
        ("prune-layers", Kind::PruneLayers),
    ];

    /// The kind a region's command names.
    pub fn parse(name: &str) -> Result<Kind, LabError> {
        Kind::ALL
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, k)| *k)
            .ok_or_else(|| {
                let names: Vec<&str> = Kind::ALL.iter().map(|(n, _)| *n).collect();
                LabError::config(
                    "kind",
                    format!("{name:?} is not one of {}", names.join(", ")),
                )
            })
    }
}

/// A summary file: `path` itself, or `summary.json` in the directory `path`.
fn summary_path(path: &Path) -> PathBuf {
    if path.is_dir() {
        path.join(RunDir::SUMMARY)
    } else {
        path.to_path_buf()
    }
}

fn read<T: DeserializeOwned>(path: &Path) -> Result<T, LabError> {
    Ok(joule_compress::rundir::read_json(path)?)
}

/// The table of `kind` from the summaries at `paths` (files, or run directories).
pub fn render(kind: Kind, paths: &[PathBuf]) -> Result<String, LabError> {
    let count = |ok: bool, what: &str| {
        if ok {
            Ok(())
        } else {
            Err(LabError::config(
                "paths",
                format!("{what}, got {}", paths.len()),
            ))
        }
    };
    let files: Vec<PathBuf> = paths.iter().map(|p| summary_path(p)).collect();
    match kind {
        Kind::Prune => {
            count(
                matches!(paths.len(), 1 | 2),
                "prune takes one or two summaries",
            )?;
            let runs = files
                .iter()
                .map(|f| read::<PruneSummary>(f))
                .collect::<Result<Vec<_>, _>>()?;
            for (run, file) in runs.iter().zip(&files).skip(1) {
                if run.original != runs[0].original {
                    return Err(LabError::config(
                        "original",
                        "starts from another network than the first summary",
                    )
                    .context(file.display().to_string()));
                }
            }
            // The poster table: the original, the other run, then this one.
            let other = (runs.len() == 2).then(|| &runs[0]);
            let table = crate::prune::poster_table(runs.last().expect("counted"), other);
            Ok(table.split("\n\n").next().unwrap_or_default().to_string() + "\n")
        }
        Kind::Netadapt => {
            count(!paths.is_empty(), "netadapt takes at least one run")?;
            let runs = files
                .iter()
                .map(|f| read::<Summary>(f))
                .collect::<Result<Vec<_>, _>>()?;
            netadapt_table(&runs).map_err(|e| e.context(files[0].display().to_string()))
        }
        Kind::NetadaptSeeds => {
            count(!paths.is_empty(), "netadapt-seeds takes at least one run")?;
            netadapt_seeds_table(&named_runs(paths)?)
        }
        Kind::BaselineCurve => {
            count(paths.len() == 1, "baseline-curve takes one run")?;
            baseline_curve_table(&read(&files[0])?)
                .map_err(|e| e.context(files[0].display().to_string()))
        }
        Kind::LutValidation => {
            count(!paths.is_empty(), "lut-validation takes at least one run")?;
            let runs = files
                .iter()
                .map(|f| {
                    let v = f.with_file_name("lut_validation.json");
                    Ok((read::<Summary>(f)?, read::<LutValidation>(&v)?))
                })
                .collect::<Result<Vec<_>, LabError>>()?;
            Ok(lut_validation_table(&runs))
        }
        Kind::Eliminate => {
            count(paths.len() == 1, "eliminate takes one run")?;
            Ok(crate::eliminate::tables(&read::<EliminateSummary>(
                &files[0],
            )?))
        }
        Kind::PruneLayers => Err(LabError::config(
            "kind",
            "prune-layers is a chart (docs-tables chart), not a table",
        )),
    }
}

/// `1234567` as `1,234,567`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn ms(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.4}"))
}

fn percent(v: f64) -> String {
    format!("{:.2}%", 100.0 * v)
}

/// The layers an run simplified, in order of first appearance, repeated ones counted:
/// `conv1 x5, fc1 x2, conv2`.
/// NetAdapt summaries named by their run directory (or file) name.
fn named_runs(paths: &[PathBuf]) -> Result<Vec<(String, Summary)>, LabError> {
    paths
        .iter()
        .map(|p| {
            let name = p.file_name().unwrap_or(p.as_os_str());
            Ok((
                name.to_string_lossy().into_owned(),
                read::<Summary>(&summary_path(p))?,
            ))
        })
        .collect()
}

/// The SVG chart of `kind` from the runs at `paths`: `netadapt-seeds` (test accuracy
/// against predicted latency, [`netadapt_seeds_chart`]), `prune` (one or two pruning
/// summaries, the other run first: the accuracy-energy trade-off the run directory's
/// `tradeoff.svg` holds, [`crate::prune::tradeoff_chart`]), `prune-layers` (one pruning
/// summary: its `layers.svg`, [`crate::prune::layers_chart`]) and `eliminate` (one
/// elimination summary: `curves-<hw>.svg` of its first machine, [`crate::eliminate::chart`]).
/// Why: a committed run's charts can be redrawn by a newer renderer from its committed
/// summary, without re-running it.
pub fn chart(kind: Kind, paths: &[PathBuf]) -> Result<String, LabError> {
    let one = |what: &str| -> Result<PathBuf, LabError> {
        match paths {
            [path] => Ok(summary_path(path)),
            _ => Err(LabError::config(
                "paths",
                format!("{what} takes one summary, got {}", paths.len()),
            )),
        }
    };
    match kind {
        Kind::NetadaptSeeds => {
            if paths.is_empty() {
                return Err(LabError::config(
                    "paths",
                    "netadapt-seeds takes at least one run",
                ));
            }
            Ok(joule_report::scatter_svg(&netadapt_seeds_chart(
                &named_runs(paths)?,
            ))?)
        }
        Kind::Prune => {
            if !matches!(paths.len(), 1 | 2) {
                return Err(LabError::config(
                    "paths",
                    format!("prune takes one or two summaries, got {}", paths.len()),
                ));
            }
            let runs = paths
                .iter()
                .map(|p| read::<PruneSummary>(&summary_path(p)))
                .collect::<Result<Vec<_>, _>>()?;
            let other = (runs.len() == 2).then(|| &runs[0]);
            let this = runs.last().expect("counted");
            Ok(joule_report::curves::curves_svg(
                &crate::prune::tradeoff_chart(this, other),
            )?)
        }
        Kind::PruneLayers => {
            let summary = read::<PruneSummary>(&one("prune-layers")?)?;
            Ok(joule_report::stacked_bars_svg(&[
                crate::prune::layers_chart(&summary),
            ])?)
        }
        Kind::Eliminate => {
            let file = one("eliminate")?;
            let summary = read::<EliminateSummary>(&file)?;
            if summary.hardware.is_empty() {
                return Err(LabError::config("hardware", "names no machine")
                    .context(file.display().to_string()));
            }
            Ok(joule_report::curves::curves_svg(&crate::eliminate::chart(
                &summary, 0,
            ))?)
        }
        _ => Err(LabError::config(
            "kind",
            "only netadapt-seeds, prune, prune-layers and eliminate have a chart",
        )),
    }
}

fn simplified(family: &[Record]) -> String {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for layer in family.iter().filter_map(|r| r.layer.as_deref()) {
        match counts.iter_mut().find(|(l, _)| *l == layer) {
            Some((_, n)) => *n += 1,
            None => counts.push((layer, 1)),
        }
    }
    let parts: Vec<String> = counts
        .iter()
        .map(|(l, n)| {
            if *n == 1 {
                l.to_string()
            } else {
                format!("{l} x{n}")
            }
        })
        .collect();
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join(", ")
    }
}

/// One row of the NetAdapt table: label, layers, then the record's numbers.
fn netadapt_row(t: &mut String, label: &str, layers: &str, r: &Record, measured: String) {
    let channels: Vec<String> = r.channels.values().map(usize::to_string).collect();
    let accuracy = match r.test_accuracy {
        Some(a) => percent(a),
        None => format!("(holdout {})", percent(r.accuracy)),
    };
    let _ = writeln!(
        t,
        "| {label} | {layers} | {} | {} | {} | {measured} | {} | {} | {accuracy} |",
        channels.join("/"),
        thousands(r.macs),
        ms(r.latency_predicted_ms),
        r.energy.map_or("-".into(), |e| format!("{e:.2e}")),
        thousands(r.weights),
    );
}

/// NetAdapt runs of one original network: the original (its measured latency as the range
/// over the runs), then per run its final network and its uniform baseline.
pub fn netadapt_table(runs: &[Summary]) -> Result<String, LabError> {
    let original = &runs
        .first()
        .ok_or_else(|| LabError::config("runs", "none given"))?
        .family[0];
    let mut hardware: Vec<Option<&str>> = runs.iter().map(|r| r.hardware.as_deref()).collect();
    hardware.dedup();
    let energy = match hardware.as_slice() {
        [Some(hw)] => format!("energy ({hw})"),
        _ => "energy".to_string(),
    };
    let mut t = format!(
        "| network | layers simplified | channels {} | MACs | predicted ms | measured ms | {energy} | weights | test acc. |\n|---|---|---|--:|--:|--:|--:|--:|--:|\n",
        original.channels.keys().cloned().collect::<Vec<_>>().join("/")
    );
    let mut measured: Vec<f64> = Vec::new();
    for run in runs {
        let first = &run.family[0];
        if (&first.channels, first.macs, first.weights)
            != (&original.channels, original.macs, original.weights)
        {
            return Err(LabError::config(
                "family[0]",
                format!(
                    "run {:?} starts from another network than the first run",
                    run.budget
                ),
            ));
        }
        measured.extend(first.latency_measured_ms);
    }
    let range = match (
        measured.iter().copied().reduce(f64::min),
        measured.iter().copied().reduce(f64::max),
    ) {
        (Some(lo), Some(hi)) if ms(Some(lo)) != ms(Some(hi)) => format!("{lo:.4}-{hi:.4}"),
        (lo, _) => ms(lo),
    };
    netadapt_row(&mut t, "original (checkpoint)", "-", original, range);
    for run in runs {
        let budget = run.budget.join(", ");
        let last = run.final_network.as_ref().ok_or_else(|| {
            LabError::config("final", format!("run {budget} has no final network"))
        })?;
        let status = match &run.status {
            Status::Met => String::new(),
            Status::Running => ", running".into(),
            Status::OutOfIterations => ", out of iterations".into(),
            Status::Unreachable { iteration, .. } => format!(", unreachable at {iteration}"),
        };
        let label = format!("{budget}, NetAdapt ({} it.{status})", run.family.len() - 1);
        netadapt_row(
            &mut t,
            &label,
            &simplified(&run.family),
            last,
            ms(last.latency_measured_ms),
        );
        if let Some(b) = &run.baseline {
            let label = format!("{budget}, uniform width {}", b.width_multiplier);
            netadapt_row(
                &mut t,
                &label,
                "all",
                &b.record,
                ms(b.record.latency_measured_ms),
            );
        }
    }
    Ok(t)
}

/// Test accuracy of the uniform network at `latency` predicted ms, linear between the two
/// widths of `curve` around it (`None` outside the curve or without test accuracies).
pub fn interpolate(curve: &[BaselineRecord], latency: f64) -> Option<f64> {
    let mut points: Vec<(f64, f64)> = curve
        .iter()
        .filter_map(|b| Some((b.record.latency_predicted_ms?, b.record.test_accuracy?)))
        .collect();
    points.sort_by(|a, b| a.0.total_cmp(&b.0));
    points.windows(2).find_map(|w| {
        let ((x0, y0), (x1, y1)) = (w[0], w[1]);
        (x0..=x1).contains(&latency).then(|| {
            if x1 > x0 {
                y0 + (y1 - y0) * (latency - x0) / (x1 - x0)
            } else {
                y0
            }
        })
    })
}

/// Mean and sample standard deviation (0 for one value).
fn mean_std(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (mean, var.sqrt())
}

/// NetAdapt against the uniform width multiplier, one row per named run (seeds of one or
/// more budgets): NetAdapt's final network, the matched baseline (`--baseline`, matched on
/// measured latency), their test-accuracy difference, and the difference to the baseline
/// curve interpolated at NetAdapt's *predicted* latency (deterministic, unlike a measurement
/// on a shared machine). A run without a curve reads the curve of another listed run of the
/// same seed: the one whose curve holds this run's baseline record at the same width (the
/// baseline of one seed is the same network at every budget, with the same accuracies). Then per budget the mean and
/// standard deviation of both differences over its runs, in points (one run: its difference).
pub fn netadapt_seeds_table(runs: &[(String, Summary)]) -> Result<String, LabError> {
    let mut t = String::from(
        "| run | NetAdapt predicted / measured ms | NetAdapt test (holdout) | uniform width | uniform predicted / measured ms | uniform test (holdout) | NetAdapt - uniform | uniform curve at NetAdapt's predicted ms | NetAdapt - curve |\n|---|--:|--:|--:|--:|--:|--:|--:|--:|\n",
    );
    let pair = |r: &Record| {
        format!(
            "{} / {}",
            ms(r.latency_predicted_ms),
            ms(r.latency_measured_ms)
        )
    };
    let accuracy = |r: &Record| {
        format!(
            "{} ({})",
            r.test_accuracy.map_or("-".into(), percent),
            percent(r.accuracy)
        )
    };
    let points = |d: Option<f64>| d.map_or("-".into(), |d| format!("{:+.2}", 100.0 * d));
    // Per budget, in order of appearance: the matched and the curve differences.
    let mut budgets: Vec<(String, Vec<f64>, Vec<f64>)> = Vec::new();
    for (name, run) in runs {
        let budget = run.budget.join(", ");
        let last = run
            .final_network
            .as_ref()
            .ok_or_else(|| LabError::config("final", format!("run {name} has no final network")))?;
        let base = run.baseline.as_ref().ok_or_else(|| {
            LabError::config("baseline", format!("run {name} has no uniform baseline"))
        })?;
        let curve = if run.baseline_curve.is_empty() {
            runs.iter()
                .map(|(_, r)| &r.baseline_curve)
                .find(|c| {
                    // Accuracies, not latencies: those are measured again in every run.
                    c.iter().any(|b| {
                        b.width_multiplier == base.width_multiplier
                            && b.record.accuracy == base.record.accuracy
                            && b.record.test_accuracy == base.record.test_accuracy
                    })
                })
                .map_or(&[][..], |c| &c[..])
        } else {
            &run.baseline_curve[..]
        };
        let matched = last
            .test_accuracy
            .zip(base.record.test_accuracy)
            .map(|(a, b)| a - b);
        let at = last
            .latency_predicted_ms
            .and_then(|l| interpolate(curve, l));
        let versus = last.test_accuracy.zip(at).map(|(a, b)| a - b);
        let _ = writeln!(
            t,
            "| {name} | {} | {} | {} | {} | {} | {} | {} | {} |",
            pair(last),
            accuracy(last),
            base.width_multiplier,
            pair(&base.record),
            accuracy(&base.record),
            points(matched),
            at.map_or("-".into(), percent),
            points(versus),
        );
        let i = match budgets.iter().position(|(b, _, _)| *b == budget) {
            Some(i) => i,
            None => {
                budgets.push((budget, Vec::new(), Vec::new()));
                budgets.len() - 1
            }
        };
        budgets[i].1.extend(matched);
        budgets[i].2.extend(versus);
    }
    for (budget, matched, versus) in &budgets {
        let summary = |d: &[f64]| {
            if d.is_empty() {
                "-".to_string()
            } else if d.len() == 1 {
                // One run has no spread to show.
                format!("**{:+.2}** (n=1)", 100.0 * d[0])
            } else {
                let (m, s) = mean_std(d);
                format!("**{:+.2} ± {:.2}** (n={})", 100.0 * m, 100.0 * s, d.len())
            }
        };
        let _ = writeln!(
            t,
            "| {budget}: mean ± std | | | | | | {} | | {} |",
            summary(matched),
            summary(versus)
        );
    }
    Ok(t)
}

/// The chart of [`netadapt_seeds_table`]: test accuracy against *predicted* latency, every
/// run's uniform curve as a line (runs without one add nothing) and NetAdapt's final networks
/// as points, one series per budget, labelled with the run's name.
pub fn netadapt_seeds_chart(runs: &[(String, Summary)]) -> Scatter {
    let at = |r: &Record| Some((r.latency_predicted_ms?, 100.0 * r.test_accuracy?));
    let mut series: Vec<Series> = runs
        .iter()
        .filter(|(_, run)| !run.baseline_curve.is_empty())
        .map(|(name, run)| Series {
            name: format!("uniform width, every width ({name})"),
            points: run
                .baseline_curve
                .iter()
                .filter_map(|b| at(&b.record))
                .collect(),
            line: true,
            labels: Vec::new(),
        })
        .collect();
    for (name, run) in runs {
        let Some(p) = run.final_network.as_ref().and_then(at) else {
            continue;
        };
        let budget = format!("NetAdapt, {}", run.budget.join(", "));
        match series.iter_mut().find(|s| s.name == budget) {
            Some(s) => {
                s.points.push(p);
                s.labels.push(name.clone());
            }
            None => series.push(Series {
                name: budget,
                points: vec![p],
                line: false,
                labels: vec![name.clone()],
            }),
        }
    }
    let model = runs.first().map_or("", |(_, r)| r.model.as_str());
    Scatter {
        title: format!(
            "{}: NetAdapt vs the uniform width multiplier, test accuracy",
            crate::prune::display_name(model)
        ),
        x_label: "predicted latency (ms, the latency table)".into(),
        y_label: "test accuracy (%)".into(),
        series,
        diagonal: false,
    }
}

/// The uniform baseline curve of one run: predicted and measured latency and test accuracy
/// per width.
pub fn baseline_curve_table(run: &Summary) -> Result<String, LabError> {
    if run.baseline_curve.is_empty() {
        return Err(LabError::config(
            "baseline_curve",
            "empty (run with --baseline-curve)",
        ));
    }
    let cells = |f: &dyn Fn(&Record) -> String| -> String {
        run.baseline_curve
            .iter()
            .map(|b| format!(" {} |", f(&b.record)))
            .collect()
    };
    let widths: String = run
        .baseline_curve
        .iter()
        .map(|b| format!(" {} |", b.width_multiplier))
        .collect();
    let align = "--:|".repeat(run.baseline_curve.len());
    Ok(format!(
        "| width |{widths}\n|---|{align}\n| predicted ms |{}\n| measured ms |{}\n| test acc. |{}\n",
        cells(&|r| ms(r.latency_predicted_ms)),
        cells(&|r| ms(r.latency_measured_ms)),
        cells(&|r| r.test_accuracy.map_or("-".into(), percent)),
    ))
}

/// One row per run: how many of its measured networks the table predicted within 10%.
pub fn lut_validation_table(runs: &[(Summary, LutValidation)]) -> String {
    let mut t = String::from(
        "| run | within 10% | median abs. error | max abs. error | load average |\n|---|--:|--:|--:|--:|\n",
    );
    for (run, v) in runs {
        let _ = writeln!(
            t,
            "| {} | {}/{} | {:.1}% | {:.1}% | {} |",
            run.budget.join(", "),
            v.within_10_percent,
            v.networks,
            100.0 * v.median_abs_error,
            100.0 * v.max_abs_error,
            v.load_average.map_or("-".into(), |l| format!("{l:.2}")),
        );
    }
    t
}

/// A generated region of a Markdown file.
#[derive(Clone, Debug, PartialEq)]
pub struct Region {
    /// 1-based line of the opening marker.
    pub line: usize,
    pub kind: Kind,
    /// As written in the marker (relative to the repository root).
    pub paths: Vec<PathBuf>,
}

/// `text` with every generated region re-rendered; paths resolve against `root`, errors
/// name `file` and the marker's line.
pub fn update(text: &str, file: &Path, root: &Path) -> Result<String, LabError> {
    let mut out = String::with_capacity(text.len());
    let mut lines = text.split_inclusive('\n').enumerate();
    while let Some((i, line)) = lines.next() {
        out.push_str(line);
        let Some(region) = marker(line, i + 1).map_err(|e| e.context(at(file, i + 1)))? else {
            continue;
        };
        let paths: Vec<PathBuf> = region.paths.iter().map(|p| root.join(p)).collect();
        let table = render(region.kind, &paths).map_err(|e| e.context(at(file, i + 1)))?;
        out.push_str(&table);
        loop {
            match lines.next() {
                Some((_, l)) if l.trim_end() == END => {
                    out.push_str(l);
                    break;
                }
                Some((_, l)) if l.starts_with(BEGIN) => {
                    return Err(LabError::config(
                        "marker",
                        "a region opens before the last one ends",
                    )
                    .context(at(file, i + 1)))
                }
                Some(_) => {}
                None => {
                    return Err(LabError::config(
                        "marker",
                        format!("no {END:?} closes this region"),
                    )
                    .context(at(file, i + 1)))
                }
            }
        }
    }
    Ok(out)
}

fn at(file: &Path, line: usize) -> String {
    format!("{}:{line}", file.display())
}

/// The region a line opens, if it is an opening marker.
pub fn marker(line: &str, number: usize) -> Result<Option<Region>, LabError> {
    let Some(rest) = line.trim_end().strip_prefix(BEGIN) else {
        return Ok(None);
    };
    let rest = rest
        .strip_suffix("-->")
        .ok_or_else(|| LabError::config("marker", "the comment does not end on its line"))?;
    let mut words = rest.split_whitespace();
    let kind = Kind::parse(words.next().unwrap_or_default())?;
    Ok(Some(Region {
        line: number,
        kind,
        paths: words.map(PathBuf::from).collect(),
    }))
}

/// The generated regions of `text`.
pub fn regions(text: &str) -> Result<Vec<Region>, LabError> {
    let mut found = Vec::new();
    for (i, line) in text.lines().enumerate() {
        found.extend(marker(line, i + 1)?);
    }
    Ok(found)
}

/// Reads a Markdown file and returns it re-rendered (see [`update`]).
pub fn update_file(file: &Path, root: &Path) -> Result<(String, String), LabError> {
    let text = std::fs::read_to_string(file).map_err(|source| LabError::Io {
        path: file.to_path_buf(),
        source,
    })?;
    let updated = update(&text, file, root)?;
    Ok((text, updated))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_and_layer_counts() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(8_046_080), "8,046,080");
        let record = |layer: Option<&str>| Record {
            iteration: 0,
            accuracy: 0.9,
            test_accuracy: None,
            latency_measured_ms: None,
            latency_spread_ms: None,
            latency_predicted_ms: None,
            energy: None,
            macs: 0,
            weights: 0,
            channels: Default::default(),
            layer: layer.map(str::to_string),
            targets: Default::default(),
            checkpoint: String::new(),
        };
        let family: Vec<Record> = [
            None,
            Some("conv1"),
            Some("fc1"),
            Some("conv1"),
            Some("conv2"),
        ]
        .into_iter()
        .map(record)
        .collect();
        assert_eq!(simplified(&family), "conv1 x2, fc1, conv2");
        assert_eq!(simplified(&family[..1]), "-");
    }

    fn record(accuracy: f64, test: f64, predicted: f64) -> Record {
        Record {
            iteration: 0,
            accuracy,
            test_accuracy: Some(test),
            latency_measured_ms: Some(predicted * 1.1),
            latency_spread_ms: None,
            latency_predicted_ms: Some(predicted),
            energy: None,
            macs: 0,
            weights: 0,
            channels: Default::default(),
            layer: None,
            targets: Default::default(),
            checkpoint: String::new(),
        }
    }

    fn width(w: f64, record: Record) -> BaselineRecord {
        BaselineRecord {
            width_multiplier: w,
            matched_on: "latency_measured_ms".into(),
            matched_target: 0.0,
            tried: vec![],
            record,
        }
    }

    fn run(
        budget: &str,
        last: Record,
        base: BaselineRecord,
        curve: Vec<BaselineRecord>,
    ) -> Summary {
        Summary {
            model: "m".into(),
            data: "fashion-mnist".into(),
            budget: vec![budget.into()],
            budget_absolute: Default::default(),
            status: Status::Met,
            family: vec![record(0.9, 0.9, 0.4), last.clone()],
            final_network: Some(last),
            baseline: Some(base),
            baseline_curve: curve,
            hardware: None,
            unit: None,
        }
    }

    #[test]
    fn seeds_table_interpolates_the_curve_and_summarises_the_differences() {
        // Curve: 0.1 ms -> 70%, 0.2 ms -> 80% (given widest first, as runs store it).
        let curve = |shift: f64| {
            vec![
                width(0.5, record(0.79, 0.80 + shift, 0.2)),
                width(0.25, record(0.69, 0.70 + shift, 0.1)),
            ]
        };
        assert!((interpolate(&curve(0.0), 0.15).unwrap() - 0.75).abs() < 1e-12);
        assert!((interpolate(&curve(0.0), 0.2).unwrap() - 0.80).abs() < 1e-12);
        assert_eq!(interpolate(&curve(0.0), 0.25), None);
        assert_eq!(interpolate(&[], 0.15), None);
        // Two seeds at 0.5x: NetAdapt at 0.15 ms with 78% and 76%, curves 75% and 76% there;
        // matched baselines (width 0.5) 80% and 81%.
        let a = run(
            "latency=0.5x",
            record(0.8, 0.78, 0.15),
            curve(0.0)[0].clone(),
            curve(0.0),
        );
        let b = run(
            "latency=0.5x",
            record(0.8, 0.76, 0.15),
            curve(0.01)[0].clone(),
            curve(0.01),
        );
        // Seed 2 at 0.25x has no curve of its own: it reads seed 2's (its baseline, width
        // 0.25, has seed 2's accuracies but another measured latency).
        let mut base = curve(0.01)[1].clone();
        base.record.latency_measured_ms = Some(0.5);
        let c = run("latency=0.25x", record(0.7, 0.72, 0.125), base, vec![]);
        let runs = [
            ("s1".to_string(), a),
            ("s2".to_string(), b),
            ("s2q".to_string(), c),
        ];
        let table = netadapt_seeds_table(&runs).unwrap();
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 2 + 3 + 2, "{table}");
        assert!(lines[2].starts_with("| s1 | 0.1500 / 0.1650 | 78.00% (80.00%) | 0.5 | 0.2000 / 0.2200 | 80.00% (79.00%) | -2.00 | 75.00% | +3.00 |"), "{}", lines[2]);
        assert!(
            lines[3].contains("| -5.00 | 76.00% | +0.00 |"),
            "{}",
            lines[3]
        );
        // 0.125 ms on seed 2's curve: 71% + (81% - 71%) / 4 = 73.5%; NetAdapt 72%.
        assert!(lines[4].contains("| 73.50% | -1.50 |"), "{}", lines[4]);
        // Matched: -2 and -5 (mean -3.5, sample std 2.12); curve: +3 and 0 (1.5, 2.12).
        assert_eq!(lines[5], "| latency=0.5x: mean ± std | | | | | | **-3.50 ± 2.12** (n=2) | | **+1.50 ± 2.12** (n=2) |");
        assert!(
            lines[6].starts_with("| latency=0.25x: mean ± std |"),
            "{}",
            lines[6]
        );
        assert!(lines[6].contains("**-1.50** (n=1)"), "{}", lines[6]);

        // The chart: two curves (s2q has none), then NetAdapt per budget, labelled by run.
        let chart = netadapt_seeds_chart(&runs);
        let names: Vec<&str> = chart.series.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "uniform width, every width (s1)",
                "uniform width, every width (s2)",
                "NetAdapt, latency=0.5x",
                "NetAdapt, latency=0.25x"
            ]
        );
        assert_eq!(chart.series[1].points, vec![(0.2, 81.0), (0.1, 71.0)]);
        assert_eq!(chart.series[2].points, vec![(0.15, 78.0), (0.15, 76.0)]);
        assert_eq!(chart.series[2].labels, ["s1", "s2"]);
        assert_eq!(chart.series[3].points, vec![(0.125, 72.0)]);
        assert!(joule_report::scatter_svg(&chart).unwrap().contains("<svg"));
    }

    #[test]
    fn bad_markers_name_the_file_and_line() {
        let text = "a\n<!-- generated: joule docs-tables render pareto x.json -->\n<!-- end generated -->\n";
        let err = update(text, Path::new("d.md"), Path::new("."))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("d.md:2: kind: \"pareto\" is not one of prune"),
            "{err}"
        );
        let text = "<!-- generated: joule docs-tables render prune x.json -->\n| a |\n";
        let err = update(text, Path::new("d.md"), Path::new("."))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("d.md:1: "), "{err}");
        assert!(
            err.contains("x.json"),
            "the missing summary is named: {err}"
        );
    }
}
