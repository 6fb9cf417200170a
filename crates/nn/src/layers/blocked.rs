//! Stride-1 convolutions with the output channels as vector lanes (onnxruntime's NCHWc
//! kernels' orientation), on the AVX2 kernel's machines. The ifmap is read where the
//! implicit lowering puts it (zero-bordered planes, [`implicit::Layout`]): each output pixel
//! is a column of that layout, each tap's value a broadcast from it. The filters are laid
//! out once in blocks of 8 output channels, each tap's 8 values side by side
//! ([`BlockedFilters`]). A tile is 2 blocks (16 channels) x 6 pixels: 12 accumulators, 6
//! broadcasts and 2 loads a step, as the product's tile, but both operands stay in L1 (a
//! pair of blocks' filters for a block of `k` is 16 KiB; the product streamed its packed
//! filters from L2 for every tile).
//!
//! Each output is summed as the product sums it (from zero, `k = (c, r, s)` ascending, one
//! fused multiply-add a term, blocks of [`KC`] added to the running value), so the bits are
//! the lowered product's.

use super::conv::Epilogue;
use super::implicit::{self, Layout};
use crate::kernels::{with_scratch, ConvGeometry};
use crate::sgemm::KC;
use rayon::prelude::*;

/// Output channels a block (a vector's lanes).
pub(crate) const BLOCK: usize = 8;

/// Pixels a tile.
const PIXELS: usize = 6;

/// `M x K` filters in blocks of [`BLOCK`] output channels: block `b`, step `k`, lane `l`
/// at `(b K + k) BLOCK + l` (zero past `M`).
#[derive(Clone, Debug)]
pub(crate) struct BlockedFilters {
    m: usize,
    k: usize,
    data: Vec<f32>,
}

impl BlockedFilters {
    pub(crate) fn new(m: usize, k: usize, filter: &[f32]) -> BlockedFilters {
        assert!(filter.len() >= m * k);
        let blocks = m.div_ceil(BLOCK);
        let mut data = vec![0.0; blocks * k * BLOCK];
        for (f, taps) in filter.chunks_exact(k.max(1)).take(m).enumerate() {
            let (b, l) = (f / BLOCK, f % BLOCK);
            for (kk, v) in taps.iter().enumerate() {
                data[(b * k + kk) * BLOCK + l] = *v;
            }
        }
        BlockedFilters { m, k, data }
    }

    pub(crate) fn rows(&self) -> usize {
        self.m
    }

    pub(crate) fn depth(&self) -> usize {
        self.k
    }

    fn blocks(&self) -> usize {
        self.m.div_ceil(BLOCK)
    }
}

/// Whether [`forward`] runs this layer: the implicit lowering's layers (the AVX2 kernel's
/// machines, one group, stride 1, more than one tap). It computes only the valid columns, so
/// none of the implicit lowering's are wasted.
pub(crate) fn applies(g: &ConvGeometry, groups: usize) -> bool {
    implicit::applies(g, groups)
}

/// `y = epilogue(conv(x, filters))` for `n` samples, one sample a task; a single sample of
/// at least `split_macs` MACs in two halves of the blocks that rayon may run on two cores.
#[allow(clippy::too_many_arguments)]
pub(crate) fn forward(
    g: &ConvGeometry,
    n: usize,
    filters: &BlockedFilters,
    x: &[f32],
    epilogue: &Epilogue,
    split_macs: usize,
    y: &mut [f32],
) {
    let (m, crs, pq) = (filters.rows(), g.col_rows(), g.p * g.q);
    assert!(applies(g, 1) && filters.depth() == crs);
    let (in_len, out_len) = (g.c * g.h * g.w, m * pq);
    assert!(x.len() >= n * in_len && y.len() >= n * out_len);
    let layout = Layout::new(g);
    let blocks = filters.blocks();
    let out_values = blocks * layout.columns * BLOCK;
    if n == 1 && blocks >= 2 && m * pq * crs >= split_macs {
        let half = blocks.div_ceil(2);
        return with_scratch(layout.len + out_values, |buffer| {
            let (padded, out) = buffer.split_at_mut(layout.len);
            layout.fill(g, &x[..in_len], padded);
            let padded: &[f32] = padded;
            let (out0, out1) = out.split_at_mut(half * layout.columns * BLOCK);
            let (y0, y1) = y[..out_len].split_at_mut(half * BLOCK * pq);
            let part = |range: std::ops::Range<usize>, out: &mut [f32], y: &mut [f32]| {
                // SAFETY: `applies` checked AVX2 (with FMA, `avx2_only`); `padded` holds the
                // layout, `out` this range's blocks.
                unsafe { sample(g, &layout, filters, range.clone(), padded, out) };
                store(g, &layout, range, m, out, y, epilogue);
            };
            rayon::join(|| part(0..half, out0, y0), || part(half..blocks, out1, y1));
        });
    }
    y[..n * out_len]
        .par_chunks_mut(out_len)
        .zip(x.par_chunks(in_len))
        .for_each(|(yi, xi)| {
            with_scratch(layout.len + out_values, |buffer| {
                let (padded, out) = buffer.split_at_mut(layout.len);
                layout.fill(g, xi, padded);
                // SAFETY: as above.
                unsafe { sample(g, &layout, filters, 0..blocks, padded, out) };
                store(g, &layout, 0..blocks, m, out, yi, epilogue);
            })
        });
}

/// The blocks `blocks` of one sample's output (`out`, as [`sample`] writes them from block
/// `blocks.start` on) into `y` (`P x Q` planes from channel `blocks.start * BLOCK` on, the
/// first `m` channels of the layer), each plane then through the epilogue.
fn store(
    g: &ConvGeometry,
    layout: &Layout,
    blocks: std::ops::Range<usize>,
    m: usize,
    out: &[f32],
    y: &mut [f32],
    epilogue: &Epilogue,
) {
    let (pq, columns) = (g.p * g.q, layout.columns);
    let first = blocks.start * BLOCK;
    let channels = (blocks.end * BLOCK).min(m) - first;
    assert!(out.len() >= blocks.len() * columns * BLOCK && y.len() >= channels * pq);
    for b in 0..blocks.len() {
        let lanes = (channels - b * BLOCK).min(BLOCK);
        let block = &out[b * columns * BLOCK..(b + 1) * columns * BLOCK];
        let planes = &mut y[b * BLOCK * pq..(b * BLOCK + lanes) * pq];
        #[cfg(target_arch = "x86_64")]
        if lanes == BLOCK {
            // SAFETY: `applies` checked AVX2; the block holds every column of the layout,
            // `planes` 8 planes.
            unsafe { unblock_avx2(g, layout.wp, block, planes) };
            continue;
        }
        for i in 0..g.p {
            for j in 0..g.q {
                let col = i * layout.wp + j;
                for l in 0..lanes {
                    planes[l * pq + i * g.q + j] = block[col * BLOCK + l];
                }
            }
        }
    }
    for (c, plane) in y[..channels * pq].chunks_exact_mut(pq).enumerate() {
        epilogue.channel(first + c, plane);
    }
}

/// A whole block's valid columns into its 8 planes, 8 pixels at a time through a
/// transpose.
///
/// # Safety
/// AVX2; `block` holds `BLOCK` values for each column `i wp + j` (`i < P`, `j < Q`), `planes`
/// 8 planes of `P x Q`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn unblock_avx2(g: &ConvGeometry, wp: usize, block: &[f32], planes: &mut [f32]) {
    use std::arch::x86_64::*;
    let pq = g.p * g.q;
    assert!(planes.len() >= BLOCK * pq && block.len() >= ((g.p - 1) * wp + g.q) * BLOCK);
    let (src, dst) = (block.as_ptr(), planes.as_mut_ptr());
    for i in 0..g.p {
        let mut j = 0;
        while j + 8 <= g.q {
            let at = src.add((i * wp + j) * BLOCK);
            let pixels: [__m256; 8] = std::array::from_fn(|t| _mm256_loadu_ps(at.add(t * BLOCK)));
            for (l, line) in crate::sgemm::transpose8(pixels).into_iter().enumerate() {
                _mm256_storeu_ps(dst.add(l * pq + i * g.q + j), line);
            }
            j += 8;
        }
        for j in j..g.q {
            let at = src.add((i * wp + j) * BLOCK);
            for l in 0..BLOCK {
                *dst.add(l * pq + i * g.q + j) = *at.add(l);
            }
        }
    }
}

/// One sample's output in blocks (`out`: block `b`, column `c` of the layout, lane `l` at
/// `((b - blocks.start) columns + c) BLOCK + l`), for the blocks `blocks` and the valid
/// columns (`j < Q` of each output row) of `padded`.
///
/// # Safety
/// AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn sample(
    g: &ConvGeometry,
    layout: &Layout,
    filters: &BlockedFilters,
    blocks: std::ops::Range<usize>,
    padded: &[f32],
    out: &mut [f32],
) {
    let columns = layout.columns;
    assert!(padded.len() >= layout.len && out.len() >= blocks.len() * columns * BLOCK);
    assert!(blocks.end <= filters.blocks() && filters.k == layout.offsets.len());
    // The valid columns, in order.
    let valid: Vec<usize> = (0..g.p)
        .flat_map(|i| (0..g.q).map(move |j| i * layout.wp + j))
        .collect();
    let k = filters.k;
    for k0 in (0..k).step_by(KC) {
        let steps = k0..(k0 + KC).min(k);
        let mut b = blocks.start;
        while b < blocks.end {
            let pair = (blocks.end - b).min(2);
            for cols in valid.chunks(PIXELS) {
                let t = Tile {
                    filters: filters.data.as_ptr().add(b * k * BLOCK),
                    stride: k * BLOCK,
                    steps: steps.clone(),
                    offsets: &layout.offsets,
                    padded: padded.as_ptr(),
                    cols,
                    out: out.as_mut_ptr().add((b - blocks.start) * columns * BLOCK),
                    out_stride: columns * BLOCK,
                    add: k0 > 0,
                };
                match (pair, cols.len()) {
                    (2, 6) => t.run::<2, 6>(),
                    (2, 5) => t.run::<2, 5>(),
                    (2, 4) => t.run::<2, 4>(),
                    (2, 3) => t.run::<2, 3>(),
                    (2, 2) => t.run::<2, 2>(),
                    (2, _) => t.run::<2, 1>(),
                    (_, 6) => t.run::<1, 6>(),
                    (_, 5) => t.run::<1, 5>(),
                    (_, 4) => t.run::<1, 4>(),
                    (_, 3) => t.run::<1, 3>(),
                    (_, 2) => t.run::<1, 2>(),
                    (_, _) => t.run::<1, 1>(),
                }
            }
            b += pair;
        }
    }
}

/// `F` blocks of filters against `P` pixels over a block of `k`.
#[cfg(target_arch = "x86_64")]
struct Tile<'a> {
    /// The first block's filters (step 0), the next `stride` on.
    filters: *const f32,
    stride: usize,
    steps: std::ops::Range<usize>,
    offsets: &'a [usize],
    padded: *const f32,
    /// The pixels' columns of the layout.
    cols: &'a [usize],
    /// The first block's output (column 0), the next `out_stride` on.
    out: *mut f32,
    out_stride: usize,
    /// Add to what `out` holds (a later block of `k`).
    add: bool,
}

#[cfg(target_arch = "x86_64")]
impl Tile<'_> {
    /// # Safety
    /// AVX2 and FMA; `F` blocks of filters hold the steps; every column plus every offset
    /// lies in `padded`; `out` holds `F` blocks of every column.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn run<const F: usize, const P: usize>(&self) {
        use std::arch::x86_64::*;
        let mut acc = [[_mm256_setzero_ps(); P]; F];
        let x: [*const f32; P] = std::array::from_fn(|j| self.padded.add(self.cols[j]));
        for kk in self.steps.clone() {
            let off = *self.offsets.get_unchecked(kk);
            let f: [__m256; F] = std::array::from_fn(|i| {
                _mm256_loadu_ps(self.filters.add(i * self.stride + kk * BLOCK))
            });
            for j in 0..P {
                let v = _mm256_broadcast_ss(&*x[j].add(off));
                for i in 0..F {
                    acc[i][j] = _mm256_fmadd_ps(f[i], v, acc[i][j]);
                }
            }
        }
        for (i, lane) in acc.iter().enumerate() {
            for (j, a) in lane.iter().enumerate() {
                let at = self.out.add(i * self.out_stride + self.cols[j] * BLOCK);
                let v = if self.add {
                    _mm256_add_ps(_mm256_loadu_ps(at), *a)
                } else {
                    *a
                };
                _mm256_storeu_ps(at, v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against im2col and the product, bit for bit, on the implicit lowering's cases: whole
    /// and partial blocks, whole and partial tiles of pixels, both halves of a sample.
    #[test]
    fn blocked_equals_the_lowered_product_bit_for_bit() {
        if !crate::sgemm::avx2_only() {
            // The AVX-512 kernel's machines lower every layer: nothing to compare.
            assert!(
                std::arch::is_x86_feature_detected!("avx512f"),
                "no AVX2 kernel"
            );
            return;
        }
        crate::layers::lowered::check_stride_one(|g, n, m, x, f, y| {
            assert!(applies(g, 1));
            let filters = BlockedFilters::new(m, g.col_rows(), f);
            // Split at batch 1 (its MACs are far more than 1).
            forward(g, n, &filters, x, &Epilogue::default(), 1, y);
        });
    }
}
