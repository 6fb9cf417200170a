//! The dataset flags shared by every command that reads real data.

use anyhow::{Context, Result};
use joule_nn::{data, DataSource};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct DataArgs {
    /// mnist or fashion-mnist.
    #[arg(long)]
    pub data: String,
    /// Folder holding the datasets (default: $JOULE_DATA, else data/).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

impl DataArgs {
    pub fn source(&self) -> Result<DataSource> {
        parse_data(&self.data)
    }

    pub fn dir(&self) -> PathBuf {
        data::data_dir(self.data_dir.as_deref())
    }
}

pub fn parse_data(name: &str) -> Result<DataSource> {
    DataSource::parse(name).with_context(|| {
        format!("--data: unknown dataset {name:?} (expected mnist or fashion-mnist)")
    })
}
