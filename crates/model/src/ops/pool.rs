//! Pooling: windowed max/average and global pooling.

use super::conv::Padding;
use crate::Shape;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PoolKind {
    Max,
    Average,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Pool {
    pub kind: PoolKind,
    pub kernel_h: usize,
    pub kernel_w: usize,
    pub stride_h: usize,
    pub stride_w: usize,
    pub padding: Padding,
    /// Caffe (and so GoogLeNet and SqueezeNet as published) rounds the output size up.
    pub ceil_mode: bool,
    /// Whether padded zeros count in an average (ONNX `count_include_pad`).
    pub count_include_pad: bool,
}

impl Pool {
    pub fn max(k: usize, stride: usize, pad: usize) -> Pool {
        Pool {
            kind: PoolKind::Max,
            kernel_h: k,
            kernel_w: k,
            stride_h: stride,
            stride_w: stride,
            padding: Padding::uniform(pad),
            ceil_mode: false,
            count_include_pad: false,
        }
    }

    pub fn average(k: usize, stride: usize, pad: usize) -> Pool {
        Pool {
            kind: PoolKind::Average,
            ..Pool::max(k, stride, pad)
        }
    }

    pub fn ceil(mut self) -> Pool {
        self.ceil_mode = true;
        self
    }

    pub(crate) fn output_shape(&self, input: Shape) -> Result<Shape, String> {
        let h = self.out_size(
            input.h,
            self.padding.top,
            self.padding.bottom,
            self.kernel_h,
            self.stride_h,
        );
        let w = self.out_size(
            input.w,
            self.padding.left,
            self.padding.right,
            self.kernel_w,
            self.stride_w,
        );
        match (h, w) {
            (Some(h), Some(w)) => Ok(Shape::new(input.n, input.c, h, w)),
            _ => Err(format!(
                "{}x{} pooling window (stride {}x{}) does not fit the {}x{} ifmap",
                self.kernel_h, self.kernel_w, self.stride_h, self.stride_w, input.h, input.w
            )),
        }
    }

    fn out_size(
        &self,
        size: usize,
        pad_begin: usize,
        pad_end: usize,
        kernel: usize,
        stride: usize,
    ) -> Option<usize> {
        let padded = size + pad_begin + pad_end;
        if kernel == 0 || stride == 0 || padded < kernel {
            return None;
        }
        let span = padded - kernel;
        if !self.ceil_mode {
            return Some(span / stride + 1);
        }
        let mut out = span.div_ceil(stride) + 1;
        // As in Caffe/PyTorch, the last window must start inside the ifmap or its left padding.
        if (out - 1) * stride >= size + pad_begin {
            out -= 1;
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floor_and_ceil_modes() {
        let input = Shape::new(1, 64, 112, 112);
        // GoogLeNet pool1: 3x3 stride 2 on 112 -> 55 (floor) or 56 (Caffe's ceil).
        assert_eq!(Pool::max(3, 2, 0).output_shape(input).unwrap().h, 55);
        assert_eq!(Pool::max(3, 2, 0).ceil().output_shape(input).unwrap().h, 56);
        // AlexNet pool1: 55 -> 27 either way.
        let a = Shape::new(1, 96, 55, 55);
        assert_eq!(Pool::max(3, 2, 0).ceil().output_shape(a).unwrap().h, 27);
        assert!(Pool::max(5, 1, 0)
            .output_shape(Shape::new(1, 1, 4, 4))
            .is_err());
    }
}
