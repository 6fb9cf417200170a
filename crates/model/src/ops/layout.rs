//! Layout ops: move or select elements of an N-d tensor without arithmetic (Reshape,
//! Transpose, Slice, Gather, Squeeze, Unsqueeze, Pad, Expand). They cost no MACs and no
//! element operations.

use crate::dims::{normalize_axis, Dims};
use serde::{Deserialize, Serialize};

/// One target dimension of a [`Reshape`] or [`Expand`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Extent {
    Fixed(usize),
    /// `k` times the graph input's batch size (`N`, or `N * heads` inside attention): what
    /// a shape computed from the input's dynamic batch axis resolves to.
    Batch(usize),
    /// The input's size on the same axis (ONNX `0`).
    Copy,
    /// Whatever makes the element count match (ONNX `-1`); at most one per target.
    Infer,
}

fn resolve(
    target: &[Extent],
    input: &Dims,
    batch: usize,
    infer_allowed: bool,
) -> Result<Vec<Option<usize>>, String> {
    target
        .iter()
        .enumerate()
        .map(|(i, e)| match *e {
            Extent::Fixed(k) => Ok(Some(k)),
            Extent::Batch(k) => Ok(Some(k * batch)),
            Extent::Copy => input
                .get(i)
                .copied()
                .map(Some)
                .ok_or_else(|| format!("target axis {i} copies an axis the input lacks")),
            Extent::Infer if infer_allowed => Ok(None),
            Extent::Infer => Ok(Some(1)),
        })
        .collect()
}

/// A general reshape: same elements, another shape.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reshape {
    pub target: Vec<Extent>,
}

impl Reshape {
    pub(crate) fn output_dims(&self, x: &Dims, batch: usize) -> Result<Dims, String> {
        let sizes = resolve(&self.target, x, batch, true)?;
        let known = sizes
            .iter()
            .flatten()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64))
            .ok_or_else(|| format!("target {:?} is too large", self.target))?;
        let free = sizes.iter().filter(|d| d.is_none()).count();
        let total = x.elements();
        let out: Vec<usize> = match free {
            0 => sizes.into_iter().flatten().collect(),
            1 if known > 0 && total.is_multiple_of(known) => sizes
                .into_iter()
                .map(|d| d.unwrap_or((total / known) as usize))
                .collect(),
            1 => return Err(format!("cannot reshape {x} ({total} values) to {known}k")),
            _ => return Err("more than one target dimension is inferred (-1)".into()),
        };
        let out = Dims(out);
        if out.elements() != total {
            return Err(format!(
                "cannot reshape {x} to {out}: element counts differ"
            ));
        }
        Ok(out)
    }
}

/// Broadcast to a target shape (ONNX `Expand`): numpy broadcasting of the input and target.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Expand {
    pub target: Vec<Extent>,
}

impl Expand {
    pub(crate) fn output_dims(&self, x: &Dims, batch: usize) -> Result<Dims, String> {
        let sizes: Vec<usize> = resolve(&self.target, x, batch, false)?
            .into_iter()
            .flatten()
            .collect();
        crate::dims::broadcast(x, &sizes)
    }
}

/// Axis permutation: output axis `i` is input axis `perm[i]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Transpose {
    pub perm: Vec<usize>,
}

impl Transpose {
    pub(crate) fn output_dims(&self, x: &Dims) -> Result<Dims, String> {
        let mut seen = vec![false; x.rank()];
        if self.perm.len() != x.rank() {
            return Err(format!(
                "permutation {:?} for a rank-{} input",
                self.perm,
                x.rank()
            ));
        }
        for &p in &self.perm {
            if p >= x.rank() || std::mem::replace(&mut seen[p], true) {
                return Err(format!("{:?} is not a permutation", self.perm));
            }
        }
        Ok(Dims(self.perm.iter().map(|&p| x[p]).collect()))
    }
}

/// One axis of a [`Slice`], in ONNX's terms: `start..end` by `step`, negative positions
/// counted from the end and clamped to the axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SliceAxis {
    pub axis: i64,
    pub start: i64,
    pub end: i64,
    pub step: i64,
}

impl SliceAxis {
    /// The first index taken and the number of indices, on an axis of `size`.
    pub fn range(&self, size: usize) -> Result<(usize, usize), String> {
        let size = size as i64;
        if self.step == 0 {
            return Err("slice step must not be 0".into());
        }
        let fix = |p: i64, lo: i64, hi: i64| {
            let p = if p < 0 { p + size } else { p };
            p.clamp(lo, hi)
        };
        let (start, count) = if self.step > 0 {
            let start = fix(self.start, 0, size);
            let end = fix(self.end, 0, size);
            (start, ceil_div((end - start).max(0), self.step))
        } else {
            let start = fix(self.start, -1, size - 1);
            let end = fix(self.end, -1, size - 1);
            (start, ceil_div((start - end).max(0), -self.step))
        };
        Ok((start.max(0) as usize, count as usize))
    }
}

/// `a / b` rounded up, for `a >= 0` and `b > 0`.
fn ceil_div(a: i64, b: i64) -> i64 {
    (a + b - 1) / b
}

/// Selects a strided range on one or more axes (ONNX `Slice`; each output of `Split`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Slice {
    pub axes: Vec<SliceAxis>,
}

impl Slice {
    pub(crate) fn output_dims(&self, x: &Dims) -> Result<Dims, String> {
        let mut out = x.clone();
        for a in &self.axes {
            let axis = x.axis(a.axis)?;
            out.0[axis] = a.range(x[axis])?.1;
        }
        Ok(out)
    }
}

/// Picks entries along one axis (ONNX `Gather` with constant indices); a scalar index
/// removes the axis.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Gather {
    pub axis: i64,
    pub indices: Vec<i64>,
    /// The index is a scalar: the axis disappears.
    pub scalar: bool,
}

impl Gather {
    pub(crate) fn output_dims(&self, x: &Dims) -> Result<Dims, String> {
        let axis = x.axis(self.axis)?;
        let size = x[axis] as i64;
        if let Some(bad) = self.indices.iter().find(|&&i| i < -size || i >= size) {
            return Err(format!("index {bad} is out of range for an axis of {size}"));
        }
        if self.scalar && self.indices.len() != 1 {
            return Err("a scalar gather takes one index".into());
        }
        let mut out = x.0.clone();
        if self.scalar {
            out.remove(axis);
        } else {
            out[axis] = self.indices.len();
        }
        Ok(Dims(out))
    }
}

/// Removes axes of size 1 (all of them when `axes` is empty).
pub(crate) fn squeeze(x: &Dims, axes: &[i64]) -> Result<Dims, String> {
    if axes.is_empty() {
        return Ok(Dims(x.iter().copied().filter(|&d| d != 1).collect()));
    }
    let axes: Vec<usize> = axes.iter().map(|&a| x.axis(a)).collect::<Result<_, _>>()?;
    if let Some(&a) = axes.iter().find(|&&a| x[a] != 1) {
        return Err(format!("cannot squeeze axis {a} of size {}", x[a]));
    }
    Ok(Dims(
        x.iter()
            .enumerate()
            .filter(|(i, _)| !axes.contains(i))
            .map(|(_, &d)| d)
            .collect(),
    ))
}

/// Inserts axes of size 1 at the given positions of the output.
pub(crate) fn unsqueeze(x: &Dims, axes: &[i64]) -> Result<Dims, String> {
    let rank = x.rank() + axes.len();
    let mut axes: Vec<usize> = axes
        .iter()
        .map(|&a| normalize_axis(a, rank))
        .collect::<Result<_, _>>()?;
    axes.sort_unstable();
    if axes.windows(2).any(|w| w[0] == w[1]) {
        return Err("repeated unsqueeze axis".into());
    }
    let mut source = x.iter();
    Ok(Dims(
        (0..rank)
            .map(|i| {
                if axes.contains(&i) {
                    1
                } else {
                    *source.next().expect("rank counts the input axes")
                }
            })
            .collect(),
    ))
}

/// Constant padding: `begin[i]` values before and `end[i]` after axis `i`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Pad {
    pub begin: Vec<usize>,
    pub end: Vec<usize>,
    pub value: f32,
}

impl Pad {
    pub(crate) fn output_dims(&self, x: &Dims) -> Result<Dims, String> {
        if self.begin.len() != x.rank() || self.end.len() != x.rank() {
            return Err(format!(
                "{} pads for a rank-{} input",
                self.begin.len() + self.end.len(),
                x.rank()
            ));
        }
        Ok(Dims(
            (0..x.rank())
                .map(|i| x[i] + self.begin[i] + self.end[i])
                .collect(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reshape_resolves_copy_infer_and_batch() {
        let x = Dims::new([2, 768, 14, 14]);
        let r = Reshape {
            target: vec![Extent::Copy, Extent::Fixed(768), Extent::Infer],
        };
        assert_eq!(r.output_dims(&x, 2).unwrap(), Dims::new([2, 768, 196]));
        // Inside attention: (197, N * 12, 64) from (197, N, 768).
        let r = Reshape {
            target: vec![Extent::Fixed(197), Extent::Batch(12), Extent::Fixed(64)],
        };
        let q = Dims::new([197, 3, 768]);
        assert_eq!(r.output_dims(&q, 3).unwrap(), Dims::new([197, 36, 64]));
        assert!(r.output_dims(&q, 2).is_err());
        let two_free = Reshape {
            target: vec![Extent::Infer, Extent::Infer],
        };
        assert!(two_free.output_dims(&x, 2).is_err());
    }

    #[test]
    fn transpose_slice_gather() {
        let x = Dims::new([2, 3, 4]);
        let t = Transpose {
            perm: vec![0, 2, 1],
        };
        assert_eq!(t.output_dims(&x).unwrap(), Dims::new([2, 4, 3]));
        assert!(Transpose {
            perm: vec![0, 0, 1]
        }
        .output_dims(&x)
        .is_err());
        let s = Slice {
            axes: vec![SliceAxis {
                axis: -1,
                start: 1,
                end: i64::MAX,
                step: 2,
            }],
        };
        assert_eq!(s.output_dims(&x).unwrap(), Dims::new([2, 3, 2]));
        let back = SliceAxis {
            axis: 0,
            start: -1,
            end: i64::MIN,
            step: -1,
        };
        assert_eq!(back.range(5).unwrap(), (4, 5));
        let g = Gather {
            axis: 1,
            indices: vec![0],
            scalar: true,
        };
        assert_eq!(g.output_dims(&x).unwrap(), Dims::new([2, 4]));
    }

    #[test]
    fn squeeze_unsqueeze_pad_expand() {
        let x = Dims::new([2, 1, 4]);
        assert_eq!(squeeze(&x, &[1]).unwrap(), Dims::new([2, 4]));
        assert!(squeeze(&x, &[0]).is_err());
        assert_eq!(unsqueeze(&x, &[0, -1]).unwrap(), Dims::new([1, 2, 1, 4, 1]));
        let p = Pad {
            begin: vec![0, 0, 1],
            end: vec![0, 2, 1],
            value: 0.0,
        };
        assert_eq!(p.output_dims(&x).unwrap(), Dims::new([2, 3, 6]));
        let e = Expand {
            target: vec![Extent::Batch(1), Extent::Fixed(1), Extent::Fixed(4)],
        };
        assert_eq!(
            e.output_dims(&Dims::new([1, 1, 4]), 5).unwrap(),
            Dims::new([5, 1, 4])
        );
    }
}
