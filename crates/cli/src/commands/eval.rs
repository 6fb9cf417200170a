//! `joule eval`: test accuracy and confusion matrix of a trained model.

use super::train::{init_threads, load_network};
use crate::data_args::DataArgs;
use crate::output::{Format, FormatArgs};
use anyhow::Result;
use joule_nn::{evaluate, Split};
use joule_report::Table;

#[derive(clap::Args)]
pub struct Args {
    /// A .safetensors checkpoint (from `joule train`) or an .onnx file with weights.
    #[arg(long)]
    model: String,
    #[command(flatten)]
    dataset: DataArgs,
    #[arg(long, default_value_t = 256)]
    batch_size: usize,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    #[command(flatten)]
    format: FormatArgs,
}

pub fn run(args: Args) -> Result<()> {
    let source = args.dataset.source()?;
    init_threads(args.threads)?;
    let test_set = source.load(&args.dataset.dir(), Split::Test)?;
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
