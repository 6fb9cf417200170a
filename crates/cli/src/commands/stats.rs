use crate::load;
use crate::output::{Format, FormatArgs};
use anyhow::{Context, Result};
use joule_model::{NetworkStats, Shape};
use joule_report::{human, Table};

#[derive(clap::Args)]
pub struct Args {
    /// A zoo name (see `joule zoo`) or an .onnx file.
    model: String,
    /// Input shape N,C,H,W; required when the model does not fix it.
    #[arg(long, value_parser = Shape::parse)]
    input_shape: Option<Shape>,
    /// Print every layer, not only CONV and FC.
    #[arg(long)]
    all: bool,
    #[command(flatten)]
    format: FormatArgs,
}

pub fn run(args: Args) -> Result<()> {
    let graph = load::model(&args.model)?;
    if let (None, Some(spec), Some(_)) = (args.input_shape, &graph.input_spec, graph.input_shape) {
        if spec.dynamic_batch() {
            eprintln!(
                "joule: {}: input {:?} has a dynamic batch axis; batch 1 assumed (--input-shape sets it)",
                args.model, spec.name
            );
        }
    }
    let stats = NetworkStats::of(&graph, args.input_shape).with_context(|| args.model.clone())?;
    match args.format.format() {
        Format::Json => println!("{}", serde_json::to_string_pretty(&stats)?),
        Format::Csv => print!("{}", table(&stats, true, true).to_csv()?),
        Format::Text => {
            let [n, c, h, w] = stats.input_shape;
            println!("{} (input {n}x{c}x{h}x{w})", stats.model);
            println!("{}", table(&stats, args.all, false).to_text());
            println!("{}", summary(&stats).to_text());
        }
    }
    Ok(())
}

fn table(stats: &NetworkStats, all: bool, raw: bool) -> Table {
    let mut t = Table::new([
        "layer",
        "kind",
        "output",
        "weights",
        "biases",
        "macs",
        "input_activations",
        "output_activations",
        "element_ops",
    ]);
    let count = |v: u64| if raw { v.to_string() } else { human(v as f64) };
    for l in &stats.layers {
        if !all && l.class == joule_model::LayerClass::Other {
            continue;
        }
        let [n, c, h, w] = l.output_shape;
        t.row([
            l.name.clone(),
            l.kind.clone(),
            format!("{n}x{c}x{h}x{w}"),
            count(l.weights),
            count(l.biases),
            count(l.macs),
            count(l.input_activations),
            count(l.output_activations),
            count(l.element_ops),
        ]);
    }
    t
}

fn summary(stats: &NetworkStats) -> Table {
    let t = &stats.total;
    let mut s = Table::new(["", "layers", "weights", "macs"]);
    let fmt = |v: u64| format!("{} ({v})", human(v as f64));
    s.row([
        "CONV".into(),
        t.conv.layers.to_string(),
        fmt(t.conv.weights),
        fmt(t.conv.macs),
    ]);
    s.row([
        "FC".into(),
        t.fc.layers.to_string(),
        fmt(t.fc.weights),
        fmt(t.fc.macs),
    ]);
    if t.matmul.layers > 0 {
        // Products of two activations (attention): MACs without weights.
        s.row([
            "MatMul".into(),
            t.matmul.layers.to_string(),
            fmt(t.matmul.weights),
            fmt(t.matmul.macs),
        ]);
    }
    s.row([
        "total".into(),
        (t.conv.layers + t.fc.layers + t.matmul.layers).to_string(),
        fmt(t.weights),
        fmt(t.macs),
    ]);
    s.row([
        "element ops (not MACs)".into(),
        String::new(),
        String::new(),
        fmt(t.element_ops),
    ]);
    s
}
