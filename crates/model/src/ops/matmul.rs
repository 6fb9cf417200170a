//! Matrix products on N-d tensors: a learned matrix applied to the last axis ([`Op::Linear`],
//! a transformer's projections) and the product of two activations ([`Op::MatMul`],
//! attention's `Q K^T` and `A V`). Both are written as the CONV loop nest, so statistics
//! and the energy engine treat them like the layers they already know.
//!
//! [`Op::Linear`]: crate::Op::Linear
//! [`Op::MatMul`]: crate::Op::MatMul

use super::conv::{FullyConnected, LoopNest};
use crate::dims::{broadcast, Dims};

impl FullyConnected {
    /// As [`Op::Linear`](crate::Op::Linear): `[d0, ..., K] -> [d0, ..., M]`, a 1x1
    /// convolution with `C = K`, `M` filters and the middle axes as its `P` rows.
    pub(crate) fn linear_nest(&self, x: &Dims) -> Result<LoopNest, String> {
        if self.outputs == 0 {
            return Err("a linear layer needs at least one output".into());
        }
        if x.rank() < 2 {
            return Err(format!("a linear layer needs a batch axis, got {x}"));
        }
        let rows: usize = x[1..x.rank() - 1].iter().product();
        Ok(pointwise_nest(x[0], 1, self.outputs, x[x.rank() - 1], rows))
    }

    pub(crate) fn linear_dims(&self, x: &Dims) -> Result<Dims, String> {
        self.linear_nest(x)?;
        let mut out = x.0.clone();
        *out.last_mut().expect("rank checked") = self.outputs;
        Ok(Dims(out))
    }
}

fn pointwise_nest(n: usize, groups: usize, m: usize, c: usize, p: usize) -> LoopNest {
    LoopNest {
        n,
        m,
        c,
        p,
        q: 1,
        r: 1,
        s: 1,
        h: p,
        w: 1,
        stride_h: 1,
        stride_w: 1,
        dilation_h: 1,
        dilation_w: 1,
        groups,
    }
}

/// Shapes of `A [.., M, K] x B [.., K, N]` with numpy broadcasting of the batch axes: the
/// output dims and the loop nest (batch axes as `N` and groups, `M` rows as `P`, `K` as `C`,
/// `B`'s columns as `M` filters).
pub(crate) fn matmul(a: &Dims, b: &Dims) -> Result<(Dims, LoopNest), String> {
    if a.rank() == 0 || b.rank() == 0 {
        return Err("MatMul operands must have at least one axis".into());
    }
    // ONNX (numpy) promotes a 1-D operand to a matrix and drops that axis afterwards.
    let (a2, drop_m) = if a.rank() == 1 {
        (Dims::new([1, a[0]]), true)
    } else {
        (a.clone(), false)
    };
    let (b2, drop_n) = if b.rank() == 1 {
        (Dims::new([b[0], 1]), true)
    } else {
        (b.clone(), false)
    };
    let (m, k) = (a2[a2.rank() - 2], a2[a2.rank() - 1]);
    let (k2, n) = (b2[b2.rank() - 2], b2[b2.rank() - 1]);
    if k != k2 {
        return Err(format!("inner dimensions differ: {a} x {b}"));
    }
    let batch = broadcast(&a2[..a2.rank() - 2], &b2[..b2.rank() - 2])?;
    let (outer, groups) = match batch.split_first() {
        Some((&first, rest)) => (first, rest.iter().product()),
        None => (1, 1),
    };
    let mut out = batch.0.clone();
    if !drop_m {
        out.push(m);
    }
    if !drop_n {
        out.push(n);
    }
    Ok((Dims(out), pointwise_nest(outer, groups, n, k, m)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attention_products_by_hand() {
        // ViT-B/16: 12 heads of 197 tokens x 64.
        let q = Dims::new([2, 12, 197, 64]);
        let kt = Dims::new([2, 12, 64, 197]);
        let (scores, nest) = matmul(&q, &kt).unwrap();
        assert_eq!(scores, Dims::new([2, 12, 197, 197]));
        assert_eq!(nest.macs(), 2 * 12 * 197 * 197 * 64);
        let v = Dims::new([2, 12, 197, 64]);
        let (out, nest) = matmul(&scores, &v).unwrap();
        assert_eq!(out, Dims::new([2, 12, 197, 64]));
        assert_eq!(nest.macs(), 2 * 12 * 197 * 64 * 197);
        // Heads folded into the batch (PyTorch's MultiheadAttention), and broadcasting.
        let (_, nest) = matmul(&Dims::new([24, 197, 64]), &Dims::new([24, 64, 197])).unwrap();
        assert_eq!(nest.macs(), 24 * 197 * 197 * 64);
        let (o, _) = matmul(&Dims::new([5, 3, 4]), &Dims::new([4, 6])).unwrap();
        assert_eq!(o, Dims::new([5, 3, 6]));
        let (o, nest) = matmul(&Dims::new([4]), &Dims::new([4, 6])).unwrap();
        assert_eq!((o, nest.macs()), (Dims::new([6]), 24));
        assert!(matmul(&Dims::new([2, 3]), &Dims::new([4, 5])).is_err());
    }

    #[test]
    fn linear_on_tokens() {
        let fc = FullyConnected {
            outputs: 3072,
            bias: true,
        };
        let x = Dims::new([2, 197, 768]);
        assert_eq!(fc.linear_dims(&x).unwrap(), Dims::new([2, 197, 3072]));
        assert_eq!(fc.linear_nest(&x).unwrap().macs(), 2 * 197 * 768 * 3072);
        assert_eq!(fc.linear_nest(&x).unwrap().weights(), 768 * 3072);
    }
}
