//! `joule export`: a model with its weights as ONNX.

use crate::output::outln;
use anyhow::Result;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// A checkpoint (.safetensors), an .onnx file, or a zoo name (zoo models carry no weights
    /// unless --init-seed is given).
    #[arg(long)]
    model: String,
    /// Where to write the ONNX model (opset 13).
    #[arg(long)]
    out: PathBuf,
    /// Initialise missing weights with this seed (for an untrained structure).
    #[arg(long)]
    init_seed: Option<u64>,
}

pub fn run(args: Args) -> Result<()> {
    let (nodes, params) = joule_lab::export(&args.model, &args.out, args.init_seed)?;
    outln!(
        "wrote {} ({nodes} nodes, {params} parameters)",
        args.out.display()
    );
    Ok(())
}
