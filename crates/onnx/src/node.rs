//! Reading one ONNX node: typed attribute access with defaults and constant inputs, with
//! errors that name the node, its op type and the attribute or input at fault.

use crate::proto::{attribute_type, AttributeProto, NodeProto};
use crate::tensor::Constant;
use crate::ImportError;
use joule_model::ops::Extent;
use joule_model::Dims;
use std::collections::HashMap;

pub(crate) struct NodeCtx<'a> {
    pub proto: &'a NodeProto,
    /// The node's name, or its first output's name when the file leaves it empty.
    pub name: String,
    pub consts: &'a HashMap<String, Constant>,
    /// Constants that depend on the batch size (computed from a dynamic batch axis): one
    /// value per batch size in `batches`.
    pub varying: &'a HashMap<String, Vec<Constant>>,
    /// The batch sizes the importer evaluates shapes at (empty when the input's shape is not
    /// known at import).
    pub batches: &'a [usize],
    /// The dimensions of each activation input at the first batch size, where known.
    pub dims: Vec<Option<Dims>>,
    pub opset: i64,
}

impl NodeCtx<'_> {
    fn attr(&self, name: &str) -> Option<&AttributeProto> {
        self.proto.attribute.iter().find(|a| a.name == name)
    }

    pub fn attr_error(&self, attribute: &str, detail: impl Into<String>) -> ImportError {
        ImportError::Attribute {
            node: self.name.clone(),
            op_type: self.proto.op_type.clone(),
            attribute: attribute.into(),
            detail: detail.into(),
        }
    }

    pub fn input_error(&self, index: usize, detail: impl Into<String>) -> ImportError {
        ImportError::NodeInput {
            node: self.name.clone(),
            op_type: self.proto.op_type.clone(),
            input: self.proto.input.get(index).cloned().unwrap_or_default(),
            detail: detail.into(),
        }
    }

    fn typed(&self, name: &str, expected: i32) -> Result<Option<&AttributeProto>, ImportError> {
        match self.attr(name) {
            None => Ok(None),
            // Type 0 appears in hand-made files; trust the field that is set.
            Some(a) if a.r#type == expected || a.r#type == 0 => Ok(Some(a)),
            Some(a) => Err(self.attr_error(name, format!("has attribute type {}", a.r#type))),
        }
    }

    pub fn int(&self, name: &str, default: i64) -> Result<i64, ImportError> {
        Ok(self
            .typed(name, attribute_type::INT)?
            .map_or(default, |a| a.i))
    }

    pub fn float(&self, name: &str, default: f32) -> Result<f32, ImportError> {
        Ok(self
            .typed(name, attribute_type::FLOAT)?
            .map_or(default, |a| a.f))
    }

    pub fn string(&self, name: &str, default: &str) -> Result<String, ImportError> {
        Ok(self
            .typed(name, attribute_type::STRING)?
            .map_or(default.to_string(), |a| {
                String::from_utf8_lossy(&a.s).into_owned()
            }))
    }

    pub fn ints(&self, name: &str) -> Result<Option<Vec<i64>>, ImportError> {
        Ok(self
            .typed(name, attribute_type::INTS)?
            .map(|a| a.ints.clone()))
    }

    pub fn floats(&self, name: &str) -> Result<Option<Vec<f32>>, ImportError> {
        Ok(self
            .typed(name, attribute_type::FLOATS)?
            .map(|a| a.floats.clone()))
    }

    pub fn tensor(&self, name: &str) -> Result<Option<Constant>, ImportError> {
        match self.typed(name, attribute_type::TENSOR)? {
            Some(a) => match &a.t {
                Some(t) => Ok(Some(Constant::from_proto(t)?)),
                None => Err(self.attr_error(name, "holds no tensor")),
            },
            None => Ok(None),
        }
    }

    /// A list of `count` positive sizes (kernel, strides, dilations), or `default`.
    pub fn sizes(
        &self,
        name: &str,
        count: usize,
        default: usize,
    ) -> Result<Vec<usize>, ImportError> {
        match self.ints(name)? {
            None => Ok(vec![default; count]),
            Some(v) if v.len() == count && v.iter().all(|&x| x > 0) => {
                Ok(v.iter().map(|&x| x as usize).collect())
            }
            Some(v) => {
                Err(self.attr_error(name, format!("expected {count} positive values, got {v:?}")))
            }
        }
    }

    /// Whether input `index` is present (optional inputs may be absent or empty strings).
    pub fn has_input(&self, index: usize) -> bool {
        self.proto.input.get(index).is_some_and(|s| !s.is_empty())
    }

    /// Whether input `index` is known at import (batch-dependent constants included).
    pub fn is_constant(&self, index: usize) -> bool {
        self.has_input(index)
            && (self.consts.contains_key(&self.proto.input[index])
                || self.varying.contains_key(&self.proto.input[index]))
    }

    /// The dimensions of activation input `index`, where the importer knows them.
    pub fn input_dims(&self, index: usize) -> Option<&Dims> {
        self.dims.get(index).and_then(Option::as_ref)
    }

    /// A shape input (Reshape's, Expand's) as IR extents: `0` copies (when `copy_zero`),
    /// `-1` is inferred, and a size that scales with the batch becomes [`Extent::Batch`].
    pub fn extents(
        &self,
        index: usize,
        what: &str,
        copy_zero: bool,
    ) -> Result<Vec<Extent>, ImportError> {
        let of = |v: i64| -> Result<Extent, ImportError> {
            Ok(match v {
                0 if copy_zero => Extent::Copy,
                -1 => Extent::Infer,
                v if v >= 0 => Extent::Fixed(v as usize),
                v => return Err(self.input_error(index, format!("invalid {what} size {v}"))),
            })
        };
        if let Some(per_batch) = self
            .has_input(index)
            .then(|| self.varying.get(&self.proto.input[index]))
            .flatten()
        {
            let worlds: Vec<Vec<i64>> = per_batch.iter().map(Constant::as_ints).collect();
            let len = worlds[0].len();
            if worlds.iter().any(|w| w.len() != len) {
                return Err(self.input_error(index, format!("{what} changes rank with the batch")));
            }
            return (0..len)
                .map(|i| {
                    let first = worlds[0][i];
                    if worlds.iter().all(|w| w[i] == first) {
                        return of(first);
                    }
                    let k = first / self.batches[0] as i64;
                    let scales = k > 0
                        && worlds
                            .iter()
                            .zip(self.batches)
                            .all(|(w, &b)| w[i] == k * b as i64);
                    if scales {
                        Ok(Extent::Batch(k as usize))
                    } else {
                        Err(self.input_error(
                            index,
                            format!("{what} size {i} depends on the batch size in a way joule cannot represent"),
                        ))
                    }
                })
                .collect();
        }
        let c = self.constant(index, what)?;
        let ints = c
            .ints
            .as_ref()
            .ok_or_else(|| self.input_error(index, format!("{what} must be integers")))?;
        ints.iter().map(|&v| of(v)).collect()
    }

    /// Input `index`, which must be an initializer or a `Constant` output.
    pub fn constant(&self, index: usize, what: &str) -> Result<&Constant, ImportError> {
        if !self.has_input(index) {
            return Err(self.input_error(index, format!("missing {what}")));
        }
        let name = &self.proto.input[index];
        self.consts.get(name).ok_or_else(|| {
            if self.varying.contains_key(name) {
                self.input_error(index, format!("{what} depends on the batch size"))
            } else {
                self.input_error(index, format!("{what} must be a constant (initializer)"))
            }
        })
    }

    pub fn optional_constant(
        &self,
        index: usize,
        what: &str,
    ) -> Result<Option<&Constant>, ImportError> {
        if self.has_input(index) {
            self.constant(index, what).map(Some)
        } else {
            Ok(None)
        }
    }
}
