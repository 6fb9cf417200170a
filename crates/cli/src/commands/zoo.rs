//! `joule zoo`: the built-in models with their weights and MACs.

use crate::args::{Format, FormatArgs};
use crate::output::{out, outln};
use anyhow::Result;
use joule_report::{human, Table};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    format: FormatArgs,
}

pub fn run(args: Args) -> Result<()> {
    let raw = args.format.format() != Format::Text;
    let count = |v: u64| if raw { v.to_string() } else { human(v as f64) };
    let mut table = Table::new(["name", "input", "weights", "macs", "description"]);
    let mut json = Vec::new();
    for entry in joule_lab::zoo()? {
        let s = &entry.stats;
        let [n, c, h, w] = s.input_shape;
        table.row([
            entry.name.to_string(),
            format!("{n}x{c}x{h}x{w}"),
            count(s.total.weights),
            count(s.total.macs),
            entry.description.to_string(),
        ]);
        json.push(serde_json::json!({
            "name": entry.name,
            "description": entry.description,
            "input_shape": s.input_shape,
            "weights": s.total.weights,
            "macs": s.total.macs,
        }));
    }
    match args.format.format() {
        Format::Json => outln!("{}", serde_json::to_string_pretty(&json)?),
        Format::Csv => out!("{}", table.to_csv()?),
        Format::Text => outln!("{}", table.to_text()),
    }
    Ok(())
}
