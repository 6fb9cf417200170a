//! `joule eval`: test accuracy and confusion matrix of a trained model.

use super::train::{init_threads, load_network, parse_data};
use crate::output::{Format, FormatArgs};
use anyhow::Result;
use joule_nn::{data, evaluate, Split};
use joule_report::Table;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// A .safetensors checkpoint (from `joule train`) or an .onnx file with weights.
    #[arg(long)]
    model: String,
    /// mnist or fashion-mnist.
    #[arg(long)]
    data: String,
    /// Folder holding the datasets (default: $JOULE_DATA, else data/).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    #[arg(long, default_value_t = 256)]
    batch_size: usize,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    #[command(flatten)]
    format: FormatArgs,
}

pub fn run(args: Args) -> Result<()> {
    let source = parse_data(&args.data)?;
    init_threads(args.threads)?;
    let test_set = source.load(&data::data_dir(args.data_dir.as_deref()), Split::Test)?;
    let network = load_network(&args.model, 0)?;
    let eval = evaluate(&network, &test_set, args.batch_size)?;
    let classes = eval.confusion.len();
    let mut table = Table::new(
        std::iter::once("true \\ predicted".to_string()).chain((0..classes).map(|c| c.to_string())),
    );
    for (label, row) in eval.confusion.iter().enumerate() {
        table.row(std::iter::once(label.to_string()).chain(row.iter().map(u64::to_string)));
    }
    match args.format.format() {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "model": args.model,
                "data": source.name(),
                "accuracy": eval.accuracy,
                "samples": eval.samples,
                "correct": eval.correct,
                "confusion": eval.confusion,
            }))?
        ),
        Format::Csv => print!("{}", table.to_csv()?),
        Format::Text => {
            println!(
                "{} on {} (test): accuracy {:.2}% ({} of {})",
                args.model,
                source.name(),
                100.0 * eval.accuracy,
                eval.correct,
                eval.samples
            );
            println!("{}", table.to_text());
        }
    }
    Ok(())
}
