//! The datasets experiments read: a source (MNIST, Fashion-MNIST) in a data folder, its
//! training and test splits, and the seeded holdout carved from the training split.

use crate::error::LabError;
use joule_compress::RunDir;
use joule_nn::{data, DataSource, Dataset, Split};
use serde::{Deserialize, Serialize};
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

/// `split.json`: how the training split was divided (the holdout every selection reads, and
/// the training images fine-tuning uses), so that a resume cannot select on another split.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Holdout {
    pub holdout: usize,
    pub train_samples: usize,
    pub seed: u64,
}

/// Records the run's split, or on resume refuses a different one (naming the setting, with
/// both values, as NetAdapt's and mixed precision's planners do for the algorithm's
/// settings). Runs made before the split was recorded get it recorded now.
pub fn check_split(dir: &RunDir, given: &Holdout, resumed: bool) -> Result<(), LabError> {
    const SPLIT: &str = "split.json";
    if resumed && dir.join(SPLIT).is_file() {
        let stored: Holdout = dir.read_json(SPLIT)?;
        if let Some((field, stored, given)) =
            joule_compress::rundir::first_difference(&stored, given)
        {
            return Err(LabError::config(
                &field,
                format!(
                    "cannot resume the run in {}: it was started with {stored}, not {given}",
                    dir.path().display()
                ),
            ));
        }
        return Ok(());
    }
    Ok(dir.write_json(SPLIT, given)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resume_with_another_holdout_is_refused_and_the_same_one_accepted() {
        let path = std::env::temp_dir().join(format!("joule-split-{}", std::process::id()));
        std::fs::remove_dir_all(&path).ok();
        let split = Holdout {
            holdout: 2000,
            train_samples: 0,
            seed: 1,
        };
        let (dir, resumed) = RunDir::create_or_resume(&path, false).unwrap();
        check_split(&dir, &split, resumed).unwrap();
        dir.write(RunDir::STATE, "{}").unwrap();
        let (dir, resumed) = RunDir::create_or_resume(&path, true).unwrap();
        assert!(resumed);
        check_split(&dir, &split, true).unwrap();
        let other = Holdout {
            holdout: 500,
            ..split.clone()
        };
        let err = check_split(&dir, &other, true).unwrap_err().to_string();
        assert!(
            err.starts_with("holdout: cannot resume the run in")
                && err.ends_with("it was started with 2000, not 500")
                && !err.contains('\n'),
            "{err}"
        );
        let reseeded = Holdout { seed: 2, ..split };
        let err = check_split(&dir, &reseeded, true).unwrap_err().to_string();
        assert!(
            err.starts_with("seed: ") && err.ends_with("with 1, not 2"),
            "{err}"
        );
        std::fs::remove_dir_all(&path).ok();
    }

    /// A training split whose every image is its own index, so carved parts can be checked
    /// by hand.
    fn numbered(n: usize) -> Data {
        let train = Dataset {
            sample: joule_model::Shape::new(1, 1, 1, 1),
            images: (0..n).map(|i| i as f32).collect(),
            labels: (0..n).map(|i| (i % 10) as u8).collect(),
            classes: 10,
        };
        Data {
            source: DataSource::Mnist,
            test: train.clone(),
            train,
        }
    }

    fn indices(d: &Dataset) -> Vec<usize> {
        d.images.iter().map(|&v| v as usize).collect()
    }

    #[test]
    fn the_validation_split_is_disjoint_from_the_training_part_and_the_one_train_leaves_out() {
        let data = numbered(1000);
        let (rest, validation) = data.carve(300, 0, 1).unwrap();
        let (rest, validation) = (indices(&rest), indices(&validation));
        assert_eq!((rest.len(), validation.len()), (700, 300));
        // Disjoint and complete: every index exactly once.
        let mut all: Vec<usize> = rest.iter().chain(&validation).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..1000).collect::<Vec<_>>());
        assert!(validation.iter().all(|v| !rest.contains(v)));
        // Shuffled, not the first or last 300 images.
        assert!(validation.iter().any(|&i| i < 300) && validation.iter().any(|&i| i >= 700));
        // Exactly the images `joule train --holdout 300 --seed 1` leaves out (it trains on
        // `split_holdout(..).0`), so a model trained that way never saw them.
        let (trained_on, left_out) = data.train.split_holdout(300, 1);
        assert_eq!(indices(&left_out), validation);
        assert_eq!(indices(&trained_on), rest);
        // A sample limit takes from the rest only; the validation split does not move.
        let (few, same) = data.carve(300, 50, 1).unwrap();
        assert_eq!(indices(&few), rest[..50].to_vec());
        assert_eq!(indices(&same), validation);
        // Another seed, another split; bad sizes are refused, naming the setting.
        assert_ne!(indices(&data.carve(300, 0, 2).unwrap().1), validation);
        for bad in [0, 1000] {
            let err = data.carve(bad, 0, 1).unwrap_err().to_string();
            assert!(err.starts_with("holdout: "), "{err}");
        }
    }
}
