use crate::load;
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
    let mut graph = load::model(&args.model)?;
    if let Some(seed) = args.init_seed {
        graph = joule_nn::Network::new(graph, seed)?.into_graph();
    }
    joule_onnx::export_file(&graph, &args.out)?;
    let params: usize = graph
        .nodes()
        .iter()
        .flat_map(|n| &n.params)
        .map(|t| t.len())
        .sum();
    println!(
        "wrote {} ({} nodes, {params} parameters)",
        args.out.display(),
        graph.len()
    );
    Ok(())
}
