//! Conversion of ONNX `TensorProto`s (initializers, `Constant` values) into joule tensors.

use crate::proto::{data_type, TensorProto};
use crate::ImportError;
use joule_model::Tensor;

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
                "external data files are not supported; re-save the model with weights inside"
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
