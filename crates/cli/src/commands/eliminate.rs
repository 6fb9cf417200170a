//! `joule eliminate`: neuron elimination without retraining (seed 003), per layer, with the
//! accuracy-energy trade-off on one or more hardware models. docs/eliminate.md documents the
//! output folder and `summary.json`.

use super::train::init_threads;
use crate::data_args::DataArgs;
use crate::load;
use anyhow::{bail, Context, Result};
use joule_compress::eliminate::pareto::{pareto, ParetoPoint};
use joule_compress::eliminate::sweep::{Energy, Reference};
use joule_compress::eliminate::{layer, Config, Eliminator, LayerSweep, Point};
use joule_energy::spec;
use joule_nn::{Network, Split};
use joule_report::curves::{curves_svg, Curve, Curves, Front};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct Args {
    /// A trained model: a .safetensors checkpoint (from `joule train`) or an .onnx file.
    #[arg(long)]
    model: String,
    #[command(flatten)]
    dataset: DataArgs,
    /// The layer whose neurons to eliminate (fully connected, or CONV channels), a comma-separated
    /// list, or `all` for every eliminable layer.
    #[arg(long, default_value = "all")]
    layer: String,
    /// Stop a layer's sweep once test accuracy drops more than this many points.
    #[arg(long, allow_hyphen_values = true, default_value_t = 2.0)]
    max_drop: f64,
    /// Hardware presets or spec files, comma-separated; the first one orders the tables and
    /// picks `simplified.onnx`.
    #[arg(long, default_value = "horowitz45,eyeriss")]
    hw: String,
    /// Also refit the next layer's bias by least squares (the seed keeps it unchanged).
    #[arg(long)]
    refit_bias: bool,
    /// Training samples forming X (default: the whole training split).
    #[arg(long)]
    samples: Option<usize>,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Output folder (created).
    #[arg(long)]
    out: PathBuf,
}

pub fn run(args: Args) -> Result<()> {
    let source = args.dataset.source()?;
    let hardware = args
        .hw
        .split(',')
        .map(|name| spec::load(name.trim()).with_context(|| format!("--hw {name}")))
        .collect::<Result<Vec<_>>>()?;
    let mut config = Config::new(args.max_drop, hardware)?;
    if args.samples == Some(0) {
        bail!("--samples: must be at least 1");
    }
    config.samples = args.samples;
    config.refit_bias = args.refit_bias;
    init_threads(args.threads)?;
    let graph = load::model(&args.model)?;
    let layers: Vec<String> = if args.layer == "all" {
        layer::eliminable_names(&graph)
    } else {
        args.layer
            .split(',')
            .map(|s| s.trim().to_string())
            .collect()
    };
    for name in &layers {
        layer::site(&graph, name)?;
    }
    if layers.is_empty() {
        bail!("--layer all: {} has no eliminable layer", args.model);
    }
    if let Some((_, node)) = graph.weighted_layers().find(|(_, n)| n.params.is_empty()) {
        bail!(
            "--model {}: layer {} has no trained weights (give a checkpoint from `joule train` \
             or an ONNX file with weights)",
            args.model,
            node.name
        );
    }
    let network = Network::new(graph, config.seed).with_context(|| args.model.clone())?;
    let dir = args.dataset.dir();
    let train = source.load(&dir, Split::Train)?;
    let test = source.load(&dir, Split::Test)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("--out {}: cannot create", args.out.display()))?;

    let eliminator = Eliminator::new(&network, &train, &test, config);
    let original = eliminator.reference()?;
    eprintln!(
        "{}: test accuracy {:.2}%, {} parameters",
        args.model,
        100.0 * original.accuracy,
        original.params
    );
    let mut sweeps = Vec::new();
    for name in &layers {
        let sweep = eliminator.sweep(name, original.accuracy, |p| {
            eprintln!(
                "{name}: p = {:4}  accuracy {:6.2}%  baseline {:6.2}%  params {:7}  error {:.4}",
                p.kept,
                100.0 * p.accuracy,
                100.0 * p.baseline.accuracy,
                p.params,
                p.reconstruction_error
            );
        })?;
        sweeps.push(sweep);
    }
    let hw_count = eliminator.config().hardware.len();
    let fronts: Vec<Vec<ParetoPoint>> = (0..hw_count).map(|i| pareto(&sweeps, i)).collect();

    let name = display_name(&args.model);
    write_models(&eliminator, &sweeps, &fronts[0], &args.out)?;
    for (i, hw) in eliminator.config().hardware.iter().enumerate() {
        let path = args.out.join(format!("curves-{}.svg", hw.name));
        let svg = curves_svg(&chart(&name, &original, &sweeps, &fronts[i], i))?;
        std::fs::write(&path, svg).with_context(|| format!("cannot write {}", path.display()))?;
    }
    let mut tables = tables(&name, &original, &sweeps, hw_count);
    pareto_tables(&mut tables, &fronts);
    std::fs::write(args.out.join("tables.md"), &tables)
        .with_context(|| format!("--out {}: cannot write tables.md", args.out.display()))?;
    let summary = summary(&args, source.name(), &original, &sweeps, &fronts);
    std::fs::write(
        args.out.join("summary.json"),
        serde_json::to_string_pretty(&summary)?,
    )
    .with_context(|| format!("--out {}: cannot write summary.json", args.out.display()))?;
    print!("{tables}");
    Ok(())
}

/// `<layer>.onnx` (its smallest configuration within the threshold) and `simplified.onnx`
/// (the least-energy point of the first hardware's Pareto set).
fn write_models(
    eliminator: &Eliminator,
    sweeps: &[LayerSweep],
    front: &[ParetoPoint],
    out: &Path,
) -> Result<()> {
    for sweep in sweeps {
        if let Some(graph) = sweep.best().and_then(|p| eliminator.simplified(sweep, p)) {
            joule_onnx::export_file(&graph, &out.join(format!("{}.onnx", sweep.layer)))?;
        }
    }
    if let Some(best) = front.first() {
        let sweep = sweeps.iter().find(|s| s.layer == best.layer);
        let point = sweep.and_then(|s| s.points.iter().find(|p| p.kept == best.kept));
        if let (Some(sweep), Some(point)) = (sweep, point) {
            if let Some(graph) = eliminator.simplified(sweep, point) {
                joule_onnx::export_file(&graph, &out.join("simplified.onnx"))?;
            }
        }
    }
    Ok(())
}

/// Energy in display units: µJ for picojoules, thousands of MACs for MAC-normalised specs.
fn display(e: &Energy) -> (f64, &'static str) {
    match e.unit.as_str() {
        "pJ" => (e.total / 1e6, "µJ"),
        _ => (e.total / 1e3, "kMAC"),
    }
}

fn scaled(value: f64, unit: &str) -> f64 {
    if unit == "pJ" {
        value / 1e6
    } else {
        value / 1e3
    }
}

fn chart(
    model: &str,
    original: &Reference,
    sweeps: &[LayerSweep],
    front: &[ParetoPoint],
    hw: usize,
) -> Curves {
    let (x0, unit) = display(&original.energy[hw]);
    let line = |points: &[Point], f: &dyn Fn(&Point) -> f64| -> Vec<(f64, f64)> {
        points
            .iter()
            .map(|p| (display(&p.energy[hw]).0, 100.0 * f(p)))
            .collect()
    };
    let mut curves = Vec::new();
    for s in sweeps {
        curves.push(Curve {
            name: format!("{} (SVD + QR, least squares)", s.layer),
            points: line(&s.points, &|p| p.accuracy),
            dashed: false,
        });
        curves.push(Curve {
            name: format!("{} (largest outgoing norm)", s.layer),
            points: line(&s.points, &|p| p.baseline.accuracy),
            dashed: true,
        });
    }
    let unit_name = &original.energy[hw].unit;
    Curves {
        title: format!(
            "{model} on {} (original: {x0:.1} {unit}, {:.2}%)",
            original.energy[hw].hardware,
            100.0 * original.accuracy
        ),
        x_label: format!("energy ({unit})"),
        y_label: "test accuracy (%)".into(),
        curves,
        front: Some(Front {
            name: "Pareto set".into(),
            points: front
                .iter()
                .map(|p| (scaled(p.energy, unit_name), 100.0 * p.accuracy))
                .collect(),
            maximize_y: true,
        }),
    }
}

/// A model argument for titles: a file's stem, else the name.
fn display_name(model: &str) -> String {
    Path::new(model)
        .file_stem()
        .map_or(model.to_string(), |s| s.to_string_lossy().into_owned())
}

/// The Pareto set on each hardware, as Markdown tables appended to `t`.
fn pareto_tables(t: &mut String, fronts: &[Vec<ParetoPoint>]) {
    for front in fronts {
        let Some(first) = front.first() else { continue };
        let _ = writeln!(
            t,
            "\n#### Pareto set across layers on {} (least energy first)\n",
            first.hardware
        );
        let _ = writeln!(t, "| layer | kept | accuracy | params | energy |");
        let _ = writeln!(t, "|---|---:|---:|---:|---:|");
        for p in front {
            let _ = writeln!(
                t,
                "| {} | {} | {:.2}% | {} | {:.4e} |",
                p.layer,
                p.kept,
                100.0 * p.accuracy,
                p.params,
                p.energy
            );
        }
    }
}

fn megabits(params: usize) -> f64 {
    params as f64 * 32.0 / 1e6
}

/// The memory table and one energy table per hardware, as Markdown (seed 003's layout).
fn tables(model: &str, original: &Reference, sweeps: &[LayerSweep], hw_count: usize) -> String {
    let mut t = String::new();
    let _ = writeln!(t, "#### Memory ({model}, parameters at 32 bits)\n");
    let _ = writeln!(
        t,
        "| layer | neurons | rank | kept | params before | params after | % of original | ratio | accuracy before | accuracy after | baseline accuracy |"
    );
    let _ = writeln!(t, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for s in sweeps {
        let Some(p) = s.best() else {
            let _ = writeln!(
                t,
                "| {} | {} | {} | - | {} | - | - | - | {:.2}% | - | - |",
                s.layer,
                s.neurons,
                s.rank,
                original.params,
                100.0 * original.accuracy
            );
            continue;
        };
        let _ = writeln!(
            t,
            "| {} | {} | {} | {} | {} ({:.2} Mb) | {} ({:.2} Mb) | {:.2}% | {:.2}x | {:.2}% | {:.2}% | {:.2}% |",
            s.layer,
            s.neurons,
            s.rank,
            p.kept,
            original.params,
            megabits(original.params),
            p.params,
            megabits(p.params),
            100.0 * p.params as f64 / original.params as f64,
            original.params as f64 / p.params as f64,
            100.0 * original.accuracy,
            100.0 * p.accuracy,
            100.0 * p.baseline.accuracy
        );
    }
    for hw in 0..hw_count {
        let e0 = &original.energy[hw];
        let _ = writeln!(
            t,
            "\n#### Energy per inference on {} ({})\n",
            e0.hardware, e0.unit
        );
        let _ = writeln!(
            t,
            "| configuration | MAC | RF | array | buffer (SRAM) | DRAM | total | accuracy |"
        );
        let _ = writeln!(t, "|---|---:|---:|---:|---:|---:|---:|---:|");
        let row = |t: &mut String, name: &str, e: &Energy, acc: f64| {
            let _ = writeln!(
                t,
                "| {name} | {:.4e} | {:.4e} | {:.4e} | {:.4e} | {:.4e} | {:.4e} | {:.2}% |",
                e.mac,
                e.rf,
                e.array,
                e.buffer,
                e.dram,
                e.total,
                100.0 * acc
            );
        };
        row(&mut t, "original", e0, original.accuracy);
        for s in sweeps {
            let Some(p) = s.best() else { continue };
            let e = &p.energy[hw];
            row(
                &mut t,
                &format!("{} p = {}", s.layer, p.kept),
                e,
                p.accuracy,
            );
            let ratio = |a: f64, b: f64| {
                if b > 0.0 {
                    format!("{:.2}x", a / b)
                } else {
                    "-".into()
                }
            };
            let _ = writeln!(
                t,
                "| original / {} | {} | {} | {} | {} | {} | {} | |",
                s.layer,
                ratio(e0.mac, e.mac),
                ratio(e0.rf, e.rf),
                ratio(e0.array, e.array),
                ratio(e0.buffer, e.buffer),
                ratio(e0.dram, e.dram),
                ratio(e0.total, e.total)
            );
        }
    }
    t
}

fn summary(
    args: &Args,
    data: &str,
    original: &Reference,
    sweeps: &[LayerSweep],
    fronts: &[Vec<ParetoPoint>],
) -> serde_json::Value {
    let layers: BTreeMap<&str, &Vec<Point>> = sweeps
        .iter()
        .map(|s| (s.layer.as_str(), &s.points))
        .collect();
    let info: BTreeMap<&str, serde_json::Value> = sweeps
        .iter()
        .map(|s| {
            (
                s.layer.as_str(),
                serde_json::json!({
                    "next": s.next,
                    "neurons": s.neurons,
                    "rank": s.rank,
                    "rank_tolerance": s.rank_tolerance,
                    "best": s.best().map(|p| p.kept),
                }),
            )
        })
        .collect();
    serde_json::json!({
        "model": args.model,
        "data": data,
        "max_drop": args.max_drop,
        "samples": args.samples,
        "refit_bias": args.refit_bias,
        "hardware": original.energy.iter().map(|e| &e.hardware).collect::<Vec<_>>(),
        "original": original,
        "layers": layers,
        "layer_info": info,
        "pareto": fronts.iter().flatten().collect::<Vec<_>>(),
    })
}
