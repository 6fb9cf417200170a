//! N-dimensional tensor shapes, for the ops that are not tied to the NCHW layout (reshapes,
//! transposes, attention's matrix products, token-wise layers).

use crate::Shape;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::ops::Deref;

/// The dimensions of a tensor of any rank, outermost first (`[N, 197, 768]` for ViT's tokens).
///
/// Every node's output has `Dims`; [`Dims::nchw`] gives the four-dimensional [`Shape`] view
/// that the CONV/FC path, the energy engine and the training engine read.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Dims(pub Vec<usize>);

impl Dims {
    pub fn new(dims: impl Into<Vec<usize>>) -> Dims {
        Dims(dims.into())
    }

    pub fn rank(&self) -> usize {
        self.0.len()
    }

    /// Number of elements (1 for a scalar).
    pub fn elements(&self) -> u64 {
        self.0.iter().map(|&d| d as u64).product()
    }

    /// The NCHW view: rank 4 as it is, rank 2 `[N, F]` as `N x F x 1 x 1` (the layout of a
    /// flattened feature vector), rank 3 `[N, A, B]` as `N x A x B x 1`, higher ranks with the
    /// trailing axes folded into `W`, rank 1 `[A]` as `1 x A x 1 x 1`, a scalar as `1x1x1x1`.
    /// The element count is always kept.
    pub fn nchw(&self) -> Shape {
        let d = &self.0;
        match d.len() {
            0 => Shape::new(1, 1, 1, 1),
            1 => Shape::new(1, d[0], 1, 1),
            2 => Shape::new(d[0], d[1], 1, 1),
            3 => Shape::new(d[0], d[1], d[2], 1),
            _ => Shape::new(d[0], d[1], d[2], d[3..].iter().product()),
        }
    }

    /// `axis` counted from the end when negative, checked against the rank.
    pub fn axis(&self, axis: i64) -> Result<usize, String> {
        normalize_axis(axis, self.rank())
    }
}

impl Deref for Dims {
    type Target = [usize];
    fn deref(&self) -> &[usize] {
        &self.0
    }
}

impl From<Shape> for Dims {
    fn from(s: Shape) -> Dims {
        Dims(vec![s.n, s.c, s.h, s.w])
    }
}

impl fmt::Display for Dims {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(usize::to_string).collect();
        write!(f, "[{}]", parts.join("x"))
    }
}

/// An axis in `-rank..rank` as an index in `0..rank`.
pub fn normalize_axis(axis: i64, rank: usize) -> Result<usize, String> {
    let r = rank as i64;
    if axis < -r || axis >= r {
        return Err(format!("axis {axis} is out of range for rank {rank}"));
    }
    Ok(if axis < 0 { axis + r } else { axis } as usize)
}

/// Numpy (multidirectional) broadcasting of two shapes.
pub fn broadcast(a: &[usize], b: &[usize]) -> Result<Dims, String> {
    let rank = a.len().max(b.len());
    let at = |d: &[usize], i: usize| {
        let offset = rank - d.len();
        if i < offset {
            1
        } else {
            d[i - offset]
        }
    };
    let mut out = Vec::with_capacity(rank);
    for i in 0..rank {
        let (x, y) = (at(a, i), at(b, i));
        out.push(match (x, y) {
            _ if x == y => x,
            (1, _) => y,
            (_, 1) => x,
            _ => {
                return Err(format!(
                    "shapes {} and {} do not broadcast",
                    Dims::new(a),
                    Dims::new(b)
                ))
            }
        });
    }
    Ok(Dims(out))
}

/// For every element of a tensor of shape `out` (row-major), the flat index of the element
/// of a tensor of shape `src` that numpy broadcasting reads there.
pub fn broadcast_indices(src: &[usize], out: &[usize]) -> Vec<usize> {
    let rank = out.len();
    let offset = rank - src.len();
    let mut strides = vec![0usize; rank];
    let mut stride = 1;
    for i in (0..src.len()).rev() {
        strides[offset + i] = if src[i] == 1 { 0 } else { stride };
        stride *= src[i];
    }
    strided_indices(out, &strides)
}

/// For every element of a tensor of shape `out` (row-major), `sum(index[i] * strides[i])`:
/// the gather pattern of broadcasts, transposes and slices.
pub fn strided_indices(out: &[usize], strides: &[usize]) -> Vec<usize> {
    let total: usize = out.iter().product();
    let rank = out.len();
    let mut result = Vec::with_capacity(total);
    let mut counter = vec![0usize; rank];
    let mut at = 0usize;
    for _ in 0..total {
        result.push(at);
        for axis in (0..rank).rev() {
            counter[axis] += 1;
            at += strides[axis];
            if counter[axis] < out[axis] {
                break;
            }
            at -= strides[axis] * counter[axis];
            counter[axis] = 0;
        }
    }
    result
}

/// Row-major strides of `dims`.
pub fn row_major_strides(dims: &[usize]) -> Vec<usize> {
    let mut strides = vec![1usize; dims.len()];
    for i in (0..dims.len().saturating_sub(1)).rev() {
        strides[i] = strides[i + 1] * dims[i + 1];
    }
    strides
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn views_keep_the_element_count() {
        for d in [
            vec![],
            vec![7],
            vec![2, 5],
            vec![2, 197, 768],
            vec![2, 3, 4, 5],
            vec![2, 3, 4, 5, 6],
        ] {
            let dims = Dims(d);
            assert_eq!(dims.nchw().elements(), dims.elements(), "{dims}");
        }
        assert_eq!(Dims::new([4, 10]).nchw(), Shape::new(4, 10, 1, 1));
    }

    #[test]
    fn broadcasting_follows_numpy() {
        assert_eq!(
            broadcast(&[2, 64, 7, 7], &[2, 64, 1, 1]).unwrap(),
            Dims::new([2, 64, 7, 7])
        );
        assert_eq!(
            broadcast(&[768], &[2, 197, 768]).unwrap(),
            Dims::new([2, 197, 768])
        );
        assert_eq!(broadcast(&[], &[3, 1]).unwrap(), Dims::new([3, 1]));
        assert_eq!(broadcast(&[3, 1], &[1, 4]).unwrap(), Dims::new([3, 4]));
        assert!(broadcast(&[3], &[4]).is_err());
    }

    #[test]
    fn broadcast_indices_repeat_the_small_operand() {
        assert_eq!(broadcast_indices(&[2, 1], &[2, 3]), vec![0, 0, 0, 1, 1, 1]);
        assert_eq!(broadcast_indices(&[3], &[2, 3]), vec![0, 1, 2, 0, 1, 2]);
        assert_eq!(broadcast_indices(&[], &[2]), vec![0, 0]);
        // A transpose of a 2 x 3 matrix.
        assert_eq!(strided_indices(&[3, 2], &[1, 3]), vec![0, 3, 1, 4, 2, 5]);
        assert_eq!(row_major_strides(&[2, 3, 4]), vec![12, 4, 1]);
    }

    #[test]
    fn negative_axes_count_from_the_end() {
        let d = Dims::new([2, 3, 4]);
        assert_eq!(d.axis(-1), Ok(2));
        assert_eq!(d.axis(0), Ok(0));
        assert!(d.axis(3).is_err());
        assert!(d.axis(-4).is_err());
    }
}
