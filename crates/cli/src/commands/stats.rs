//! `joule stats`: per-layer and total weights, MACs and activations of a model.

use crate::args::{Format, FormatArgs};
use crate::output::{out, outln};
use anyhow::Result;
use joule_lab::{tables, Model, Shape};

#[derive(clap::Args)]
pub struct Args {
    /// A zoo name (see `joule zoo`), an .onnx file or a .safetensors checkpoint.
    model: String,
    /// Input shape N,C,H,W; required when the model does not fix it.
    #[arg(long, value_parser = Shape::parse)]
    input_shape: Option<Shape>,
    /// Print every layer, not only CONV, FC and MatMul.
    #[arg(long)]
    all: bool,
    #[command(flatten)]
    format: FormatArgs,
}

pub fn run(args: Args) -> Result<()> {
    let model = Model::load(&args.model)?;
    if let Some(note) = joule_lab::batch_note(&model, args.input_shape) {
        eprintln!("joule: {note}");
    }
    let stats = joule_lab::stats_of(&model, args.input_shape)?;
    match args.format.format() {
        Format::Json => outln!("{}", serde_json::to_string_pretty(&stats)?),
        Format::Csv => out!("{}", tables::stats_layers(&stats, true, true).to_csv()?),
        Format::Text => {
            let [n, c, h, w] = stats.input_shape;
            outln!("{} (input {n}x{c}x{h}x{w})", stats.model);
            outln!(
                "{}",
                tables::stats_layers(&stats, args.all, false).to_text()
            );
            outln!("{}", tables::stats_totals(&stats).to_text());
        }
    }
    Ok(())
}
