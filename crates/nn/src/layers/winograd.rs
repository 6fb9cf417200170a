//! 3x3 stride-1 convolution by Winograd's minimal filtering F(2x2, 3x3) (Lavin & Gray 2016):
//! each 4x4 tile of the ifmap gives a 2x2 tile of the ofmap with 16 products per (filter,
//! channel) instead of 36, so the MACs of the product fall 2.25x, and the ifmap is never
//! lowered (im2col was 15-33% of a pass).
//!
//! Three steps per block of tiles: the input transform `V = B^T d B` of every 4x4 tile of
//! every channel; 16 products `M_xi = U_xi V_xi`, one per position `xi` of the 4x4 tile,
//! with `U = G g G^T` the transformed filters (prepared once per weights, like
//! [`PackedFilters`]); the output transform `Y = A^T M A` with the epilogue. The transforms
//! add and subtract only (and halve, in `G`), so the result differs from the direct sum by
//! rounding alone: tested within 1e-4 of it.

use super::conv::Epilogue;
use crate::kernels::{wide, with_scratch, ConvGeometry};
use crate::sgemm::{product, product_packed, PackedFilters};
use rayon::prelude::*;

/// Positions of a transformed tile (4 x 4).
const XI: usize = 16;

/// Tiles transformed together: one AVX-512 vector (two AVX2 ones).
const LANES: usize = 16;

/// Tiles per block: the samples of a batch are taken together until a block has this many,
/// so that each product has a wide right-hand side (vgg-small's 7x7 layer has 20 tiles a
/// sample) while a block's transformed tiles stay in L2 (128 ran a little faster than 64
/// and 256).
const BLOCK_TILES: usize = 128;

/// What transforming one value (into or out of the 16 positions, through memory) costs,
/// in multiply-adds of the product: fitted to measurements, not derived. Winograd lost on
/// vgg-small's two 3x3 layers (32 -> 64 channels on 14x14, 64 -> 128 on 7x7: the network
/// at batch 64 took 13.2-14.1 ms against 12.6-12.8 direct, one thread), which holds the
/// value above 21; it won on resnet18 at 112x112 (batch 1 10.0-11.3 ms against 11.5-13.5,
/// batch 16 157-174 against 200-237, two threads, loaded machine, 2026-12-01), whose
/// 28x28 layers need it below 35.
const TRANSFORM_MACS: usize = 28;

/// Fewer input channels than this and each product is too shallow for its speed (a first
/// layer on grey images has one channel).
const MIN_CHANNELS: usize = 8;

/// Whether the layer can run here: 3x3, stride 1, no dilation, one group, enough channels.
pub(crate) fn applies(g: &ConvGeometry, groups: usize, m: usize) -> bool {
    groups == 1
        && (g.r, g.s) == (3, 3)
        && (g.stride_h, g.stride_w) == (1, 1)
        && (g.dilation_h, g.dilation_w) == (1, 1)
        && g.c >= MIN_CHANNELS
        && m > 0
        && g.p > 0
        && g.q > 0
}

/// Whether Winograd is expected to beat the direct kernel (im2col + product) on `n`
/// samples: fewer multiply-adds, plus the transforms at [`TRANSFORM_MACS`] a value, each
/// product's work scaled by the share of the 16 lanes its columns fill (a 4x4 ofmap at
/// batch 1 is 6 tiles wide: 6 of the 16 lanes).
///
/// On AVX2 machines, maps of 7x7 or smaller with 256 channels or fewer stay direct. Winograd
/// lost there, against the model: 16 samples, one thread, in one process, alternating
/// (AMD EPYC, 2026-12-01), direct time / Winograd time:
/// - lost: 256 -> 256 at 7x7 0.76, 128 -> 256 at 7x7 0.91, 256 -> 512 at 4x4 0.85,
///   256 -> 256 at 4x4 0.69;
/// - won: 512 -> 512 at 7x7 1.54 and at 4x4 1.97 (filters the direct kernel streams
///   again for every sample), 256 -> 256 at 14x14 1.51, 128 -> 128 at 14x14 1.24.
///
/// On AVX-512 machines the blocked kernel (16 channels a vector) takes every layer, and
/// resnet18's activations stay in channel blocks from its first layer to its pooling.
/// resnet18 on a Zen 5 (2026-12-02, a noisy host: medians of alternating processes move by
/// 10-30%), this kernel everywhere against Winograd at 28x28 and 14x14 (this rule's
/// exclusions kept), fastest pass of 4-6 rounds each: batch 1, 2 threads 4.70 against 5.02
/// ms, 1 thread 6.84 against 7.39, batch 16 52.2 against 56.8 ms (medians 0.93, 0.94 and
/// 1.03-1.05 of the time). Winograd everywhere took 1.19 of this rule's time at batch 1.
///
/// Maps of 4x4 or smaller stay direct too on AVX2 machines since the direct kernel runs the
/// output channels as lanes ([`super::blocked`]): resnet18's 512 -> 512 layers at 4x4, per
/// layer, alternating pass by pass (1 thread, 2026-12-01), took 0.82-0.89 of Winograd's time
/// at batch 1 and as long at batch 16; its 28x28 and 14x14 layers still took 1.06-1.17 of
/// Winograd's time direct.
pub(crate) fn pays(g: &ConvGeometry, n: usize, m: usize) -> bool {
    let pq = g.p * g.q;
    if crate::sgemm::avx512() {
        return false;
    }
    if crate::sgemm::avx2_only() && (pq <= 16 || (pq <= 49 && g.c <= 256)) {
        return false;
    }
    let lanes = |width: usize| width.div_ceil(16) * 16;
    let tiles = slots(g);
    let width = blocks(tiles, n).1 * tiles;
    let products = XI * g.c * m * n * tiles * lanes(width) / width;
    let transforms = TRANSFORM_MACS * XI * (g.c + m) * n * tiles;
    // The direct kernel lowers samples side by side up to 256 columns.
    let direct_width = pq * (256usize.div_ceil(pq)).clamp(1, n.max(1));
    let direct = 9 * g.c * m * n * pq * lanes(direct_width) / direct_width;
    products + transforms < direct
}

/// Columns a sample takes in the products: its `ceil(p/2)` rows of `ceil(q/2)` tiles, each
/// row with one more tile past the edge (computed and dropped: it lets one loop run over
/// the whole plane, see [`transform_plane`]).
fn slots(g: &ConvGeometry) -> usize {
    g.p.div_ceil(2) * (g.q.div_ceil(2) + 1)
}

/// (blocks, samples a block) for `n` samples of `tiles` tiles each.
fn blocks(tiles: usize, n: usize) -> (usize, usize) {
    let per = BLOCK_TILES.div_ceil(tiles.max(1)).clamp(1, n.max(1));
    (n.div_ceil(per), per)
}

/// The filters transformed, `U_xi = (G g G^T)_xi`: for each of the 16 positions an
/// `m x c` matrix, packed for our product kernel where the CPU has one (AVX-512 or AVX2).
#[derive(Clone, Debug)]
pub(crate) struct WinogradFilters {
    m: usize,
    c: usize,
    /// `XI x m x c`.
    u: Vec<f32>,
    /// One per position, or none (no kernel of ours: the `gemm` crate's product reads `u`).
    packed: Vec<PackedFilters>,
}

impl WinogradFilters {
    /// `filter`: `m x c x 3 x 3`.
    pub(crate) fn new(m: usize, c: usize, filter: &[f32]) -> WinogradFilters {
        assert!(filter.len() >= m * c * 9);
        let mut u = vec![0.0; XI * m * c];
        for (mc, g) in filter.chunks_exact(9).take(m * c).enumerate() {
            // G g (4 x 3), then (G g) G^T (4 x 4); G = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1].
            let gg: [[f32; 3]; 4] = std::array::from_fn(|i| {
                std::array::from_fn(|j| {
                    let (a, b, d) = (g[j], g[3 + j], g[6 + j]);
                    [a, 0.5 * (a + b + d), 0.5 * (a - b + d), d][i]
                })
            });
            for (i, row) in gg.iter().enumerate() {
                let [a, b, d] = *row;
                for (k, v) in [a, 0.5 * (a + b + d), 0.5 * (a - b + d), d]
                    .into_iter()
                    .enumerate()
                {
                    u[(i * 4 + k) * m * c + mc] = v;
                }
            }
        }
        let packed = (0..XI)
            .map(|xi| PackedFilters::new(m, c, &u[xi * m * c..][..m * c]))
            .collect::<Option<Vec<_>>>()
            .unwrap_or_default();
        WinogradFilters { m, c, u, packed }
    }

    pub(crate) fn filters(&self) -> usize {
        self.m
    }

    pub(crate) fn channels(&self) -> usize {
        self.c
    }

    /// `out (m x n) = U_xi v (c x n)`.
    fn product(&self, xi: usize, n: usize, v: &[f32], out: &mut [f32]) {
        match self.packed.get(xi) {
            Some(packed) => product_packed(packed, 0..self.m, n, v, out),
            None => {
                let (m, c) = (self.m, self.c);
                product(m, n, c, &self.u[xi * m * c..][..m * c], v, out)
            }
        }
    }
}

/// `y = epilogue(conv(x, filter))` for `n` samples of geometry `g` (3x3, stride 1, see
/// [`applies`]). Blocks of whole samples run in parallel, and inside a block the channels
/// of the transforms and the 16 products; the blocks follow from the batch size alone, and
/// a column of a product is summed the same way whatever its block's width, so every
/// output has the same bits at any batch size and thread count.
pub(crate) fn forward(
    g: &ConvGeometry,
    n: usize,
    filters: &WinogradFilters,
    x: &[f32],
    epilogue: &Epilogue,
    y: &mut [f32],
) {
    let (c, m) = (filters.c, filters.m);
    assert_eq!(c, g.c);
    let tiles = slots(g);
    let per = blocks(tiles, n).1;
    let (in_len, out_len) = (c * g.h * g.w, m * g.p * g.q);
    assert!(x.len() >= n * in_len && y.len() >= n * out_len);
    y[..n * out_len]
        .par_chunks_mut(per * out_len)
        .zip(x[..n * in_len].par_chunks(per * in_len))
        .for_each(|(yb, xb)| {
            let samples = yb.len() / out_len;
            let width = samples * tiles;
            with_scratch(XI * (c + m) * width, |buffer| {
                let (v, out) = buffer.split_at_mut(XI * c * width);
                transform_input(g, samples, xb, width, v);
                // One product per position: V_xi (c x width) into M_xi (m x width).
                let v: &[f32] = v;
                out.par_chunks_mut(m * width)
                    .zip(v.par_chunks(c * width))
                    .enumerate()
                    .for_each(|(xi, (o, vx))| filters.product(xi, width, vx, o));
                let out: &[f32] = out;
                for (s, ys) in yb.chunks_mut(out_len).enumerate() {
                    ys.par_chunks_mut(g.p * g.q)
                        .enumerate()
                        .with_min_len(4)
                        .for_each_init(Vec::new, |scratch, (filter, plane)| {
                            let row = |xi: usize| &out[(xi * m + filter) * width + s * tiles..];
                            let rows: [&[f32]; XI] = std::array::from_fn(row);
                            untransform_plane(g, &rows, plane, scratch);
                            epilogue.channel(filter, plane);
                        });
                }
            });
        });
}

/// The input transform of a block of `samples` samples (`xb`) into `v`: `XI` matrices
/// `V_xi` (`c x width`), row `ch` holding the tiles of channel `ch` sample after sample.
/// Channels in parallel, each task writing its rows of every `V_xi`.
fn transform_input(g: &ConvGeometry, samples: usize, xb: &[f32], width: usize, v: &mut [f32]) {
    let (c, hw) = (g.c, g.h * g.w);
    let tiles = width / samples;
    let chunk = c.div_ceil(16);
    let mut parts: Vec<Vec<&mut [f32]>> = (0..c.div_ceil(chunk))
        .map(|_| Vec::with_capacity(XI))
        .collect();
    for vx in v.chunks_exact_mut(c * width) {
        for (part, rows) in parts.iter_mut().zip(vx.chunks_mut(chunk * width)) {
            part.push(rows);
        }
    }
    parts
        .into_par_iter()
        .enumerate()
        .for_each_init(Vec::new, |scratch, (j, mut rows)| {
            let channels = chunk * j..(chunk * (j + 1)).min(c);
            for (k, ch) in channels.enumerate() {
                for s in 0..samples {
                    let plane = &xb[(s * c + ch) * hw..][..hw];
                    transform_plane(g, plane, &mut rows, k * width + s * tiles, scratch);
                }
            }
        });
}

/// The 16 transformed planes of one channel (`h x w`): `out[xi][at + t]` is position `xi`
/// of tile `t` (row-major over the `ceil(p/2) x (ceil(q/2) + 1)` tiles, see [`slots`]) of
/// `B^T d B`, with
/// `B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]` and `d` the tile's 4x4 ifmap values
/// (zero in the padding).
fn transform_plane(
    g: &ConvGeometry,
    plane: &[f32],
    out: &mut [&mut [f32]],
    at: usize,
    scratch: &mut Vec<f32>,
) {
    wide(
        #[inline(always)]
        || transform_plane_lanes(g, plane, out, at, scratch),
    )
}

#[inline(always)]
fn transform_plane_lanes(
    g: &ConvGeometry,
    plane: &[f32],
    out: &mut [&mut [f32]],
    at: usize,
    scratch: &mut Vec<f32>,
) {
    let (th, tw) = (g.p.div_ceil(2), g.q.div_ceil(2));
    // The padded ifmap split by the parity of its rows and columns into four planes of
    // `(th + 1) x (tw + 1)`: value `(2 y + a, 2 x + b)` of the padded ifmap is at
    // `parity[2 a + b][y * wq + x]`. Every value of tile `(ty, t)` is then at a fixed offset
    // from `ty * wq + t` in one of them, and one loop over all the tiles of the plane
    // transforms them (rows of tiles are too short to vectorise on their own). That loop
    // also runs over one column of tiles past the edge (`t == tw`), dropped after.
    let wq = tw + 1;
    // Past the last row a plane holds what the last, partial group of 16 tiles reads.
    let parity_len = (th + 1) * wq + LANES;
    let n = th * wq;
    scratch.resize(4 * parity_len + 2 * wq, 0.0);
    let (parity, line) = scratch.split_at_mut(4 * parity_len);
    // Ifmap columns that land inside a padded line.
    let first = g.pad_left.min(2 * wq);
    let inside = g.w.min(2 * wq - first);
    for r in 0..2 * (th + 1) {
        let row = r as isize - g.pad_top as isize;
        if row < 0 || row >= g.h as isize {
            line.fill(0.0);
        } else {
            line[..first].fill(0.0);
            line[first..first + inside].copy_from_slice(&plane[row as usize * g.w..][..inside]);
            line[first + inside..].fill(0.0);
        }
        let (a, y) = (r % 2, r / 2);
        let (even, odd) = parity.split_at_mut(parity_len);
        let (even, odd) = if a == 0 {
            (&mut even[y * wq..][..wq], &mut odd[y * wq..][..wq])
        } else {
            let (even, odd) = odd.split_at_mut(parity_len).1.split_at_mut(parity_len);
            (&mut even[y * wq..][..wq], &mut odd[y * wq..][..wq])
        };
        for (x, pair) in line.chunks_exact(2).enumerate() {
            even[x] = pair[0];
            odd[x] = pair[1];
        }
    }
    // Sixteen tiles at a time: d[r][j] is the tiles' value in row r, column j.
    for t0 in (0..n).step_by(LANES) {
        let mut d = [[[0f32; LANES]; 4]; 4];
        for (r, row) in d.iter_mut().enumerate() {
            for (j, lanes) in row.iter_mut().enumerate() {
                let at = (2 * (r % 2) + j % 2) * parity_len + (r / 2) * wq + j / 2 + t0;
                *lanes = parity[at..at + LANES].try_into().expect("16 lanes");
            }
        }
        // d B on each row, then B^T on the columns of the result.
        let mut h = [[[0f32; LANES]; 4]; 4];
        for (hr, dr) in h.iter_mut().zip(&d) {
            for l in 0..LANES {
                hr[0][l] = dr[0][l] - dr[2][l];
                hr[1][l] = dr[1][l] + dr[2][l];
                hr[2][l] = dr[2][l] - dr[1][l];
                hr[3][l] = dr[1][l] - dr[3][l];
            }
        }
        for k in 0..4 {
            let mut lanes = [[0f32; LANES]; 4];
            for l in 0..LANES {
                lanes[0][l] = h[0][k][l] - h[2][k][l];
                lanes[1][l] = h[1][k][l] + h[2][k][l];
                lanes[2][l] = h[2][k][l] - h[1][k][l];
                lanes[3][l] = h[1][k][l] - h[3][k][l];
            }
            for (i, values) in lanes.iter().enumerate() {
                let dst = &mut out[4 * i + k][at + t0..];
                if t0 + LANES <= n {
                    // A whole vector: a copy of known length, inlined (a call to memcpy
                    // per 16 values was a quarter of the time).
                    dst[..LANES].copy_from_slice(values);
                } else {
                    dst[..n - t0].copy_from_slice(&values[..n - t0]);
                }
            }
        }
    }
}

/// One ofmap plane (`p x q`) from its 16 product rows (`rows[xi][t]`, tile `t`):
/// `A^T M A` with `A^T = [1 1 1 0; 0 1 -1 -1]`, tiles past the plane's edge cut off.
fn untransform_plane(
    g: &ConvGeometry,
    rows: &[&[f32]; XI],
    plane: &mut [f32],
    scratch: &mut Vec<f32>,
) {
    wide(
        #[inline(always)]
        || untransform_plane_lanes(g, rows, plane, scratch),
    )
}

#[inline(always)]
fn untransform_plane_lanes(
    g: &ConvGeometry,
    rows: &[&[f32]; XI],
    plane: &mut [f32],
    scratch: &mut Vec<f32>,
) {
    let (th, tw) = (g.p.div_ceil(2), g.q.div_ceil(2));
    let (wq, n) = (tw + 1, slots(g));
    // One loop over all the tiles at once (a row of tiles is 4 to 14 long on the layers
    // that matter, too short to vectorise): the two lines of each tile, side by side, so
    // that line `2 ty + a` of the ofmap is `lines[a][2 ty wq..][..q]`.
    scratch.resize(4 * n, 0.0);
    let (top, bottom) = scratch.split_at_mut(2 * n);
    for t0 in (0..n).step_by(LANES) {
        let whole = t0 + LANES <= n;
        let mut m = [[0f32; LANES]; XI];
        for (lanes, row) in m.iter_mut().zip(rows) {
            if whole {
                *lanes = row[t0..t0 + LANES].try_into().expect("16 lanes");
            } else {
                lanes[..n - t0].copy_from_slice(&row[t0..n]);
            }
        }
        // A^T on the columns, then on the rows; each tile's two values of a line side by
        // side.
        let mut s = [[[0f32; LANES]; 4]; 2];
        for c in 0..4 {
            for l in 0..LANES {
                s[0][c][l] = m[c][l] + m[4 + c][l] + m[8 + c][l];
                s[1][c][l] = m[4 + c][l] - m[8 + c][l] - m[12 + c][l];
            }
        }
        for (lines, s) in [&mut *top, &mut *bottom].into_iter().zip(&s) {
            let mut y = [[0f32; LANES]; 2];
            for l in 0..LANES {
                y[0][l] = s[0][l] + s[1][l] + s[2][l];
                y[1][l] = s[1][l] - s[2][l] - s[3][l];
            }
            let mut pairs = [0f32; 2 * LANES];
            for (l, pair) in pairs.chunks_exact_mut(2).enumerate() {
                pair[0] = y[0][l];
                pair[1] = y[1][l];
            }
            if whole {
                lines[2 * t0..2 * t0 + 2 * LANES].copy_from_slice(&pairs);
            } else {
                lines[2 * t0..2 * n].copy_from_slice(&pairs[..2 * (n - t0)]);
            }
        }
    }
    for ty in 0..th {
        for (a, lines) in [&*top, &*bottom].into_iter().enumerate() {
            let row = 2 * ty + a;
            if row < g.p {
                plane[row * g.q..][..g.q].copy_from_slice(&lines[2 * ty * wq..][..g.q]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use joule_model::ops::Activation;

    fn geometry(
        c: usize,
        h: usize,
        w: usize,
        pad: (usize, usize),
        out: (usize, usize),
    ) -> ConvGeometry {
        ConvGeometry {
            c,
            h,
            w,
            p: out.0,
            q: out.1,
            r: 3,
            s: 3,
            stride_h: 1,
            stride_w: 1,
            pad_top: pad.0,
            pad_left: pad.1,
            dilation_h: 1,
            dilation_w: 1,
        }
    }

    /// The definition in f64: (sum, sum of the terms' magnitudes) of output `(s, f, y, x)`.
    fn direct(g: &ConvGeometry, m: usize, x: &[f32], filter: &[f32], at: [usize; 4]) -> (f64, f64) {
        let [s, f, oy, ox] = at;
        let (mut sum, mut scale) = (0f64, 0f64);
        for ch in 0..g.c {
            for r in 0..3 {
                for k in 0..3 {
                    let (iy, ix) = (
                        (oy + r) as isize - g.pad_top as isize,
                        (ox + k) as isize - g.pad_left as isize,
                    );
                    if iy < 0 || ix < 0 || iy >= g.h as isize || ix >= g.w as isize {
                        continue;
                    }
                    let v = x[((s * g.c + ch) * g.h + iy as usize) * g.w + ix as usize] as f64;
                    let t = v * filter[((f * g.c + ch) * 3 + r) * 3 + k] as f64;
                    sum += t;
                    scale += t.abs();
                }
            }
        }
        let _ = m;
        (sum, scale)
    }

    /// Against the definition for odd and even ofmaps (tiles cut at the edge), padding 0, 1
    /// and 2 (with a wider ofmap), more tiles in a row than one run, batches spanning
    /// several blocks; with a bias and ReLU. Within 1e-4 of the direct result (and 1e-5 of
    /// the terms' magnitudes); a sample alone gives the bits it gives in a batch.
    #[test]
    fn winograd_matches_the_direct_convolution() {
        for (n, c, m, (h, w), pad) in [
            (1, 8, 8, (4, 4), (1, 1)),
            (2, 9, 13, (7, 7), (1, 1)),
            (3, 16, 24, (14, 14), (1, 1)),
            (1, 12, 5, (9, 6), (0, 0)),
            (2, 8, 17, (5, 11), (2, 2)),
            (1, 10, 9, (3, 75), (1, 0)),
            (9, 32, 16, (5, 5), (1, 1)),
        ] {
            let (p, q) = (h + 2 * pad.0 - 2, w + 2 * pad.1 - 2);
            let g = geometry(c, h, w, pad, (p, q));
            let x: Vec<f32> = (0..n * c * h * w)
                .map(|i| ((i * 37) % 29) as f32 / 14.0 - 1.0)
                .collect();
            let filter: Vec<f32> = (0..m * c * 9)
                .map(|i| ((i * 53) % 31) as f32 / 15.0 - 1.0)
                .collect();
            let bias: Vec<f32> = (0..m).map(|f| f as f32 * 0.25 - 1.0).collect();
            let epilogue = Epilogue {
                bias: Some(&bias),
                activation: Some(Activation::Relu),
                ..Default::default()
            };
            let filters = WinogradFilters::new(m, c, &filter);
            let mut y = vec![f32::NAN; n * m * p * q];
            forward(&g, n, &filters, &x, &epilogue, &mut y);
            for s in 0..n {
                for f in 0..m {
                    for oy in 0..p {
                        for ox in 0..q {
                            let (sum, scale) = direct(&g, m, &x, &filter, [s, f, oy, ox]);
                            let want = (sum + bias[f] as f64).max(0.0);
                            let got = y[((s * m + f) * p + oy) * q + ox] as f64;
                            let err = (got - want).abs();
                            assert!(
                                err <= 1e-4 && err <= 1e-5 * scale.max(1.0),
                                "n{n} c{c} m{m} {h}x{w} pad {pad:?} at {s},{f},{oy},{ox}: {got} against {want}"
                            );
                        }
                    }
                }
            }
            let alone = m * p * q;
            let mut last = vec![f32::NAN; alone];
            forward(
                &g,
                1,
                &filters,
                &x[(n - 1) * c * h * w..],
                &epilogue,
                &mut last,
            );
            assert_eq!(
                last.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                y[(n - 1) * alone..]
                    .iter()
                    .map(|v| v.to_bits())
                    .collect::<Vec<_>>(),
                "n{n} c{c} m{m}: the last sample alone"
            );
        }
    }

    /// The choice the measurements behind [`TRANSFORM_MACS`] and [`pays`] ask for:
    /// vgg-small's 3x3 layers stay direct at batch 1 and 64, resnet18's 28x28 and 14x14
    /// ones (112x112 input) run on Winograd on AVX2 machines; a first layer on one channel
    /// never does.
    #[test]
    fn winograd_is_picked_where_it_was_measured_faster() {
        let layer = |c: usize, side: usize| geometry(c, side, side, (1, 1), (side, side));
        for n in [1, 64] {
            assert!(!pays(&layer(32, 14), n, 64), "vgg-small conv2, batch {n}");
            assert!(!pays(&layer(64, 7), n, 128), "vgg-small conv3, batch {n}");
        }
        assert!(!applies(&layer(1, 28), 1, 32), "one input channel");
        // resnet18's last stages, 512 channels at 4x4 and 256 at 7x7: direct where the
        // blocked kernel runs (AVX2 and AVX-512 machines), where Winograd lost.
        assert!(!pays(&layer(512, 4), 16, 512), "resnet18 4x4, batch 16");
        assert!(!pays(&layer(256, 7), 16, 256), "resnet18 7x7, batch 16");
        // Its 28x28 and 14x14 layers: Winograd on AVX2 machines only.
        let avx2 = crate::sgemm::avx2_only();
        for n in [1, 16] {
            assert_eq!(
                pays(&layer(64, 28), n, 64),
                avx2,
                "resnet18 28x28, batch {n}"
            );
            assert_eq!(
                pays(&layer(128, 14), n, 128),
                avx2,
                "resnet18 14x14, batch {n}"
            );
        }
    }
}
