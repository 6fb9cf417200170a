//! `joule report`: one self-contained HTML page of what joule measures. It lays out what it
//! is given: models on machines (a benchmarking-metrics table in the spirit of seed 001,
//! per-layer energy by memory level and data type, weights and MACs against energy), the
//! dataflow comparison at equal area, and the run directories of `prune`, `adapt` and
//! `eliminate` (accuracy-energy trade-offs with their Pareto fronts, per-layer sparsity or
//! width before and after, the latency table's predictions against measurement).

use crate::adapt::{self, LutValidation};
use crate::eliminate::{self, EliminateSummary};
use crate::error::{Context, LabError};
use crate::estimate::{self, energy_label, EnergyOptions};
use crate::hardware::{self, Machine};
use crate::model::Model;
use crate::prune::{self, display_name, method_name, PruneSummary};
use crate::tables;
use joule_compress::netadapt::run::Summary as AdaptSummary;
use joule_compress::RunDir;
use joule_energy::NetworkCost;
use joule_report::curves::curves_svg;
use joule_report::html::{Page, Section};
use joule_report::{eng, scatter_svg, stacked_bars_svg, Scatter, Series, StackedBars, Table};
use std::path::{Path, PathBuf};

/// What a report shows.
#[derive(Clone, Debug)]
pub struct ReportOptions {
    pub title: String,
    /// Models to estimate: zoo names, ONNX files or checkpoints.
    pub models: Vec<String>,
    /// Machines to estimate them on.
    pub hw: Vec<String>,
    pub batch: usize,
    /// Compare the dataflows at equal area on this machine (for every model), if set.
    pub dataflows: Option<String>,
    pub dataflow_batch: usize,
    /// Run directories of `prune`, `adapt` or `eliminate` (or their summary files).
    pub runs: Vec<PathBuf>,
    /// A dataset to score the models that carry trained weights on (test split).
    pub data: Option<crate::DataSpec>,
    /// Show where the energy goes per layer, for every model on every machine.
    pub layers: bool,
}

/// A machine's size, for the metrics table.
struct Size {
    processing: String,
    storage_bytes: f64,
}

fn size(machine: &Machine) -> Size {
    match machine {
        Machine::Digital(hw) => Size {
            processing: format!(
                "{} PEs ({}x{})",
                hw.array.pes(),
                hw.array.rows,
                hw.array.cols
            ),
            storage_bytes: (hw.array.pes() * hw.rf.total_words() + hw.buffer_words) as f64
                * hw.word_bytes(),
        },
        Machine::Pim(hw) => Size {
            processing: match hw.array.count {
                Some(n) => format!("{n} crossbars of {}x{}", hw.array.rows, hw.array.cols),
                None => format!(
                    "crossbars of {}x{} (as many as needed)",
                    hw.array.rows, hw.array.cols
                ),
            },
            storage_bytes: hw.buffer_words as f64 * hw.word_bits as f64 / 8.0,
        },
    }
}

/// Energy with its unit spelled out: joules for picojoules, else MAC-energy units.
fn energy_text(value: f64, unit: &str) -> String {
    match unit {
        "pJ" => {
            let e = eng(value * 1e-12);
            // `eng` puts a space before a prefix only: "340 µ", but "5".
            if e.ends_with(|c: char| c.is_ascii_digit()) {
                format!("{e} J")
            } else {
                format!("{e}J")
            }
        }
        _ => format!("{} MAC units", eng(value)),
    }
}

/// Builds the page.
pub fn report(options: &ReportOptions) -> Result<String, LabError> {
    estimate::check_batch(options.batch)?;
    let machines = options
        .hw
        .iter()
        .map(|h| hardware::machine(h))
        .collect::<Result<Vec<_>, _>>()?;
    let models = options
        .models
        .iter()
        .map(|m| Model::load(m))
        .collect::<Result<Vec<_>, _>>()?;
    let accuracy = accuracies(&models, options.data.as_ref())?;
    let mut results: Vec<(usize, usize, NetworkCost)> = Vec::new();
    for (mi, model) in models.iter().enumerate() {
        for (hi, machine) in machines.iter().enumerate() {
            let mut opts = EnergyOptions::new(model.spec(), machine.name());
            opts.batch = options.batch;
            results.push((mi, hi, estimate::energy_on(model, machine, &opts)?));
        }
    }
    let mut parts = Vec::new();
    if !models.is_empty() {
        let names: Vec<String> = models.iter().map(Model::name).collect();
        let hw: Vec<&str> = machines.iter().map(Machine::name).collect();
        parts.push(format!(
            "{} on {}, batch {}",
            names.join(", "),
            hw.join(", "),
            options.batch
        ));
    }
    if !options.runs.is_empty() {
        parts.push(format!("{} compression run(s)", options.runs.len()));
    }
    let subtitle = format!(
        "{}. Made by joule {} on {}.",
        parts.join("; "),
        env!("CARGO_PKG_VERSION"),
        today()
    );
    let mut page = Page::new(&options.title, subtitle);
    if !results.is_empty() {
        metrics_section(
            page.section("Benchmarking metrics"),
            &models,
            &accuracy,
            &machines,
            &results,
        )?;
        proxies_section(&mut page, &models, &machines, &results)?;
        for (mi, hi, r) in results.iter().filter(|_| options.layers) {
            layers_section(
                page.section(format!(
                    "Where the energy goes: {} on {}",
                    models[*mi].name(),
                    machines[*hi].name()
                )),
                r,
            )?;
        }
    }
    if let Some(hw) = &options.dataflows {
        for model in &options.models {
            let section = page.section(format!(
                "Dataflows at equal area: {} on {hw}",
                display_name(model)
            ));
            section.how_to_read("Each bar is one dataflow on a machine with the same storage area as the RS machine (ISCA'16's comparison): CONV and FC energy per batch. Lower is better; the table gives the ratios to RS.");
            match estimate::dataflows(model, hw, options.dataflow_batch) {
                Ok(flows) => {
                    section
                        .chart(estimate::dataflows_svg(&flows)?)
                        .table(&tables::dataflows(&flows));
                }
                // A dataflow with no legal mapping at this area is a finding, not a failure.
                Err(e) => {
                    section.paragraph(format!("Not compared: {e}"));
                }
            }
        }
    }
    for dir in &options.runs {
        run_sections(&mut page, dir).context(|| format!("run {}", dir.display()))?;
    }
    Ok(page.render())
}

fn today() -> String {
    // Days since the epoch to a civil date (Howard Hinnant's algorithm), so the page says
    // when it was made without a date crate.
    let days = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86_400) as i64;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Test accuracy of every model that carries trained weights, on `data`'s test split.
fn accuracies(
    models: &[Model],
    data: Option<&crate::DataSpec>,
) -> Result<Vec<Option<f64>>, LabError> {
    let Some(data) = data else {
        return Ok(vec![None; models.len()]);
    };
    let mut test = None;
    models
        .iter()
        .map(|m| {
            if !m.has_weights() {
                return Ok(None);
            }
            if test.is_none() {
                test = Some(data.load_test()?);
            }
            let network = m.network(0)?;
            let eval = joule_nn::evaluate(&network, test.as_ref().expect("loaded"), 256)?;
            Ok(Some(eval.accuracy))
        })
        .collect()
}

fn metrics_section(
    section: &mut Section,
    models: &[Model],
    accuracy: &[Option<f64>],
    machines: &[Machine],
    results: &[(usize, usize, NetworkCost)],
) -> Result<(), LabError> {
    let mut t = Table::new([
        "model",
        "machine",
        "test accuracy",
        "weights",
        "MACs",
        "energy / inference",
        "DRAM bytes / inference",
        "cycles",
        "latency (µs)",
        "PE utilization",
        "processing elements",
        "on-chip storage (bytes)",
        "area (mm²)",
    ]);
    for (mi, hi, r) in results {
        let stats = joule_model::NetworkStats::of(models[*mi].graph(), None)?;
        let batch = r.batch as f64;
        let size = size(&machines[*hi]);
        t.row([
            models[*mi].name(),
            machines[*hi].name().to_string(),
            accuracy[*mi].map_or("-".into(), |a| format!("{:.2}%", 100.0 * a)),
            eng(stats.total.weights as f64),
            eng(r.total.macs as f64 / batch),
            energy_text(r.total.energy.total / batch, &r.unit),
            eng(r.total.dram_bytes / batch),
            eng(r.total.cycles),
            eng(r.total.cycles / r.clock_mhz),
            format!("{:.1}%", 100.0 * r.total.utilization),
            size.processing,
            eng(size.storage_bytes),
            // The 65 nm area model of digital machines (docs/energy.md, "Area").
            r.area.map_or("-".into(), |a| format!("{:.2}", a.total)),
        ]);
    }
    section
        .how_to_read("One row per model and machine. Test accuracy is given for models with trained weights when the report was given a dataset (`--data`); zoo structures have none. Energy per inference is in joules where the machine's costs are in picojoules, and in MAC units (multiples of one MAC's energy) where the spec is normalised to a MAC, as Eyeriss's is; do not compare the two kinds across machines. Latency is cycles at the machine's clock. Area is the 65 nm model of docs/energy.md (MACs, RF and buffer; not the NoC), digital machines only. Click a column header to sort.")
        .table(&t);
    Ok(())
}

/// Weights vs energy and MACs vs energy, one chart each per machine (seed 000's point: the
/// proxies do not order networks by energy).
fn proxies_section(
    page: &mut Page,
    models: &[Model],
    machines: &[Machine],
    results: &[(usize, usize, NetworkCost)],
) -> Result<(), LabError> {
    if models.len() < 2 {
        return Ok(());
    }
    let section = page.section("Weights and MACs are not energy");
    section.how_to_read("Each point is one model (hover for its values). If weights or MACs were a good proxy, the points would rise from left to right in the same order on every chart; where a model sits higher than one to its right, the proxy mis-orders them.");
    for (hi, machine) in machines.iter().enumerate() {
        let rows: Vec<&(usize, usize, NetworkCost)> =
            results.iter().filter(|(_, h, _)| *h == hi).collect();
        let unit = &rows[0].2.unit;
        for (what, label) in [("weights", "weights"), ("MACs", "MACs per inference")] {
            let mut points = Vec::new();
            let mut labels = Vec::new();
            for (mi, _, r) in &rows {
                let stats = joule_model::NetworkStats::of(models[*mi].graph(), None)?;
                let x = match what {
                    "weights" => stats.total.weights as f64,
                    _ => r.total.macs as f64 / r.batch as f64,
                };
                points.push((x, r.total.energy.total / r.batch as f64));
                labels.push(models[*mi].name());
            }
            // One series, each point labelled with its model: a legend of many models would
            // cover the points and repeat its colours.
            let series = vec![Series {
                name: "models".into(),
                points,
                line: false,
                labels,
            }];
            section.chart(scatter_svg(&Scatter {
                title: format!("{what} vs energy per inference on {}", machine.name()),
                x_label: label.into(),
                y_label: format!("{} per inference", energy_label(unit)),
                series,
                diagonal: false,
            })?);
        }
    }
    Ok(())
}

fn layers_section(section: &mut Section, r: &NetworkCost) -> Result<(), LabError> {
    let panels = estimate::energy_panels(r);
    let log = StackedBars {
        title: format!("{} (log scale: the small levels visible)", panels[0].title),
        log_y: true,
        ..panels[0].clone()
    };
    section
        .how_to_read("Per CONV/FC layer, energy split by memory level (MAC, register file, array network, global buffer, DRAM) and by data type (ifmap, filter, psum; compute is the MACs themselves). The log-scale copy shows the levels too small to see on the linear one; on it, a segment's height is not proportional to its share. Hover a segment for its exact value.")
        .chart(stacked_bars_svg(&panels)?)
        .chart(stacked_bars_svg(&[log])?)
        .table(&tables::energy_layers(r, false));
    Ok(())
}

/// The kind of run a directory (or a summary file) holds, read from its summary.
fn run_sections(page: &mut Page, run: &Path) -> Result<(), LabError> {
    let (dir, path) = if run.is_file() {
        (run.parent().unwrap_or(Path::new(".")), run.to_path_buf())
    } else {
        (run, run.join(RunDir::SUMMARY))
    };
    let text = std::fs::read_to_string(&path).map_err(|source| LabError::Io {
        path: path.clone(),
        source,
    })?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| LabError::config("run", format!("{}: {e}", path.display())))?;
    let parse_err =
        |e: serde_json::Error| LabError::config("run", format!("{}: {e}", path.display()));
    if value.get("method").is_some() {
        prune_section(page, &serde_json::from_value(value).map_err(parse_err)?)
    } else if value.get("family").is_some() {
        let validation = std::fs::read_to_string(dir.join("lut_validation.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<LutValidation>(&t).ok());
        adapt_section(
            page,
            &serde_json::from_value(value).map_err(parse_err)?,
            validation,
        )
    } else if value.get("layer_info").is_some() {
        eliminate_section(page, &serde_json::from_value(value).map_err(parse_err)?)
    } else {
        Err(LabError::config(
            "run",
            format!(
                "{}: not the summary of a prune, adapt or eliminate run",
                path.display()
            ),
        ))
    }
}

fn prune_section(page: &mut Page, s: &PruneSummary) -> Result<(), LabError> {
    let name = display_name(&s.model);
    let method = method_name(s.method);
    let mut sparsity = Table::new([
        "layer",
        "weights",
        "non-zero before",
        "non-zero after",
        "density after",
        "energy before",
        "energy after",
    ]);
    for (o, f) in s.original.layers.iter().zip(&s.final_metrics.layers) {
        sparsity.row([
            o.name.clone(),
            o.weights.to_string(),
            o.nonzero_weights.to_string(),
            f.nonzero_weights.to_string(),
            format!(
                "{:.1}%",
                100.0 * f.nonzero_weights as f64 / o.weights.max(1) as f64
            ),
            eng(o.energy),
            eng(f.energy),
        ]);
    }
    page.section(format!("Pruning ({method}): {name} on {}, {}", s.hardware, s.data))
        .metrics([
            ("test accuracy", format!("{:.2}% → {:.2}%", 100.0 * s.original.accuracy, 100.0 * s.final_metrics.accuracy)),
            ("energy per image", format!("{} → {} ({:.1}% of the original)", energy_text(s.original.energy, &s.unit), energy_text(s.final_metrics.energy, &s.unit), 100.0 * s.final_metrics.normalized_energy)),
            ("non-zero weights", format!("{} → {}", eng(s.original.nonzero_weights as f64), eng(s.final_metrics.nonzero_weights as f64))),
            ("stopped", s.stop_reason.clone()),
        ])
        .how_to_read(format!("Test accuracy against energy relative to the original network, for every network the run accepted; the staircase is the Pareto front (no accepted network is both cheaper and more accurate than a point on it). {} Below: per-layer energy before (whole bar) and after (lower part), and the sparsity of each layer.", match s.config.holdout {
            0 => format!("The dashed line is the accuracy floor ({} points below the original; this run chose on the test split, as runs before validation splits did).", s.max_drop),
            n => format!("The run chose on {n} validation images carved from the training data, never on the test split: the dashed curve is the accepted networks' validation accuracy and the dashed line its floor ({} points below the original's).", s.max_drop),
        }))
        .chart(curves_svg(&prune::tradeoff_chart(s, None))?)
        .chart(stacked_bars_svg(&[prune::layers_chart(s)])?)
        .table(&sparsity);
    Ok(())
}

fn adapt_section(
    page: &mut Page,
    s: &AdaptSummary,
    validation: Option<LutValidation>,
) -> Result<(), LabError> {
    let name = display_name(&s.model);
    let section = page.section(format!(
        "NetAdapt: {name} on {}, budget {}",
        s.data,
        s.budget.join(", ")
    ));
    let last = s.family.last().expect("the family holds the original");
    let first = &s.family[0];
    let mut metrics = vec![
        ("status".to_string(), format!("{:?}", s.status)),
        ("iterations".to_string(), (s.family.len() - 1).to_string()),
        (
            "holdout accuracy".to_string(),
            format!(
                "{:.2}% → {:.2}%",
                100.0 * first.accuracy,
                100.0 * last.accuracy
            ),
        ),
        (
            "MACs".to_string(),
            format!("{} → {}", eng(first.macs as f64), eng(last.macs as f64)),
        ),
    ];
    if let Some(f) = s.final_network.as_ref().and_then(|f| f.test_accuracy) {
        metrics.push((
            "final test accuracy (long-term fine-tuned)".into(),
            format!("{:.2}%", 100.0 * f),
        ));
    }
    if let Some(v) = &validation {
        metrics.push((
            "latency table".into(),
            format!(
                "{} of {} networks within 10% (median error {:.1}%)",
                v.within_10_percent,
                v.networks,
                100.0 * v.median_abs_error
            ),
        ));
    }
    section.metrics(metrics).how_to_read("Holdout accuracy of every network NetAdapt produced (one layer simplified per iteration) against measured latency, energy and MACs; the uniform width-multiplier baseline, fine-tuned the same way, where the run built it. Then the latency table's prediction against the measured latency of each network (on the diagonal: exact), and the filters of each layer before and after.");
    for (_, chart) in adapt::accuracy_charts(s) {
        section.chart(scatter_svg(&chart)?);
    }
    if validation.is_some() {
        section.chart(scatter_svg(&adapt::latency_chart(s))?);
    }
    let mut widths = Table::new(["layer", "filters before", "filters after", "kept"]);
    for (layer, before) in &first.channels {
        let after = last.channels.get(layer).copied().unwrap_or(*before);
        widths.row([
            layer.clone(),
            before.to_string(),
            after.to_string(),
            format!("{:.0}%", 100.0 * after as f64 / (*before).max(1) as f64),
        ]);
    }
    section.table(&widths);
    Ok(())
}

fn eliminate_section(page: &mut Page, s: &EliminateSummary) -> Result<(), LabError> {
    let name = display_name(&s.model);
    let section = page.section(format!("Neuron elimination: {name} on {}", s.data));
    section.how_to_read("Test accuracy (no retraining) against energy per inference as each layer keeps fewer neurons: solid lines choose them by SVD and pivoted QR with the next layer re-solved by least squares, dashed lines keep the neurons with the largest outgoing weights. The staircase is the Pareto set across layers.");
    for hw in 0..s.hardware.len() {
        section.chart(curves_svg(&eliminate::chart(s, hw))?);
    }
    let mut t = Table::new(["layer", "neurons", "rank", "smallest within the threshold"]);
    for (layer, info) in &s.layer_info {
        t.row([
            layer.clone(),
            info.neurons.to_string(),
            info.rank.to_string(),
            info.best.map_or("-".into(), |b| b.to_string()),
        ]);
    }
    section.table(&t);
    Ok(())
}
