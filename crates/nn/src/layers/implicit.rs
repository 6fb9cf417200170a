//! Stride-1 convolutions lowered without a copy of the lowered matrix, on the AVX2 kernel's
//! machines. The ifmap is copied once into zero-bordered planes whose rows are `wp` values
//! apart; an output pixel `(i, j)` is column `i wp + j` of the product, and the row of tap
//! `(c, r, s)` is then the window of plane `c` from `r wp + s` on: a shifted view, which
//! the product packs panel by panel as it would pack the lowered matrix. Columns `j >= Q`
//! of each output row are computed and dropped; rows share their zero border (the right
//! border of a row is the left border of the next), so a 3x3 layer on a 14x14 map computes
//! 15 columns a row for 14.
//!
//! im2col wrote `R x S` copies of the ifmap and the product read them back: a fifth of
//! vgg-small's time on the AVX2 machine. The sums are the lowered product's (`k = (c, r,
//! s)` ascending), so the bits are too.
//!
//! Training computes a stride-1 layer's input gradient here too, as the forward convolution
//! of dY with the filters flipped ([`input_gradient`]), instead of a lowered gradient matrix
//! and col2im.

use super::conv::Epilogue;
use crate::kernels::{with_scratch, ConvGeometry};
use crate::sgemm::{self, PackedFilters, PANEL_ROWS};
use rayon::prelude::*;

/// Whether [`forward`] runs this layer: the AVX2 kernel's machines, one group, stride 1,
/// more than one tap (a 1x1 layer's ifmap is its lowered matrix already).
pub(crate) fn applies(g: &ConvGeometry, groups: usize) -> bool {
    sgemm::avx2_only()
        && groups == 1
        && g.stride_h == 1
        && g.stride_w == 1
        && g.r * g.s > 1
        && g.p > 0
        && g.q > 0
}

/// Whether lowering a layer of `m` filters implicitly is expected to beat im2col: the
/// columns past `Q` cost the product their share, while im2col's copy costs about one
/// product row per filter, so a layer of many filters on a small map is lowered. Measured
/// (one process, alternating): with 128 filters or fewer it won on every map (vgg-small's
/// 14x14 and 7x7 layers 11-14%), and resnet18 at batch 1 was 12-16% faster with its 7x7 and
/// 4x4 layers of 256 and 512 filters (14% and 19% more columns) on im2col.
pub(crate) fn pays(g: &ConvGeometry, m: usize) -> bool {
    let (_, columns) = widths(g);
    let pq = g.p * g.q;
    m <= 128 || 16 * (columns - pq) <= pq
}

/// The geometry whose forward convolution is the input gradient of `g`'s (stride 1): `dY`
/// (`M` planes of `P x Q`) convolved with the filters flipped and transposed
/// ([`flipped_filters`]) and padded by the taps' reach less the forward padding gives `dX`
/// (`C` planes of `H x W`). `None` where the forward padding exceeds the reach (`dX` would
/// need a negative padding).
pub(crate) fn input_gradient(g: &ConvGeometry, m: usize) -> Option<ConvGeometry> {
    let (reach_h, reach_w) = ((g.r - 1) * g.dilation_h, (g.s - 1) * g.dilation_w);
    (g.stride_h == 1 && g.stride_w == 1 && g.pad_top <= reach_h && g.pad_left <= reach_w).then(
        || ConvGeometry {
            c: m,
            h: g.p,
            w: g.q,
            p: g.h,
            q: g.w,
            pad_top: reach_h - g.pad_top,
            pad_left: reach_w - g.pad_left,
            ..*g
        },
    )
}

/// `filter` (`M x C x R x S`) as [`input_gradient`]'s filters: `C x M x R x S`, each tap
/// flipped in both directions.
pub(crate) fn flipped_filters(g: &ConvGeometry, m: usize, filter: &[f32]) -> Vec<f32> {
    let (c, rs) = (g.c, g.r * g.s);
    let mut out = vec![0.0; m * c * rs];
    for (f, taps) in filter.chunks_exact(c * rs).take(m).enumerate() {
        for (ch, plane) in taps.chunks_exact(rs).enumerate() {
            let dst = &mut out[(ch * m + f) * rs..(ch * m + f + 1) * rs];
            for (d, v) in dst.iter_mut().zip(plane.iter().rev()) {
                *d = *v;
            }
        }
    }
    out
}

/// Values a row of the zero-bordered planes (`wp`), and columns of the product.
fn widths(g: &ConvGeometry) -> (usize, usize) {
    // A row holds the ifmap row from column `pad_left` on; a window read past the row's
    // end wraps into the next row's left border, which is zero if it is wide enough.
    let reach = g.q + (g.s - 1) * g.dilation_w;
    let wp = (g.pad_left + g.w)
        .max(g.q)
        .max(reach.saturating_sub(g.pad_left));
    // Every output row `wp` wide but the last, `Q` wide.
    (wp, (g.p - 1) * wp + g.q)
}

/// Where the zero-bordered planes put things.
pub(crate) struct Layout {
    /// Values a row.
    pub(crate) wp: usize,
    /// Values a plane.
    plane: usize,
    /// Values of the planes and what the last tap's window reads past them.
    pub(crate) len: usize,
    /// Columns of the product: every output row `wp` wide but the last, `Q` wide.
    pub(crate) columns: usize,
    /// Where each tap's row starts (`k = (c, r, s)` ascending).
    pub(crate) offsets: Vec<usize>,
}

impl Layout {
    pub(crate) fn new(g: &ConvGeometry) -> Layout {
        let (dh, dw) = (g.dilation_h, g.dilation_w);
        let (wp, columns) = widths(g);
        let rows = (g.p + (g.r - 1) * dh).max(g.pad_top + g.h);
        let plane = rows * wp;
        let offsets: Vec<usize> = (0..g.c)
            .flat_map(|c| {
                (0..g.r).flat_map(move |r| (0..g.s).map(move |s| c * plane + r * dh * wp + s * dw))
            })
            .collect();
        let reads = offsets.iter().max().map_or(0, |o| o + columns);
        Layout {
            wp,
            plane,
            len: reads.max(g.c * plane),
            columns,
            offsets,
        }
    }

    /// One sample's ifmap (`C x H x W`) into `padded` (`len` values).
    pub(crate) fn fill(&self, g: &ConvGeometry, x: &[f32], padded: &mut [f32]) {
        padded.fill(0.0);
        for (xc, pc) in x.chunks_exact(g.h * g.w).zip(padded.chunks_mut(self.plane)) {
            for (i, row) in xc.chunks_exact(g.w).enumerate() {
                let at = (i + g.pad_top) * self.wp + g.pad_left;
                pc[at..at + g.w].copy_from_slice(row);
            }
        }
    }

    /// Output rows of the product (`columns` apart, channels `first..`) into `y` (`P x Q`
    /// planes), each plane then through the epilogue.
    fn store(&self, g: &ConvGeometry, first: usize, out: &[f32], y: &mut [f32], e: &Epilogue) {
        let pq = g.p * g.q;
        for (c, (yc, oc)) in y
            .chunks_exact_mut(pq)
            .zip(out.chunks_exact(self.columns))
            .enumerate()
        {
            for (i, line) in yc.chunks_exact_mut(g.q).enumerate() {
                line.copy_from_slice(&oc[i * self.wp..i * self.wp + g.q]);
            }
            e.channel(first + c, yc);
        }
    }
}

/// `y = epilogue(conv(x, filters))` for `n` samples, one sample a task; a single sample
/// of at least `split_macs` MACs in two halves of the filters (on a panel boundary) that
/// rayon may run on two cores. Each half packs the whole ifmap; halves of the output rows
/// would not, but were slower on all but large maps (2 threads, same process, alternating:
/// 28x28 5% faster, 14x14 equal, 7x7 17% and 4x4 49% slower: fewer columns a product).
#[allow(clippy::too_many_arguments)]
pub(crate) fn forward(
    g: &ConvGeometry,
    n: usize,
    filters: &PackedFilters,
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
    let columns = layout.columns;
    if n == 1 && m >= 2 * PANEL_ROWS && m * pq * crs >= split_macs {
        let half = m.div_ceil(2).next_multiple_of(PANEL_ROWS);
        return with_scratch(layout.len + m * columns, |buffer| {
            let (padded, out) = buffer.split_at_mut(layout.len);
            layout.fill(g, &x[..in_len], padded);
            let padded: &[f32] = padded;
            y[..out_len]
                .par_chunks_mut(half * pq)
                .zip(out.par_chunks_mut(half * columns))
                .enumerate()
                .for_each(|(h, (yh, oh))| {
                    let rows = h * half..h * half + yh.len() / pq;
                    let oh = &mut oh[..rows.len() * columns];
                    sgemm::product_rows(
                        filters,
                        rows.clone(),
                        columns,
                        padded,
                        &layout.offsets,
                        oh,
                    );
                    layout.store(g, rows.start, oh, yh, epilogue);
                });
        });
    }
    y[..n * out_len]
        .par_chunks_mut(out_len)
        .zip(x.par_chunks(in_len))
        .for_each(|(yi, xi)| {
            with_scratch(layout.len + m * columns, |buffer| {
                let (padded, out) = buffer.split_at_mut(layout.len);
                layout.fill(g, xi, padded);
                sgemm::product_rows(filters, 0..m, columns, padded, &layout.offsets, out);
                layout.store(g, 0, out, yi, epilogue);
            })
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The choice on resnet18's and vgg-small's 3x3 layers: implicit for 128 filters or
    /// fewer, or 28x28 maps (29 columns a row for 28); im2col for 256 filters on 7x7 (8 for 7).
    #[test]
    fn implicit_lowering_pays_where_measured() {
        let layer = |size: usize| ConvGeometry {
            c: 64,
            h: size,
            w: size,
            p: size,
            q: size,
            r: 3,
            s: 3,
            stride_h: 1,
            stride_w: 1,
            pad_top: 1,
            pad_left: 1,
            dilation_h: 1,
            dilation_w: 1,
        };
        assert!(pays(&layer(7), 128) && pays(&layer(14), 64));
        assert!(pays(&layer(28), 512) && pays(&layer(56), 256));
        assert!(!pays(&layer(7), 256) && !pays(&layer(4), 512) && !pays(&layer(14), 256));
    }

    /// Against im2col and the product, bit for bit: 3x3 and 5x5 taps, 1x3 and 3x1, paddings
    /// on one side only, a dilation, a map narrower than its padding, more filters than a
    /// panel and fewer, one sample split in two halves and two samples.
    #[test]
    fn implicit_equals_the_lowered_product_bit_for_bit() {
        if !crate::layers::lowered::avx2_kernels() {
            return;
        }
        crate::layers::lowered::check_stride_one(|g, n, m, x, f, y| {
            assert!(applies(g, 1));
            let packed = PackedFilters::new(m, g.col_rows(), f).expect("a kernel");
            // Split at batch 1 from the first test case on (its MACs are far more than 1).
            forward(g, n, &packed, x, &Epilogue::default(), 1, y);
        });
    }
}
