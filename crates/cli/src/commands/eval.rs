//! `joule eval`: test accuracy and confusion matrix of a trained model.

use crate::args::{DataArgs, Format, FormatArgs};
use crate::output::{out, outln};
use anyhow::Result;
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
    joule_lab::init_threads(args.threads)?;
    let data = args.dataset.spec();
    let eval = joule_lab::train::evaluate_model(&args.model, &data, args.batch_size)?;
    let data_name = data.source()?.name();
    let classes = eval.confusion.len();
    let mut table = Table::new(
        std::iter::once("true \\ predicted".to_string()).chain((0..classes).map(|c| c.to_string())),
    );
    for (label, row) in eval.confusion.iter().enumerate() {
        table.row(std::iter::once(label.to_string()).chain(row.iter().map(u64::to_string)));
    }
    match args.format.format() {
        Format::Json => outln!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "model": args.model,
                "data": data_name,
                "accuracy": eval.accuracy,
                "samples": eval.samples,
                "correct": eval.correct,
                "confusion": eval.confusion,
            }))?
        ),
        Format::Csv => out!("{}", table.to_csv()?),
        Format::Text => {
            outln!(
                "{} on {} (test): accuracy {:.2}% ({} of {})",
                args.model,
                data_name,
                100.0 * eval.accuracy,
                eval.correct,
                eval.samples
            );
            outln!("{}", table.to_text());
        }
    }
    Ok(())
}
