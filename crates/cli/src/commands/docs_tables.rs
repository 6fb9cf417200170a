//! `joule docs-tables`: the tables of docs/*.md from the committed run summaries
//! (`joule_lab::doc_tables`).

use anyhow::{anyhow, bail, Result};
use joule_lab::doc_tables::{self, Kind};
use std::path::PathBuf;

#[derive(clap::Subcommand)]
pub enum Args {
    /// Print one table: prune, netadapt, baseline-curve, lut-validation or eliminate, from
    /// summary files or run directories.
    Render {
        kind: String,
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Write the chart of a kind as SVG: netadapt-seeds (test accuracy against predicted
    /// latency, NetAdapt's final networks and the uniform curves), prune (accuracy against
    /// energy of one or two pruning summaries, the other run first), prune-layers (one
    /// pruning summary's energy per layer, its layers.svg) or eliminate (one elimination
    /// summary's curves-<hw>.svg, its first machine).
    Chart {
        kind: String,
        /// The SVG file to write.
        out: PathBuf,
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Re-render every generated region of Markdown files (paths in the markers are relative
    /// to the current directory, the repository root).
    Update {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Change nothing; fail naming the first file whose regions are out of date.
        #[arg(long)]
        check: bool,
    },
}

pub fn run(args: Args) -> Result<()> {
    match args {
        Args::Render { kind, paths } => {
            // The kind is an argument, not a flag: its error is printed as it reads.
            let kind = Kind::parse(&kind).map_err(|e| anyhow!("{e}"))?;
            print!("{}", doc_tables::render(kind, &paths)?);
        }
        Args::Chart { kind, out, paths } => {
            let kind = Kind::parse(&kind).map_err(|e| anyhow!("{e}"))?;
            let svg = doc_tables::chart(kind, &paths)?;
            joule_lab::write_file(&out, svg)?;
            eprintln!("{}", out.display());
        }
        Args::Update { files, check } => {
            let root = PathBuf::from(".");
            for file in &files {
                let (text, updated) = doc_tables::update_file(file, &root)?;
                let regions = doc_tables::regions(&text)?.len();
                if updated == text {
                    eprintln!("{}: {regions} generated regions up to date", file.display());
                } else if check {
                    bail!(
                        "{}: generated regions out of date (scripts/docs-tables.sh rewrites them)",
                        file.display()
                    );
                } else {
                    joule_lab::write_file(file, &updated)?;
                    eprintln!("{}: {regions} generated regions rewritten", file.display());
                }
            }
        }
    }
    Ok(())
}
