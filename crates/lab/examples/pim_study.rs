//! The PIM study of docs/pim.md (`joule_lab::pim_study`): prints its tables as Markdown and
//! writes `pim-utilization.svg` into the folder given (default `docs`).
//! Run by `scripts/experiment-pim.sh`:
//! `cargo run --release -p joule-lab --example pim_study -- docs`
//!
//! An example rather than a `joule` subcommand: the study has no inputs (fixed presets,
//! models and layer), it regenerates one docs page, and the library function is what a
//! front end (the HTML report, the Python package) would call.

use joule_lab::{pim_study, write_file, LabError};
use std::path::PathBuf;
use std::process::ExitCode;

fn run(out: PathBuf) -> Result<(), LabError> {
    let study = pim_study::study()?;
    print!("{}", pim_study::markdown(&study));
    std::fs::create_dir_all(&out).map_err(|source| LabError::Io {
        path: out.clone(),
        source,
    })?;
    let chart = out.join("pim-utilization.svg");
    write_file(&chart, pim_study::utilization_svg(&study)?)?;
    eprintln!("chart: {}", chart.display());
    Ok(())
}

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let out = args
        .next()
        .map_or_else(|| PathBuf::from("docs"), PathBuf::from);
    if let Some(extra) = args.next() {
        eprintln!("pim_study: unexpected argument {extra:?} (usage: pim_study [OUT_DIR])");
        return ExitCode::from(2);
    }
    match run(out) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("pim_study: error: {err}");
            ExitCode::from(2)
        }
    }
}
