//! The output formats shared by every reporting subcommand.

use clap::Args;

/// `--json` / `--csv` flags; the default is a text table.
#[derive(Args, Clone, Copy, Debug, Default)]
pub struct FormatArgs {
    /// Print machine-readable JSON (a documented, stable interface).
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,
    /// Print CSV (one row per layer).
    #[arg(long)]
    pub csv: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
    Csv,
}

impl FormatArgs {
    pub fn format(self) -> Format {
        if self.json {
            Format::Json
        } else if self.csv {
            Format::Csv
        } else {
            Format::Text
        }
    }
}
