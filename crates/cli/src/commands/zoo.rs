use crate::output::{Format, FormatArgs};
use anyhow::Result;
use joule_model::{zoo, NetworkStats};
use joule_report::{human, Table};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    format: FormatArgs,
}

pub fn run(args: Args) -> Result<()> {
    let mut table = Table::new(["name", "input", "weights", "macs", "description"]);
    let mut json = Vec::new();
    for entry in zoo::entries() {
        let graph = (entry.build)();
        let stats = NetworkStats::of(&graph, None)?;
        let [n, c, h, w] = stats.input_shape;
        let shape = format!("{n}x{c}x{h}x{w}");
        let raw = args.format.format() != Format::Text;
        let count = |v: u64| if raw { v.to_string() } else { human(v as f64) };
        table.row([
            entry.name.to_string(),
            shape.clone(),
            count(stats.total.weights),
            count(stats.total.macs),
            entry.description.to_string(),
        ]);
        json.push(serde_json::json!({
            "name": entry.name,
            "description": entry.description,
            "input_shape": stats.input_shape,
            "weights": stats.total.weights,
            "macs": stats.total.macs,
        }));
    }
    match args.format.format() {
        Format::Text => println!("{}", table.to_text()),
        Format::Csv => print!("{}", table.to_csv()?),
        Format::Json => println!("{}", serde_json::to_string_pretty(&json)?),
    }
    Ok(())
}
