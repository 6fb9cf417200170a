//! CONV and FC: the layers that carry weights and MACs, and the loop nest they share.

use crate::Shape;
use serde::{Deserialize, Serialize};

/// Zero padding around the spatial dimensions of an ifmap.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Padding {
    pub top: usize,
    pub left: usize,
    pub bottom: usize,
    pub right: usize,
}

impl Padding {
    /// The same padding on every side.
    pub const fn uniform(p: usize) -> Padding {
        Padding {
            top: p,
            left: p,
            bottom: p,
            right: p,
        }
    }
}

/// A 2-D convolution. Grouped and depthwise convolutions are expressed with `groups`
/// (depthwise: `groups == C == M`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Conv {
    /// M: number of filters (output channels), over all groups.
    pub filters: usize,
    /// R: filter height.
    pub r: usize,
    /// S: filter width.
    pub s: usize,
    pub stride_h: usize,
    pub stride_w: usize,
    pub padding: Padding,
    pub dilation_h: usize,
    pub dilation_w: usize,
    pub groups: usize,
    pub bias: bool,
}

impl Conv {
    /// A square `k x k` convolution with `filters` outputs, uniform padding, no dilation,
    /// one group and a bias: the common case in the zoo.
    pub fn new(filters: usize, k: usize, stride: usize, pad: usize) -> Conv {
        Conv {
            filters,
            r: k,
            s: k,
            stride_h: stride,
            stride_w: stride,
            padding: Padding::uniform(pad),
            dilation_h: 1,
            dilation_w: 1,
            groups: 1,
            bias: true,
        }
    }

    pub fn with_groups(mut self, groups: usize) -> Conv {
        self.groups = groups;
        self
    }

    pub fn without_bias(mut self) -> Conv {
        self.bias = false;
        self
    }
}

/// A fully connected layer. Its input may be spatial (`C x H x W`): it is a CONV whose
/// filter covers the whole input, which is how the energy engine maps it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FullyConnected {
    /// M: number of output features.
    pub outputs: usize,
    pub bias: bool,
}

/// The bounds of a CONV/FC layer's seven-dimensional loop nest, in the field's names
/// (Eyeriss / Timeloop): what the energy engine's mapper tiles.
///
/// For grouped convolutions `m` and `c` are *per group* and `groups` is an outer loop, so
/// `macs = n * groups * m * c * p * q * r * s` holds for every layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LoopNest {
    /// Batch size.
    pub n: usize,
    /// Filters (output channels) per group.
    pub m: usize,
    /// Input channels per group.
    pub c: usize,
    /// Ofmap height.
    pub p: usize,
    /// Ofmap width.
    pub q: usize,
    /// Filter height.
    pub r: usize,
    /// Filter width.
    pub s: usize,
    /// Ifmap height, without padding.
    pub h: usize,
    /// Ifmap width, without padding.
    pub w: usize,
    pub stride_h: usize,
    pub stride_w: usize,
    pub dilation_h: usize,
    pub dilation_w: usize,
    pub groups: usize,
}

impl LoopNest {
    pub fn macs(&self) -> u64 {
        [
            self.n,
            self.groups,
            self.m,
            self.c,
            self.p,
            self.q,
            self.r,
            self.s,
        ]
        .iter()
        .map(|&d| d as u64)
        .product()
    }

    /// Filter weights (all groups).
    pub fn weights(&self) -> u64 {
        (self.groups * self.m * self.c * self.r * self.s) as u64
    }

    /// Ifmap elements (all groups, whole batch, no padding).
    pub fn ifmap_elements(&self) -> u64 {
        (self.n * self.groups * self.c * self.h * self.w) as u64
    }

    /// Ofmap elements (all groups, whole batch).
    pub fn ofmap_elements(&self) -> u64 {
        (self.n * self.groups * self.m * self.p * self.q) as u64
    }

    /// Ifmap rows the layer actually reads for one ofmap row, counting the dilation.
    pub fn effective_r(&self) -> usize {
        self.dilation_h * (self.r - 1) + 1
    }

    pub fn effective_s(&self) -> usize {
        self.dilation_w * (self.s - 1) + 1
    }

    /// The same layer with another batch size.
    pub fn with_batch(mut self, n: usize) -> LoopNest {
        self.n = n;
        self
    }
}

/// Output size of a sliding window over `size` inputs (floor mode).
pub(crate) fn window_out(size: usize, pad: usize, kernel: usize, stride: usize) -> Option<usize> {
    let padded = size + pad;
    if kernel == 0 || stride == 0 || padded < kernel {
        return None;
    }
    Some((padded - kernel) / stride + 1)
}

impl Conv {
    pub(crate) fn loop_nest(&self, input: Shape) -> Result<LoopNest, String> {
        if self.groups == 0 || self.filters == 0 || self.r == 0 || self.s == 0 {
            return Err("filters, kernel and groups must be positive".into());
        }
        if !input.c.is_multiple_of(self.groups) || !self.filters.is_multiple_of(self.groups) {
            return Err(format!(
                "groups={} must divide both input channels {} and filters {}",
                self.groups, input.c, self.filters
            ));
        }
        if self.stride_h == 0 || self.stride_w == 0 || self.dilation_h == 0 || self.dilation_w == 0
        {
            return Err("strides and dilations must be positive".into());
        }
        let eff_r = self.dilation_h * (self.r - 1) + 1;
        let eff_s = self.dilation_w * (self.s - 1) + 1;
        let p = window_out(
            input.h,
            self.padding.top + self.padding.bottom,
            eff_r,
            self.stride_h,
        );
        let q = window_out(
            input.w,
            self.padding.left + self.padding.right,
            eff_s,
            self.stride_w,
        );
        let (Some(p), Some(q)) = (p, q) else {
            return Err(format!(
                "{}x{} filter does not fit the padded {}x{} ifmap",
                eff_r, eff_s, input.h, input.w
            ));
        };
        Ok(LoopNest {
            n: input.n,
            m: self.filters / self.groups,
            c: input.c / self.groups,
            p,
            q,
            r: self.r,
            s: self.s,
            h: input.h,
            w: input.w,
            stride_h: self.stride_h,
            stride_w: self.stride_w,
            dilation_h: self.dilation_h,
            dilation_w: self.dilation_w,
            groups: self.groups,
        })
    }
}

impl FullyConnected {
    /// `spatial` is the input before any flattening, so the filter covers `C x H x W`.
    pub(crate) fn loop_nest(&self, spatial: Shape) -> Result<LoopNest, String> {
        if self.outputs == 0 {
            return Err("a fully connected layer needs at least one output".into());
        }
        Ok(LoopNest {
            n: spatial.n,
            m: self.outputs,
            c: spatial.c,
            p: 1,
            q: 1,
            r: spatial.h,
            s: spatial.w,
            h: spatial.h,
            w: spatial.w,
            stride_h: 1,
            stride_w: 1,
            dilation_h: 1,
            dilation_w: 1,
            groups: 1,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alexnet_conv1_bounds_by_hand() {
        // 227x227x3 ifmap, 96 filters of 11x11, stride 4: P = (227-11)/4+1 = 55.
        let nest = Conv::new(96, 11, 4, 0)
            .loop_nest(Shape::new(1, 3, 227, 227))
            .unwrap();
        assert_eq!(
            (nest.m, nest.c, nest.p, nest.q, nest.r, nest.s),
            (96, 3, 55, 55, 11, 11)
        );
        assert_eq!(nest.macs(), 55 * 55 * 96 * 3 * 11 * 11);
        assert_eq!(nest.weights(), 96 * 3 * 11 * 11);
    }

    #[test]
    fn grouped_and_depthwise() {
        let nest = Conv::new(256, 5, 1, 2)
            .with_groups(2)
            .loop_nest(Shape::new(1, 96, 27, 27))
            .unwrap();
        assert_eq!((nest.m, nest.c, nest.groups, nest.p), (128, 48, 2, 27));
        assert_eq!(nest.weights(), 256 * 48 * 25);
        let dw = Conv::new(32, 3, 1, 1)
            .with_groups(32)
            .loop_nest(Shape::new(1, 32, 112, 112))
            .unwrap();
        assert_eq!((dw.m, dw.c), (1, 1));
        assert_eq!(dw.macs(), 32 * 112 * 112 * 9);
        assert!(Conv::new(30, 3, 1, 1)
            .with_groups(4)
            .loop_nest(Shape::new(1, 32, 8, 8))
            .is_err());
    }

    #[test]
    fn dilation_and_asymmetric_padding() {
        let mut conv = Conv::new(4, 3, 1, 0);
        conv.dilation_h = 2;
        conv.padding = Padding {
            top: 1,
            left: 0,
            bottom: 0,
            right: 1,
        };
        // Effective kernel 5 rows: (10+1-5)/1+1 = 7 rows; columns (10+1-3)+1 = 9.
        let nest = conv.loop_nest(Shape::new(1, 2, 10, 10)).unwrap();
        assert_eq!((nest.p, nest.q), (7, 9));
        assert!(Conv::new(4, 7, 1, 0)
            .loop_nest(Shape::new(1, 2, 5, 5))
            .is_err());
    }

    #[test]
    fn fc_covers_the_whole_input() {
        let fc = FullyConnected {
            outputs: 4096,
            bias: true,
        };
        let nest = fc.loop_nest(Shape::new(1, 256, 6, 6)).unwrap();
        assert_eq!((nest.c, nest.r, nest.s, nest.p, nest.q), (256, 6, 6, 1, 1));
        assert_eq!(nest.weights(), 9216 * 4096);
    }
}
