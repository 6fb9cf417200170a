//! The datasets experiments read: a source (MNIST, Fashion-MNIST) in a data folder, its
//! training and test splits, and the seeded holdout carved from the training split.

use crate::error::LabError;
use joule_nn::{data, DataSource, Dataset, Split};
use std::path::{Path, PathBuf};

/// Which dataset, and where (`None`: `$JOULE_DATA`, else `data/`).
#[derive(Clone, Debug, PartialEq)]
pub struct DataSpec {
    pub name: String,
    pub dir: Option<PathBuf>,
}

impl DataSpec {
    pub fn new(name: &str, dir: Option<&Path>) -> DataSpec {
        DataSpec {
            name: name.to_string(),
            dir: dir.map(Path::to_path_buf),
        }
    }

    pub fn source(&self) -> Result<DataSource, LabError> {
        DataSource::parse(&self.name).ok_or_else(|| {
            LabError::config(
                "data",
                format!(
                    "unknown dataset {:?} (expected mnist or fashion-mnist)",
                    self.name
                ),
            )
        })
    }

    pub fn dir(&self) -> PathBuf {
        data::data_dir(self.dir.as_deref())
    }

    /// Both splits.
    pub fn load(&self) -> Result<Data, LabError> {
        let source = self.source()?;
        let dir = self.dir();
        Ok(Data {
            source,
            train: source.load(&dir, Split::Train)?,
            test: source.load(&dir, Split::Test)?,
        })
    }

    /// Only the test split.
    pub fn load_test(&self) -> Result<Dataset, LabError> {
        Ok(self.source()?.load(&self.dir(), Split::Test)?)
    }
}

/// A dataset's splits.
#[derive(Clone, Debug)]
pub struct Data {
    pub source: DataSource,
    pub train: Dataset,
    pub test: Dataset,
}

impl Data {
    /// Carves a seeded holdout of `holdout` images from the training split (the same split
    /// `joule train --holdout` leaves out); `train_samples > 0` keeps only that many of the
    /// rest. Returns (training part, holdout).
    pub fn carve(
        &self,
        holdout: usize,
        train_samples: usize,
        seed: u64,
    ) -> Result<(Dataset, Dataset), LabError> {
        if holdout == 0 || holdout >= self.train.len() {
            return Err(LabError::config(
                "holdout",
                format!(
                    "{holdout} must be between 1 and the training split's {} images",
                    self.train.len()
                ),
            ));
        }
        let (rest, holdout) = self.train.split_holdout(holdout, seed);
        let rest = if train_samples > 0 {
            rest.take(train_samples)
        } else {
            rest
        };
        Ok((rest, holdout))
    }
}
