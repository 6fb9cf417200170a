//! Broadcasting arithmetic, reductions and layer normalisation: ops that cost element
//! operations, not MACs.

use crate::dims::{broadcast, Dims};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BinaryKind {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
}

impl BinaryKind {
    pub fn name(self) -> &'static str {
        match self {
            BinaryKind::Add => "add",
            BinaryKind::Sub => "sub",
            BinaryKind::Mul => "mul",
            BinaryKind::Div => "div",
            BinaryKind::Pow => "pow",
        }
    }

    pub fn apply(self, a: f32, b: f32) -> f32 {
        match self {
            BinaryKind::Add => a + b,
            BinaryKind::Sub => a - b,
            BinaryKind::Mul => a * b,
            BinaryKind::Div => a / b,
            BinaryKind::Pow => a.powf(b),
        }
    }
}

/// Which operand of a [`Binary`] op is the constant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Left,
    Right,
}

/// A constant operand, stored as the node's only parameter.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConstantOperand {
    pub side: Side,
    pub dims: Vec<usize>,
}

/// Element-wise arithmetic with numpy broadcasting, on two activations or on an activation
/// and a constant (which the node keeps in `params[0]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Binary {
    pub kind: BinaryKind,
    pub constant: Option<ConstantOperand>,
}

impl Binary {
    /// The two operand shapes, left first.
    pub fn operands<'a>(&'a self, inputs: &'a [Dims]) -> (&'a [usize], &'a [usize]) {
        match &self.constant {
            None => (&inputs[0], &inputs[1]),
            Some(c) => match c.side {
                Side::Left => (&c.dims, &inputs[0]),
                Side::Right => (&inputs[0], &c.dims),
            },
        }
    }

    pub(crate) fn output_dims(&self, inputs: &[Dims]) -> Result<Dims, String> {
        let (a, b) = self.operands(inputs);
        broadcast(a, b)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReduceKind {
    Mean,
    Sum,
    /// The Euclidean norm, `sqrt(sum x^2)` (Swin V2's cosine attention normalises q and k).
    L2,
}

/// Reduction over some axes (all when `axes` is empty).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reduce {
    pub kind: ReduceKind,
    pub axes: Vec<i64>,
    pub keep_dims: bool,
}

impl Reduce {
    /// The reduced axes as indices.
    pub fn axes_of(&self, x: &Dims) -> Result<Vec<usize>, String> {
        if self.axes.is_empty() {
            return Ok((0..x.rank()).collect());
        }
        self.axes.iter().map(|&a| x.axis(a)).collect()
    }

    pub(crate) fn output_dims(&self, x: &Dims) -> Result<Dims, String> {
        let axes = self.axes_of(x)?;
        Ok(Dims(
            x.iter()
                .enumerate()
                .filter_map(|(i, &d)| match (axes.contains(&i), self.keep_dims) {
                    (false, _) => Some(d),
                    (true, true) => Some(1),
                    (true, false) => None,
                })
                .collect(),
        ))
    }
}

/// Layer normalisation over the axes from `axis` on: `scale * (x - mean) / sqrt(var + eps)
/// + bias`, with `params = [scale, bias?]` of the normalised shape.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerNorm {
    pub axis: i64,
    pub epsilon: f32,
    pub bias: bool,
}

impl LayerNorm {
    /// The normalised trailing shape.
    pub fn normalized(&self, x: &Dims) -> Result<Vec<usize>, String> {
        Ok(x[x.axis(self.axis)?..].to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_with_a_constant_broadcasts() {
        let mul = Binary {
            kind: BinaryKind::Mul,
            constant: Some(ConstantOperand {
                side: Side::Left,
                dims: vec![1, 197, 768],
            }),
        };
        let x = Dims::new([2, 197, 768]);
        assert_eq!(mul.output_dims(std::slice::from_ref(&x)).unwrap(), x);
        assert_eq!(BinaryKind::Pow.apply(3.0, 2.0), 9.0);
        assert_eq!(BinaryKind::Sub.apply(3.0, 2.0), 1.0);
    }

    #[test]
    fn reduce_keeps_or_drops_axes() {
        let x = Dims::new([2, 64, 7, 7]);
        let keep = Reduce {
            kind: ReduceKind::Mean,
            axes: vec![2, 3],
            keep_dims: true,
        };
        assert_eq!(keep.output_dims(&x).unwrap(), Dims::new([2, 64, 1, 1]));
        let drop = Reduce {
            keep_dims: false,
            axes: vec![-1],
            ..keep
        };
        assert_eq!(drop.output_dims(&x).unwrap(), Dims::new([2, 64, 7]));
    }
}
