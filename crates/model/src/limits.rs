//! The largest numbers a network description may hold, and checked arithmetic on them.
//!
//! Shapes, kernel sizes, strides, pads and reshape targets come from files and the command
//! line, so nothing stops them from being `2^62`. [`Graph::infer`](crate::Graph::infer)
//! checks every node against these limits before it computes with them, so that no product
//! wraps (a 2^32 x 2^32 input used to give 0 MACs) and no sum overflows (pads of 2^62):
//!
//! - every dimension and every integer attribute (kernel, stride, pad, dilation, groups,
//!   filters, outputs, reshape and expand targets): at most [`MAX_DIMENSION`];
//! - every tensor (activations, whole batch, and learned parameters): at most
//!   [`MAX_ELEMENTS`] values;
//! - every layer's MAC count, and the network's total, must fit in a `u64`.
//!
//! With attributes below 2^31 and tensors below 2^36 values, the window arithmetic
//! (`size + pads - dilation * (kernel - 1) - 1`) and every element count stay far from
//! `usize`'s end; only MAC products can exceed it, and they are computed checked.

use crate::ops::{Conv, Extent, Op, Pool};

/// Largest dimension, and largest integer attribute of an op: 2^31.
pub const MAX_DIMENSION: usize = 1 << 31;

/// Largest number of values in one tensor (the whole batch): 2^36, about 6.9e10 (275 GB of
/// f32), far above any real network's largest activation times the largest batch joule
/// estimates (`--batch` up to 2^20).
pub const MAX_ELEMENTS: u64 = 1 << 36;

/// The product of `dims`, or `None` when it exceeds `u64`.
pub fn checked_product(dims: &[usize]) -> Option<u64> {
    dims.iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64))
}

/// Checks a tensor's dimensions against [`MAX_DIMENSION`] and its element count against
/// [`MAX_ELEMENTS`]; the message says which (`what` names the tensor).
pub fn check_tensor(what: &str, dims: &[usize]) -> Result<(), String> {
    if let Some(&d) = dims.iter().find(|&&d| d > MAX_DIMENSION) {
        return Err(format!(
            "{what} has a dimension of {d}, above the maximum {MAX_DIMENSION}"
        ));
    }
    match checked_product(dims) {
        Some(n) if n <= MAX_ELEMENTS => Ok(()),
        Some(n) => Err(format!(
            "{what} {dims:?} holds {n} values, above the maximum {MAX_ELEMENTS}"
        )),
        None => Err(format!(
            "{what} {dims:?} holds more values than fit in 64 bits (maximum {MAX_ELEMENTS})"
        )),
    }
}

/// Checks the integer attributes of `op` against [`MAX_DIMENSION`]; the message names the
/// attribute. Ops without size attributes pass.
pub fn check_op(op: &Op) -> Result<(), String> {
    let mut attributes: Vec<(&str, usize)> = Vec::new();
    match op {
        Op::Conv(c) => conv_attributes(c, &mut attributes),
        Op::FullyConnected(fc) | Op::Linear(fc) => attributes.push(("outputs", fc.outputs)),
        Op::Pool(p) => pool_attributes(p, &mut attributes),
        Op::Pad(p) => {
            attributes.extend(p.begin.iter().map(|&v| ("pads", v)));
            attributes.extend(p.end.iter().map(|&v| ("pads", v)));
        }
        Op::Reshape(r) => extent_attributes(&r.target, &mut attributes),
        Op::Expand(e) => extent_attributes(&e.target, &mut attributes),
        Op::Constant { dims, target } => {
            attributes.extend(dims.iter().map(|&v| ("dims", v)));
            extent_attributes(target, &mut attributes);
        }
        _ => {}
    }
    match attributes.iter().find(|(_, v)| *v > MAX_DIMENSION) {
        Some((name, v)) => Err(format!(
            "{name} of {v} is above the maximum {MAX_DIMENSION}"
        )),
        None => Ok(()),
    }
}

fn conv_attributes(c: &Conv, out: &mut Vec<(&'static str, usize)>) {
    out.extend([
        ("filters", c.filters),
        ("kernel", c.r),
        ("kernel", c.s),
        ("strides", c.stride_h),
        ("strides", c.stride_w),
        ("pads", c.padding.top),
        ("pads", c.padding.left),
        ("pads", c.padding.bottom),
        ("pads", c.padding.right),
        ("dilations", c.dilation_h),
        ("dilations", c.dilation_w),
        ("group", c.groups),
    ]);
}

fn pool_attributes(p: &Pool, out: &mut Vec<(&'static str, usize)>) {
    out.extend([
        ("kernel", p.kernel_h),
        ("kernel", p.kernel_w),
        ("strides", p.stride_h),
        ("strides", p.stride_w),
        ("pads", p.padding.top),
        ("pads", p.padding.left),
        ("pads", p.padding.bottom),
        ("pads", p.padding.right),
    ]);
}

fn extent_attributes(target: &[Extent], out: &mut Vec<(&'static str, usize)>) {
    for e in target {
        if let Extent::Fixed(k) | Extent::Batch(k) = *e {
            out.push(("shape", k));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::Padding;

    #[test]
    fn products_are_checked() {
        assert_eq!(checked_product(&[2, 3, 4]), Some(24));
        assert_eq!(checked_product(&[]), Some(1));
        assert_eq!(checked_product(&[1 << 32, 1 << 32]), None);
    }

    #[test]
    fn tensors_above_the_limits_are_named() {
        assert!(check_tensor("input", &[1, 3, 224, 224]).is_ok());
        let wide = check_tensor("input", &[1, 1, 1 << 32, 1]).unwrap_err();
        assert!(
            wide.contains("4294967296") && wide.contains("input"),
            "{wide}"
        );
        let many = check_tensor("input", &[1, 1, 1 << 20, 1 << 20]).unwrap_err();
        assert!(many.contains("1099511627776"), "{many}");
        let wraps = check_tensor("x", &[1 << 31, 1 << 31, 1 << 31]).unwrap_err();
        assert!(wraps.contains("64 bits"), "{wraps}");
    }

    #[test]
    fn huge_attributes_are_named() {
        let mut conv = Conv::new(4, 3, 1, 1);
        assert!(check_op(&Op::Conv(conv.clone())).is_ok());
        conv.padding = Padding::uniform(1 << 62);
        let err = check_op(&Op::Conv(conv)).unwrap_err();
        assert!(err.starts_with("pads of 4611686018427387904"), "{err}");
        let pool = Op::Pool(Pool::max(2, usize::MAX, 0));
        assert!(check_op(&pool).unwrap_err().starts_with("strides"));
    }
}
