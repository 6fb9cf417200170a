//! Conversion of ONNX `TensorProto`s (initializers, `Constant` values) into joule tensors.

use crate::proto::{data_type, ModelProto, TensorProto};
use crate::ImportError;
use joule_model::Tensor;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Component, Path};

/// Reads the values of initializers stored in external data files (ONNX's format for models
/// past protobuf's 2 GB: torch.onnx.export writes one file per tensor beside the model) into
/// `raw_data`. Locations are relative to `dir` and may not leave it.
pub(crate) fn load_external(model: &mut ModelProto, dir: &Path) -> Result<(), ImportError> {
    let Some(graph) = model.graph.as_mut() else {
        return Ok(());
    };
    for t in graph
        .initializer
        .iter_mut()
        .filter(|t| t.data_location == 1)
    {
        let err = |detail: String| ImportError::Tensor {
            name: t.name.clone(),
            detail,
        };
        let entry = |key: &str| {
            t.external_data
                .iter()
                .find(|e| e.key == key)
                .map(|e| e.value.as_str())
        };
        let location = Path::new(
            entry("location").ok_or_else(|| err("external data without a location".into()))?,
        );
        let inside = location
            .components()
            .all(|c| matches!(c, Component::Normal(_)));
        if !inside {
            return Err(err(format!(
                "external data location {location:?} leaves the model's folder"
            )));
        }
        let number = |key: &str| -> Result<Option<usize>, ImportError> {
            entry(key)
                .map(|v| {
                    v.parse::<usize>()
                        .map_err(|_| err(format!("external data {key} {v:?} is not a byte count")))
                })
                .transpose()
        };
        let (offset, length) = (number("offset")?.unwrap_or(0), number("length")?);
        let path = dir.join(location);
        let io = |e: std::io::Error| err(format!("{}: {e}", path.display()));
        // Seek and read the tensor's bytes alone: exporters may put every tensor in one file.
        let mut file = std::fs::File::open(&path).map_err(io)?;
        let size = file.metadata().map_err(io)?.len() as usize;
        let length = length.unwrap_or(size.saturating_sub(offset));
        if offset.saturating_add(length) > size {
            return Err(err(format!(
                "bytes {offset}..{} of {}, which holds {size}",
                offset.saturating_add(length),
                path.display()
            )));
        }
        let mut raw = vec![0u8; length];
        file.seek(SeekFrom::Start(offset as u64)).map_err(io)?;
        file.read_exact(&mut raw).map_err(io)?;
        t.raw_data = raw;
        t.data_location = 0;
    }
    Ok(())
}

/// A constant of the ONNX graph: float values for weights, integers kept exactly for shapes.
#[derive(Clone, Debug)]
pub(crate) struct Constant {
    pub dims: Vec<usize>,
    pub values: Vec<f32>,
    pub ints: Option<Vec<i64>>,
}

impl Constant {
    pub fn from_proto(t: &TensorProto) -> Result<Constant, ImportError> {
        let err = |detail: String| ImportError::Tensor {
            name: t.name.clone(),
            detail,
        };
        if t.data_location == 1 {
            return Err(err(
                "its values are in an external file, which only a model read from a file \
                 (import_file) can reach"
                    .into(),
            ));
        }
        let dims = t
            .dims
            .iter()
            .map(|&d| usize::try_from(d).map_err(|_| err(format!("negative dimension {d}"))))
            .collect::<Result<Vec<_>, _>>()?;
        // Checked before the product is used: dims of 2^32 x 2^32 would wrap it to 0.
        joule_model::limits::check_tensor("dims", &dims).map_err(err)?;
        let len: usize = dims.iter().product();
        let raw = &t.raw_data;
        let (values, ints): (Vec<f32>, Option<Vec<i64>>) = match t.data_type {
            data_type::FLOAT => {
                let v = if raw.is_empty() {
                    t.float_data.clone()
                } else {
                    le_chunks::<4>(raw, len).map(f32::from_le_bytes).collect()
                };
                (v, None)
            }
            data_type::DOUBLE => {
                let v: Vec<f64> = if raw.is_empty() {
                    t.double_data.clone()
                } else {
                    le_chunks::<8>(raw, len).map(f64::from_le_bytes).collect()
                };
                (v.iter().map(|&x| x as f32).collect(), None)
            }
            data_type::INT64 => {
                let v: Vec<i64> = if raw.is_empty() {
                    t.int64_data.clone()
                } else {
                    le_chunks::<8>(raw, len).map(i64::from_le_bytes).collect()
                };
                (v.iter().map(|&x| x as f32).collect(), Some(v))
            }
            data_type::BOOL => {
                let v: Vec<i64> = if raw.is_empty() {
                    t.int32_data.iter().map(|&x| x as i64).collect()
                } else {
                    raw.iter().take(len).map(|&b| b as i64).collect()
                };
                (v.iter().map(|&x| x as f32).collect(), Some(v))
            }
            data_type::INT32 => {
                let v: Vec<i64> = if raw.is_empty() {
                    t.int32_data.iter().map(|&x| x as i64).collect()
                } else {
                    le_chunks::<4>(raw, len)
                        .map(|b| i32::from_le_bytes(b) as i64)
                        .collect()
                };
                (v.iter().map(|&x| x as f32).collect(), Some(v))
            }
            other => return Err(err(format!("unsupported data type {other}"))),
        };
        if values.len() != len {
            return Err(err(format!(
                "dims {dims:?} need {len} values, the file holds {}",
                values.len()
            )));
        }
        Ok(Constant { dims, values, ints })
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// An integer tensor (shapes, indices, booleans).
    pub fn int(dims: Vec<usize>, ints: Vec<i64>) -> Constant {
        Constant {
            dims,
            values: ints.iter().map(|&v| v as f32).collect(),
            ints: Some(ints),
        }
    }

    pub fn float(dims: Vec<usize>, values: Vec<f32>) -> Constant {
        Constant {
            dims,
            values,
            ints: None,
        }
    }

    /// The values as integers (floats truncated toward zero).
    pub fn as_ints(&self) -> Vec<i64> {
        match &self.ints {
            Some(v) => v.clone(),
            None => self.values.iter().map(|&v| v as i64).collect(),
        }
    }

    pub fn to_tensor(&self) -> Tensor {
        Tensor {
            shape: self.dims.clone(),
            data: self.values.clone(),
        }
    }

    /// The same values under another shape (e.g. a `(1, M)` Gemm bias as `(M)`).
    pub fn reshaped(&self, shape: Vec<usize>) -> Tensor {
        Tensor {
            shape,
            data: self.values.clone(),
        }
    }
}

/// Little-endian fixed-width chunks; a short buffer yields fewer items, which the caller's
/// length check reports.
fn le_chunks<const W: usize>(raw: &[u8], len: usize) -> impl Iterator<Item = [u8; W]> + '_ {
    raw.chunks_exact(W)
        .take(len.max(raw.len() / W))
        .map(|c| c.try_into().expect("chunks_exact yields W bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_and_typed_storage_agree() {
        let typed = TensorProto {
            dims: vec![2],
            data_type: data_type::FLOAT,
            float_data: vec![1.5, -2.0],
            ..Default::default()
        };
        let mut raw = typed.clone();
        raw.float_data.clear();
        raw.raw_data = [1.5f32.to_le_bytes(), (-2.0f32).to_le_bytes()].concat();
        assert_eq!(
            Constant::from_proto(&typed).unwrap().values,
            vec![1.5, -2.0]
        );
        assert_eq!(Constant::from_proto(&raw).unwrap().values, vec![1.5, -2.0]);
        raw.raw_data.truncate(5);
        assert!(Constant::from_proto(&raw).is_err());
    }

    #[test]
    fn int64_shapes_are_exact() {
        let t = TensorProto {
            dims: vec![2],
            data_type: data_type::INT64,
            int64_data: vec![1, -1],
            ..Default::default()
        };
        assert_eq!(Constant::from_proto(&t).unwrap().ints, Some(vec![1, -1]));
    }
}
