//! Convolutions (one group) and batched FC layers with the output channels as vector lanes
//! (onnxruntime's NCHWc kernels' orientation), on AVX2 and AVX-512 machines (16 channels a
//! vector there: [`wide`], which reaches 105 GMAC/s a core inside the tile). The ifmap is
//! read from zero-bordered planes ([`Planes`]; as it is where it needs no border), each
//! tap's value for a pixel a broadcast from them. The filters are laid out once in blocks
//! of 8 output channels, each tap's 8 values side by side ([`BlockedFilters`]). A tile is 2
//! blocks (16 channels) x 6 pixels: 12 accumulators, 6 broadcasts and 2 loads a step, as the
//! product's tile, but both operands stay in L1 (a pair of blocks' filters for a block of
//! `k` is 16 KiB; the product streamed its packed filters from L2 for every tile). One
//! sample in cache, GFLOP/s here against the product (AMD EPYC, 2026-12-01): 32 -> 64
//! filters at 14x14 79.9 / 53.5, 64 -> 128 at 7x7 84.8 / 60.1, 128 -> 128 at 14x14 80.6 /
//! 49.9.
//!
//! Each output is summed as the product sums it (from zero, `k = (c, r, s)` ascending, one
//! fused multiply-add a term, blocks of [`KC`] added to the running value), so the bits are
//! the lowered product's.

use super::conv::Epilogue;
use crate::kernels::{with_scratch, ConvGeometry};
use crate::sgemm::KC;
use rayon::prelude::*;

#[cfg(target_arch = "x86_64")]
mod wide;

/// Output channels a block (a vector's lanes).
pub(crate) const BLOCK: usize = 8;

/// Pixels a tile.
const PIXELS: usize = 6;

/// `M x K` filters in blocks of `lanes` output channels (a vector's: [`BLOCK`], or 16 on
/// AVX-512 machines): block `b`, step `k`, lane `l` at `(b K + k) lanes + l` (zero past
/// `M`).
#[derive(Clone, Debug)]
pub(crate) struct BlockedFilters {
    m: usize,
    k: usize,
    lanes: usize,
    data: Vec<f32>,
    /// The layer's [`Planes`] (an ifmap in planes or blocks; prefetching or not), laid out
    /// once ([`BlockedFilters::planes`]).
    planes: Box<[std::sync::OnceLock<(ConvGeometry, Planes)>; 4]>,
}

impl BlockedFilters {
    pub(crate) fn new(m: usize, k: usize, filter: &[f32]) -> BlockedFilters {
        assert!(filter.len() >= m * k);
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            let lanes = crate::sgemm::vector_lanes();
            // The filters are `m` planes of `k` values: in blocks through 8x8 transposes,
            // every value written, into a recycled buffer. Element by element into a fresh
            // one, vgg-small's 1152 -> 512 FC layer took 1.0 ms, and a step of training
            // prepares it anew (now 0.57, 2 threads).
            let mut data = crate::buffers::overwritten(m.div_ceil(lanes) * k * lanes);
            // In tasks of a few blocks from 256 Ki values (vgg-small's FC layer, prepared
            // anew each step: 1.88-1.95 -> 1.54-1.64 ms with its forward pass, 2 threads,
            // alternating epochs in one process).
            let task = if m * k < 1 << 18 {
                m
            } else {
                FC_BLOCKS * BLOCK
            };
            data.par_chunks_mut(task.div_ceil(lanes) * k * lanes)
                .enumerate()
                .for_each(|(t, out)| {
                    let first = t * task;
                    let rows = (m - first).min(task);
                    // SAFETY: the CPU has AVX2; `filter` holds `m x k` values, `out` this
                    // task's blocks.
                    unsafe { block_avx2(rows, k, &filter[first * k..], k * lanes, lanes, out) };
                });
            return BlockedFilters {
                m,
                k,
                lanes,
                data,
                planes: Default::default(),
            };
        }
        let blocks = m.div_ceil(BLOCK);
        let mut data = vec![0.0; blocks * k * BLOCK];
        for (f, taps) in filter.chunks_exact(k.max(1)).take(m).enumerate() {
            let (b, l) = (f / BLOCK, f % BLOCK);
            for (kk, v) in taps.iter().enumerate() {
                data[(b * k + kk) * BLOCK + l] = *v;
            }
        }
        BlockedFilters {
            m,
            k,
            lanes: BLOCK,
            data,
            planes: Default::default(),
        }
    }

    pub(crate) fn rows(&self) -> usize {
        self.m
    }

    pub(crate) fn depth(&self) -> usize {
        self.k
    }

    /// Blocks of [`BLOCK`] outputs.
    fn blocks(&self) -> usize {
        self.m.div_ceil(BLOCK)
    }

    /// [`Planes::of`] for this layer's geometry `g`, prefetching the filters or not: laid
    /// out on the first pass and kept (their offsets and bases were built anew for every
    /// layer of every pass, 3.6% of mobilenet_v2's time at batch 1).
    fn planes(
        &self,
        g: &ConvGeometry,
        x_blocks: bool,
        prefetch: bool,
    ) -> std::borrow::Cow<'_, Planes> {
        let of = || {
            let mut planes = Planes::of(g, x_blocks);
            planes.prefetch = prefetch;
            planes
        };
        let slot = &self.planes[2 * usize::from(x_blocks) + usize::from(prefetch)];
        match slot.get_or_init(|| (*g, of())) {
            (kept, planes) if kept == g => std::borrow::Cow::Borrowed(planes),
            _ => std::borrow::Cow::Owned(of()),
        }
    }

    /// Where a sample's blocks split in two halves for two cores: a whole vector of
    /// filters each (`None` where there is one).
    fn halves(&self) -> Option<usize> {
        let per = self.lanes / BLOCK;
        let vectors = self.m.div_ceil(self.lanes);
        (vectors >= 2).then(|| vectors.div_ceil(2) * per)
    }
}

impl Drop for BlockedFilters {
    fn drop(&mut self) {
        crate::buffers::recycle(std::mem::take(&mut self.data));
    }
}

/// Whether [`forward`] runs this layer: the AVX2 and AVX-512 kernels' machines, one group.
pub(crate) fn applies(g: &ConvGeometry, groups: usize) -> bool {
    (crate::sgemm::avx2_only() || crate::sgemm::avx512()) && groups == 1 && g.p > 0 && g.q > 0
}

/// Input channels from which a 1x1 stride-1 layer runs here rather than on the product
/// reading its ifmap in place: with fewer, each tile's few steps do not pay for its stores
/// and the transposes back to planes. mobilenet_v2 at batch 16, one thread, per layer,
/// alternating pass by pass (AMD EPYC, 2026-12-01), time here against the product: 16-160
/// channels in 1.05-1.99 (the 32 -> 16 layer 1.99), 192 -> 32 0.84, 576 and 960 -> 160 and
/// 320 0.82-0.85; every other layer (3x3, strided, 7x7) gained: the first layer 0.65.
const POINTWISE_DEPTH: usize = 192;

/// Whether this kernel is expected to beat the product on the layer: every layer the
/// product reads lowered (im2col or implicitly), and 1x1 layers of [`POINTWISE_DEPTH`] input
/// channels or more; every layer on AVX-512 machines (see `conv::channel_blocks`).
pub(crate) fn pays(g: &ConvGeometry) -> bool {
    !g.is_pointwise() || g.c >= POINTWISE_DEPTH || crate::sgemm::avx512()
}

/// Where [`sample`] reads the ifmap: `C` planes of `rows x wp` values, the ifmap inside a
/// zero border (or the ifmap as it is, where no tap reads past it); or, for an ifmap in
/// channel blocks ([`crate::kernels::blocks`]), `C / 8` such planes of 8-channel pixels.
#[derive(Clone, Debug)]
pub(crate) struct Planes {
    /// Channels a pixel holds side by side: 1 (planes) or [`BLOCK`] (channel blocks).
    lanes: usize,
    /// Pixels a row.
    wp: usize,
    /// Pixels a plane.
    plane: usize,
    /// Values of the planes; 0 where the ifmap is read as it is.
    len: usize,
    /// Where tap `k = (c, r, s)` lies from a pixel's base.
    offsets: Vec<usize>,
    /// Where each output pixel's first tap lies.
    bases: Vec<usize>,
    /// The filters are read once (one sample): the tile prefetches them.
    prefetch: bool,
}

impl Planes {
    pub(crate) fn new(g: &ConvGeometry) -> Planes {
        Planes::of(g, false)
    }

    /// [`new`](Self::new) for an ifmap in planes or (`blocks`) in channel blocks, `C` a
    /// multiple of [`BLOCK`] there. In blocks tap `(c, r, s)` lies `c % 8` from its pixel's
    /// first channel, in block `c / 8`: the taps of a block's channels side by side.
    pub(crate) fn of(g: &ConvGeometry, blocks: bool) -> Planes {
        let lanes = if blocks { BLOCK } else { 1 };
        assert!(g.c.is_multiple_of(lanes));
        let (dh, dw) = (g.dilation_h, g.dilation_w);
        let rows = ((g.p - 1) * g.stride_h + (g.r - 1) * dh + 1).max(g.pad_top + g.h);
        let wp = ((g.q - 1) * g.stride_w + (g.s - 1) * dw + 1).max(g.pad_left + g.w);
        let bare = g.pad_top == 0 && g.pad_left == 0 && rows == g.h && wp == g.w;
        let plane = rows * wp;
        // Plain loops: built on every call, and nested `flat_map`s took a third of
        // vgg-small's first layer at batch 1 (10 us, 784 pixels).
        let mut offsets = Vec::with_capacity(g.c * g.r * g.s);
        for c in 0..g.c {
            let first = c / lanes * plane * lanes + c % lanes;
            for r in 0..g.r {
                for s in 0..g.s {
                    offsets.push(first + (r * dh * wp + s * dw) * lanes);
                }
            }
        }
        let mut bases = Vec::with_capacity(g.p * g.q);
        for i in 0..g.p {
            let row = i * g.stride_h * wp;
            for j in 0..g.q {
                bases.push((row + j * g.stride_w) * lanes);
            }
        }
        Planes {
            lanes,
            wp,
            plane,
            len: if bare { 0 } else { g.c * plane },
            offsets,
            bases,
            prefetch: false,
        }
    }

    /// These planes for `group` samples side by side, each `sample` values past the one
    /// before: their pixels one after another.
    fn side_by_side(&self, group: usize, sample: usize) -> Planes {
        let bases = (0..group)
            .flat_map(|s| self.bases.iter().map(move |b| s * sample + b))
            .collect();
        Planes {
            bases,
            ..self.clone()
        }
    }

    /// One sample's ifmap (`C x H x W`, in planes or channel blocks as laid out for) inside
    /// its zero border (nothing to do where [`len`](Self::len) is 0).
    fn fill(&self, g: &ConvGeometry, x: &[f32], padded: &mut [f32]) {
        if self.len == 0 {
            return;
        }
        assert!(x.len() >= g.c * g.h * g.w && padded.len() >= self.len);
        if self.lanes > 1 {
            // Each block's rows of `W` 8-channel pixels, whole: a copy a row.
            let padded = &mut padded[..self.len];
            padded.fill(0.0);
            let (row, block) = (g.w * self.lanes, self.plane * self.lanes);
            for (xb, pb) in x
                .chunks_exact(g.h * row)
                .zip(padded.chunks_exact_mut(block))
            {
                let first = (g.pad_top * self.wp + g.pad_left) * self.lanes;
                for (i, line) in xb.chunks_exact(row).enumerate() {
                    pb[first + i * self.wp * self.lanes..][..row].copy_from_slice(line);
                }
            }
            return;
        }
        #[cfg(target_arch = "x86_64")]
        if crate::sgemm::avx2_only() || crate::sgemm::avx512() {
            // SAFETY: AVX2 (either kernel's machines); the lengths are asserted.
            return unsafe { self.fill_avx2(g, x, padded) };
        }
        self.fill_lines(g, x, padded)
    }

    /// [`fill`](Self::fill) through the slices' own `fill` and `copy_from_slice`.
    fn fill_lines(&self, g: &ConvGeometry, x: &[f32], padded: &mut [f32]) {
        for (xc, pc) in x
            .chunks_exact(g.h * g.w)
            .zip(padded.chunks_exact_mut(self.plane))
        {
            pc[..g.pad_top * self.wp].fill(0.0);
            let inside = &mut pc[g.pad_top * self.wp..(g.pad_top + g.h) * self.wp];
            for (line, dst) in xc.chunks_exact(g.w).zip(inside.chunks_exact_mut(self.wp)) {
                dst[..g.pad_left].fill(0.0);
                dst[g.pad_left..g.pad_left + g.w].copy_from_slice(line);
                dst[g.pad_left + g.w..].fill(0.0);
            }
            pc[(g.pad_top + g.h) * self.wp..].fill(0.0);
        }
    }
}

impl Planes {
    /// [`fill`](Self::fill) in vector moves: the planes zeroed at once, then each line
    /// copied in whole vectors, its last one loaded masked (zeros past the line) and stored
    /// whole: what it writes past the line is border, or a later line's place (lines go in
    /// order). The slices' `fill` and `copy_from_slice` called the C library for every
    /// border and line (vgg-small's 14-value lines), and masked stores are slow on AMD's
    /// cores.
    ///
    /// # Safety
    /// AVX2; `x` holds `C x H x W` values and `padded` [`len`](Self::len).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn fill_avx2(&self, g: &ConvGeometry, x: &[f32], padded: &mut [f32]) {
        use std::arch::x86_64::*;
        let padded = &mut padded[..self.len];
        padded.fill(0.0);
        let (src, dst, end) = (x.as_ptr(), padded.as_mut_ptr(), self.len);
        let tail = g.w % 8;
        let mask = crate::sgemm::first_lanes(tail);
        for c in 0..g.c {
            for i in 0..g.h {
                let (from, to) = (
                    (c * g.h + i) * g.w,
                    c * self.plane + (g.pad_top + i) * self.wp,
                );
                let (from, to) = (src.add(from), to + g.pad_left);
                let mut j = 0;
                while j + 8 <= g.w {
                    _mm256_storeu_ps(dst.add(to + j), _mm256_loadu_ps(from.add(j)));
                    j += 8;
                }
                if tail == 0 {
                    continue;
                }
                if to + j + 8 <= end {
                    _mm256_storeu_ps(dst.add(to + j), _mm256_maskload_ps(from.add(j), mask));
                } else {
                    for t in j..g.w {
                        *dst.add(to + t) = *from.add(t);
                    }
                }
            }
        }
    }
}

/// `y = epilogue(conv(x, filters))` for `n` samples, one sample a task; a single sample of
/// at least `split_macs` MACs in two halves of the blocks that rayon may run on two cores.
/// `x_blocks`: the ifmap in channel blocks (`C` a multiple of [`BLOCK`]), not planes.
#[allow(clippy::too_many_arguments)]
pub(crate) fn forward(
    g: &ConvGeometry,
    n: usize,
    filters: &BlockedFilters,
    (x, x_blocks): (&[f32], bool),
    epilogue: &Epilogue,
    split_macs: usize,
    y: &mut [f32],
) {
    let (m, crs, pq) = (filters.rows(), g.col_rows(), g.p * g.q);
    assert!(applies(g, 1) && filters.depth() == crs);
    let (in_len, out_len) = (g.c * g.h * g.w, m * pq);
    assert!(x.len() >= n * in_len && y.len() >= n * out_len);
    // One sample reads each filter once.
    let planes = filters.planes(g, x_blocks, n == 1);
    let blocks = filters.blocks();
    let out_values = blocks * pq * BLOCK;
    if let (1, Some(half), true) = (n, filters.halves(), m * pq * crs >= split_macs) {
        return with_scratch(planes.len + out_values, |buffer| {
            let (padded, out) = buffer.split_at_mut(planes.len);
            planes.fill(g, &x[..in_len], padded);
            let src: &[f32] = if planes.len == 0 {
                &x[..in_len]
            } else {
                padded
            };
            let (out0, out1) = out.split_at_mut(half * pq * BLOCK);
            let (y0, y1) = y[..out_len].split_at_mut(half * BLOCK * pq);
            let part = |range: std::ops::Range<usize>, out: &mut [f32], y: &mut [f32]| {
                // SAFETY: `applies` checked AVX2 (with FMA, `avx2_only`).
                unsafe { sample(&planes, filters, range.clone(), src, out) };
                store(g, range, m, out, y, epilogue);
            };
            rayon::join(|| part(0..half, out0, y0), || part(half..blocks, out1, y1));
        });
    }
    y[..n * out_len]
        .par_chunks_mut(out_len)
        .zip(x.par_chunks(in_len))
        .for_each(|(yi, xi)| {
            with_scratch(planes.len + out_values, |buffer| {
                let (padded, out) = buffer.split_at_mut(planes.len);
                planes.fill(g, xi, padded);
                let src: &[f32] = if planes.len == 0 { xi } else { padded };
                // SAFETY: as above.
                unsafe { sample(&planes, filters, 0..blocks, src, out) };
                store(g, 0..blocks, m, out, yi, epilogue);
            })
        });
}

/// Where one sample's pixels split in two for two cores ([`forward_blocks`]), where its
/// filters do not split evenly in whole vectors (16 or fewer, 24, 48): AVX-512 machines
/// (the tile that writes some pixels of every block), two tiles of pixels or more. mobilenet_v2 at batch 1, 2 threads (2026-12-02, fastest of 500 runs per layer):
/// its 32 -> 16 layer at 56x56 took as long on two threads as on one (31 us), the 144 -> 24
/// at 28x28 split 16 + 8 filters 1.5x faster.
pub(super) fn pixel_halves(filters: &BlockedFilters, pq: usize) -> Option<usize> {
    // The filters' halves, whole vectors each: 16 + 8 of 24 filters, say.
    let first = filters
        .halves()
        .map_or(filters.m, |h| (h * BLOCK).min(filters.m));
    let even = first - (filters.m - first) <= filters.m / 8;
    (crate::sgemm::avx512() && !even && pq >= 2 * wide::TILE_PIXELS)
        .then(|| (pq / 2).next_multiple_of(wide::TILE_PIXELS).min(pq))
}

/// The epilogue [`forward_blocks`] runs on a run of blocks: `(blocks, at, values)`.
pub(crate) type OnBlocks<'a> = dyn Fn(std::ops::Range<usize>, usize, &mut [f32]) + Sync + 'a;

/// [`forward`] into channel blocks ([`crate::kernels::blocks`]): the kernel's own output
/// layout, written into `y` where it lies, with no transpose back to planes; `finish(blocks,
/// at, values)` then runs on each computed run of blocks of one sample (the epilogue): all
/// of their pixels, or (one sample split by pixels) one block's run of them, `values` being
/// `y[at..at + values.len()]`. `m` a multiple of [`BLOCK`]; the ifmap in planes or
/// (`x_blocks`) in channel blocks.
pub(crate) fn forward_blocks(
    g: &ConvGeometry,
    n: usize,
    filters: &BlockedFilters,
    (x, x_blocks): (&[f32], bool),
    finish: &OnBlocks,
    split_macs: usize,
    y: &mut [f32],
) {
    let (m, crs, pq) = (filters.rows(), g.col_rows(), g.p * g.q);
    assert!(applies(g, 1) && filters.depth() == crs && m.is_multiple_of(BLOCK));
    let (in_len, out_len) = (g.c * g.h * g.w, m * pq);
    assert!(x.len() >= n * in_len && y.len() >= n * out_len);
    let planes = filters.planes(g, x_blocks, n == 1);
    let blocks = filters.blocks();
    // `out` is `y[at..]`.
    let run = |xi: &[f32], range: std::ops::Range<usize>, at: usize, out: &mut [f32], p: &[f32]| {
        let src: &[f32] = if planes.len == 0 { xi } else { p };
        // SAFETY: `applies` checked AVX2 (with FMA, `avx2_only`).
        unsafe { sample(&planes, filters, range.clone(), src, out) };
        finish(range, at, out);
    };
    #[cfg(target_arch = "x86_64")]
    if let (1, Some(first), true) = (n, pixel_halves(filters, pq), m * pq * crs >= split_macs) {
        return with_scratch(planes.len, |padded| {
            planes.fill(g, &x[..in_len], padded);
            let src: &[f32] = if planes.len == 0 {
                &x[..in_len]
            } else {
                padded
            };
            /// `y`, whose pixels the two halves write apart.
            struct Out(*mut f32);
            // SAFETY: each half writes only its own pixels of every block.
            unsafe impl Sync for Out {}
            let out = Out(y.as_mut_ptr());
            let half = |pixels: std::ops::Range<usize>| {
                let out = &out;
                // SAFETY: `pixel_halves` holds on AVX-512 machines only; `y` holds every
                // block's `pq` pixels (asserted), of which this half writes and finishes
                // only `pixels`.
                unsafe {
                    wide::sample_pixels(&planes, filters, 0..blocks, pixels.clone(), src, out.0);
                    for b in 0..blocks {
                        let at = (b * pq + pixels.start) * BLOCK;
                        let values =
                            std::slice::from_raw_parts_mut(out.0.add(at), pixels.len() * BLOCK);
                        finish(b..b + 1, at, values);
                    }
                }
            };
            rayon::join(|| half(0..first), || half(first..pq));
        });
    }
    if let (1, Some(half), true) = (n, filters.halves(), m * pq * crs >= split_macs) {
        return with_scratch(planes.len, |padded| {
            planes.fill(g, &x[..in_len], padded);
            let (y0, y1) = y[..out_len].split_at_mut(half * BLOCK * pq);
            let padded: &[f32] = padded;
            let at = half * BLOCK * pq;
            rayon::join(
                || run(&x[..in_len], 0..half, 0, y0, padded),
                || run(&x[..in_len], half..blocks, at, y1, padded),
            );
        });
    }
    #[cfg(target_arch = "x86_64")]
    if let Some((share, group)) = side_by_side(filters, pq, n) {
        // Each group's samples' pixels one after another: every tile of filters runs over
        // all of them while it is in cache, into `out` (block `b`, pixel `x` of sample `s`
        // at `(b group P Q + s P Q + x) BLOCK`), then each sample's blocks go to `y`.
        let sample_src = if planes.len == 0 { in_len } else { planes.len };
        let mut joint = planes.side_by_side(group, sample_src);
        // A group reads each filter once, as one sample does.
        joint.prefetch = true;
        let stride = group * pq * BLOCK;
        let run_group = |first: usize, xg: &[f32], yg: &mut [f32]| {
            let count = yg.len() / out_len;
            let padded_len = count * planes.len;
            with_scratch(padded_len + blocks * stride, |buffer| {
                let (padded, out) = buffer.split_at_mut(padded_len);
                if planes.len > 0 {
                    let samples = xg.chunks_exact(in_len);
                    for (xi, p) in samples.zip(padded.chunks_exact_mut(planes.len)) {
                        planes.fill(g, xi, p);
                    }
                }
                let src: &[f32] = if planes.len == 0 { xg } else { padded };
                let (pixels, out) = (0..count * pq, out.as_mut_ptr());
                // SAFETY: `side_by_side` holds on AVX-512 machines only; `out` holds
                // `blocks` blocks of the group's pixels, the task's own.
                unsafe { wide::sample_pixels(&joint, filters, 0..blocks, pixels, src, out) };
                let out: &[f32] = &buffer[padded_len..];
                for (s, yi) in yg.chunks_exact_mut(out_len).enumerate() {
                    for (b, yb) in yi.chunks_exact_mut(pq * BLOCK).enumerate() {
                        yb.copy_from_slice(&out[b * stride + s * pq * BLOCK..][..pq * BLOCK]);
                    }
                    finish(0..blocks, (first + s) * out_len, yi);
                }
            })
        };
        y[..n * out_len]
            .par_chunks_mut(share * out_len)
            .zip(x[..n * in_len].par_chunks(share * in_len))
            .enumerate()
            .for_each(|(i, (ys, xs))| {
                let groups = ys
                    .chunks_mut(group * out_len)
                    .zip(xs.chunks(group * in_len));
                for (j, (yg, xg)) in groups.enumerate() {
                    run_group(i * share + j * group, xg, yg);
                }
            });
        return;
    }
    y[..n * out_len]
        .par_chunks_mut(out_len)
        .zip(x.par_chunks(in_len))
        .enumerate()
        .for_each(|(i, (yi, xi))| {
            with_scratch(planes.len, |padded| {
                planes.fill(g, xi, padded);
                run(xi, 0..blocks, i * out_len, yi, padded);
            })
        });
}

/// Pixels a group of samples holds at most where [`forward_blocks`] runs samples of small
/// ofmaps side by side ([`side_by_side`]): ofmaps of half as many pixels or fewer. resnet18's
/// 14 x 14 layers in pairs (batch 16, 2 threads) took 1.00-1.07 of the time.
const GROUP_PIXELS: usize = 256;

/// How [`forward_blocks`] runs samples side by side, their pixels in one run, on AVX-512
/// machines where a sample has at most half of [`GROUP_PIXELS`] pixels: `(share, group)`,
/// each thread's share of the batch, in groups of at most that many pixels (each share in
/// groups of equal size, but for the last). One sample a task re-read every block of filters
/// for each sample's few tiles: resnet18's 4 x 4 layers at batch 16 took 0.9 of the time
/// side by side. Equal shares: in 3 groups of 6 on two threads its 7 x 7 layers took 1.12.
fn side_by_side(filters: &BlockedFilters, pq: usize, n: usize) -> Option<(usize, usize)> {
    let threads = rayon::current_num_threads().max(1);
    let share = n.div_ceil(threads);
    let wanted = GROUP_PIXELS.div_ceil(pq.max(1));
    let group = share.div_ceil(share.div_ceil(wanted));
    let small = 2 * pq <= GROUP_PIXELS;
    (filters.lanes == wide::LANES && small && group > 1).then_some((share, group))
}

/// Whether [`forward_pooled`] runs this layer with a 2x2 max pooling of stride 2 after it:
/// the AVX-512 tile's machines, `m` whole blocks of [`BLOCK`].
pub(crate) fn pools_in_tile(g: &ConvGeometry, m: usize) -> bool {
    crate::sgemm::avx512() && applies(g, 1) && m.is_multiple_of(BLOCK) && g.p >= 2 && g.q >= 2
}

/// The pixels' bases in 2x2 windows' order (window `(i, j)` of the `P/2 x Q/2` the pooling
/// keeps: pixels `(2i, 2j)`, `(2i, 2j + 1)`, `(2i + 1, 2j)`, `(2i + 1, 2j + 1)`): an odd last
/// row or column, which no window reads, is not computed.
fn pooled_bases(planes: &mut Planes, g: &ConvGeometry) {
    let bases = std::mem::take(&mut planes.bases);
    let mut pooled = Vec::with_capacity(bases.len());
    for i in (0..g.p / 2).map(|i| 2 * i * g.q) {
        for j in (0..g.q / 2).map(|j| i + 2 * j) {
            pooled.extend_from_slice(&[bases[j], bases[j + 1], bases[j + g.q], bases[j + g.q + 1]]);
        }
    }
    planes.bases = pooled;
}

/// `y = maxpool2x2(finish(conv(x, filters)))` into channel blocks ([`crate::kernels::blocks`]),
/// the pooling (stride 2, no padding, the output's size rounded down) and the epilogue's
/// steps (`finish`) in the tile ([`wide::sample_pooled`]): the ofmap before the pooling is
/// never written (vgg-small's layers wrote and read back 4x the values they keep, and
/// computed its 7x7 layer's last row and column, which its pooling drops). The bits of
/// [`forward_blocks`] with `finish` and then [`crate::layers::pool_inference_blocks`].
/// `m` a multiple of [`BLOCK`], [`pools_in_tile`] holding; the ifmap in planes or
/// (`x_blocks`) in channel blocks.
pub(crate) fn forward_pooled(
    g: &ConvGeometry,
    n: usize,
    filters: &BlockedFilters,
    (x, x_blocks): (&[f32], bool),
    finish: &crate::kernels::blocks::Finish,
    split_macs: usize,
    y: &mut [f32],
) {
    let (m, crs) = (filters.rows(), g.col_rows());
    assert!(pools_in_tile(g, m) && filters.depth() == crs);
    let windows = (g.p / 2) * (g.q / 2);
    let (in_len, out_len) = (g.c * g.h * g.w, m * windows);
    assert!(x.len() >= n * in_len && y.len() >= n * out_len);
    let mut planes = Planes::of(g, x_blocks);
    pooled_bases(&mut planes, g);
    planes.prefetch = n == 1;
    let blocks = filters.blocks();
    let partial_len = if crs > KC {
        blocks * 4 * windows * BLOCK
    } else {
        0
    };
    let run = |xi: &[f32],
               range: std::ops::Range<usize>,
               out: &mut [f32],
               padded: &[f32],
               partial: &mut [f32]| {
        let src: &[f32] = if planes.len == 0 { xi } else { padded };
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `pools_in_tile` checked AVX-512 (filters in blocks of 16 there); `finish`
        // covers the layer's `m` channels.
        unsafe {
            wide::sample_pooled(&planes, filters, range, src, finish, partial, out)
        };
        #[cfg(not(target_arch = "x86_64"))]
        unreachable!(
            "pools_in_tile holds on AVX-512 machines only: {:?} {}",
            range,
            out.len() + src.len() + partial.len()
        );
    };
    if let (1, Some(half), true) = (n, filters.halves(), m * 4 * windows * crs >= split_macs) {
        return with_scratch(planes.len + 2 * partial_len, |scratch| {
            let (padded, partials) = scratch.split_at_mut(planes.len);
            planes.fill(g, &x[..in_len], padded);
            let (p0, p1) = partials.split_at_mut(partial_len);
            let (y0, y1) = y[..out_len].split_at_mut(half * BLOCK * windows);
            let (xi, padded): (&[f32], &[f32]) = (&x[..in_len], padded);
            rayon::join(
                || run(xi, 0..half, y0, padded, p0),
                || run(xi, half..blocks, y1, padded, p1),
            );
        });
    }
    y[..n * out_len]
        .par_chunks_mut(out_len)
        .zip(x.par_chunks(in_len))
        .for_each(|(yi, xi)| {
            with_scratch(planes.len + partial_len, |scratch| {
                let (padded, partial) = scratch.split_at_mut(planes.len);
                planes.fill(g, xi, padded);
                run(xi, 0..blocks, yi, padded, partial);
            })
        });
}

/// Pixels of a run of steps in the weight gradient: samples go side by side up to this
/// many (vgg-small's 7x7 layer: 8 samples, 392 steps a tile instead of 49; its 14x14 layer
/// 2). Each tile loads and stores its accumulators once a run: the 7x7 layer's weight
/// gradient at batch 64 took 5.57 instead of 6.05 ms a step, alternating epochs. Capped so
/// that a run's planes and `dY` blocks stay about the size of one 14x14 sample's.
const STEPS_SIDE_BY_SIDE: usize = 512;

/// Samples [`weight_gradient_samples`] takes side by side (at least 1).
pub(crate) fn weight_gradient_group(g: &ConvGeometry) -> usize {
    (STEPS_SIDE_BY_SIDE / (g.p * g.q).max(1)).max(1)
}

/// Values of scratch [`weight_gradient_samples`] needs for `n` samples and `m` filters.
pub(crate) fn weight_gradient_scratch(
    planes: &Planes,
    g: &ConvGeometry,
    m: usize,
    n: usize,
) -> usize {
    let lanes = crate::sgemm::vector_lanes();
    n * (planes.len + m.div_ceil(lanes) * g.p * g.q * lanes)
}

/// Values of the blocked weight gradient ([`weight_gradient_samples`]'s `acc`).
pub(crate) fn weight_gradient_len(m: usize, k: usize) -> usize {
    m.div_ceil(BLOCK) * k * BLOCK
}

/// `n` samples' weight gradient added into `acc` (`M x K` in blocks, as [`BlockedFilters`]
/// lays filters out): `dW[f][k] += sum over samples and pixels x of dY[f][x] *
/// ifmap[tap k of x]`, the filters on the lanes, `dY` turned into vectors of 8 filters (16
/// on AVX-512 machines, [`wide::weight_gradient`]) first.
/// The forward tile with the roles turned: its steps are the samples' output pixels side by
/// side, its 6 columns 6 taps, so the `K x M` result stays in registers over the steps (the
/// lowered product, which ran it, streamed a lowered ifmap and `dY` transposed through its
/// packing). Each sum is the product's on the samples' lowered matrices side by side
/// (steps ascending in blocks of [`KC`], each block from zero and added to `acc`), so the
/// bits are `product_add`'s on them.
#[allow(clippy::too_many_arguments)]
pub(crate) fn weight_gradient_samples(
    g: &ConvGeometry,
    planes: &Planes,
    m: usize,
    n: usize,
    x: &[f32],
    dy: &[f32],
    scratch: &mut [f32],
    acc: &mut [f32],
) {
    let (k, pq, in_len) = (g.col_rows(), g.p * g.q, g.c * g.h * g.w);
    let (blocks, steps, lanes) = (m.div_ceil(BLOCK), n * pq, crate::sgemm::vector_lanes());
    assert!(crate::sgemm::avx2_only() || crate::sgemm::avx512());
    assert!(planes.offsets.len() == k);
    assert!(x.len() >= n * in_len && dy.len() >= n * m * pq);
    assert!(acc.len() >= weight_gradient_len(m, k));
    let scratch = &mut scratch[..weight_gradient_scratch(planes, g, m, n)];
    let (padded, dyb) = scratch.split_at_mut(n * planes.len);
    for (xi, pi) in x.chunks(in_len).zip(padded.chunks_mut(planes.len.max(1))) {
        planes.fill(g, xi, pi);
    }
    let (src, apart): (&[f32], usize) = if planes.len == 0 {
        (&x[..n * in_len], in_len)
    } else {
        (padded, planes.len)
    };
    // Each step's (sample's pixel's) base.
    let bases: Vec<usize> = (0..n)
        .flat_map(|i| planes.bases.iter().map(move |b| i * apart + b))
        .collect();
    let reach = planes.offsets.iter().max().copied().unwrap_or(0);
    assert!(bases.iter().all(|b| b + reach < src.len()));
    #[cfg(target_arch = "x86_64")]
    // SAFETY: AVX2 and FMA, or AVX-512 where `lanes` is 16 (asserted); `dyb` holds every
    // vector's steps, `acc` every block's taps, and every tap of every step lies in `src`
    // (asserted).
    unsafe {
        // Vector `v`, sample `i`, pixel `x` at `(v n PQ + i PQ + x) lanes`.
        for (i, dyi) in dy.chunks(m * pq).take(n).enumerate() {
            block_avx2(m, pq, dyi, steps * lanes, lanes, &mut dyb[i * pq * lanes..]);
        }
        if lanes != BLOCK {
            let src = (src, bases.as_slice());
            let acc = &mut acc[..weight_gradient_len(m, k)];
            return wide::weight_gradient(planes, k, steps, src, dyb, acc);
        }
        for s0 in (0..steps).step_by(KC) {
            let run = s0..(s0 + KC).min(steps);
            let mut b = 0;
            while b < blocks {
                let pair = (blocks - b).min(2);
                for (t, taps) in planes.offsets.chunks(PIXELS).enumerate() {
                    let tile = Tile {
                        filters: dyb.as_ptr().add(b * steps * BLOCK),
                        stride: steps * BLOCK,
                        steps: run.clone(),
                        offsets: &bases,
                        src: src.as_ptr(),
                        bases: taps,
                        out: acc.as_mut_ptr().add((b * k + t * PIXELS) * BLOCK),
                        out_stride: k * BLOCK,
                        halves: pair,
                        add: true,
                        prefetch: false,
                    };
                    tile.run_any(pair);
                }
                b += pair;
            }
        }
    }
}

/// `dw (M x K) += acc` (the blocks [`weight_gradient_samples`] adds into).
pub(crate) fn add_unblocked_weights(m: usize, k: usize, acc: &[f32], dw: &mut [f32]) {
    assert!(acc.len() >= weight_gradient_len(m, k) && dw.len() >= m * k);
    for (f, row) in dw[..m * k].chunks_exact_mut(k.max(1)).enumerate() {
        let (b, l) = (f / BLOCK, f % BLOCK);
        for (kk, v) in row.iter_mut().enumerate() {
            *v += acc[(b * k + kk) * BLOCK + l];
        }
    }
}

/// One sample's `m` planes of `pq` values into blocks of `width` (8 or 16) channels
/// (`out`: block `b`, pixel `x`, lane `l` at `b stride + x width + l`; lanes past `m` zero),
/// 8 lanes at a time.
///
/// # Safety
/// AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn block_avx2(
    m: usize,
    pq: usize,
    planes: &[f32],
    stride: usize,
    width: usize,
    out: &mut [f32],
) {
    use std::arch::x86_64::*;
    let (per, blocks) = (width / BLOCK, m.div_ceil(width));
    assert!(width.is_multiple_of(BLOCK) && stride >= pq * width);
    assert!(planes.len() >= m * pq && out.len() >= blocks.saturating_sub(1) * stride + pq * width);
    for b in 0..blocks * per {
        let lanes = m.saturating_sub(b * BLOCK).min(BLOCK);
        let (src, dst) = (
            planes.as_ptr().wrapping_add(b * BLOCK * pq),
            out.as_mut_ptr().add(b / per * stride + b % per * BLOCK),
        );
        let mut j = 0;
        while j + 8 <= pq {
            // Lanes past `m` zero (no plane to read).
            let lines: [__m256; 8] = std::array::from_fn(|l| {
                if l < lanes {
                    _mm256_loadu_ps(src.add(l * pq + j))
                } else {
                    _mm256_setzero_ps()
                }
            });
            for (t, pixel) in crate::sgemm::transpose8(lines).into_iter().enumerate() {
                _mm256_storeu_ps(dst.add((j + t) * width), pixel);
            }
            j += 8;
        }
        for j in j..pq {
            for l in 0..BLOCK {
                *dst.add(j * width + l) = if l < lanes { *src.add(l * pq + j) } else { 0.0 };
            }
        }
    }
}

/// Blocks of outputs an FC task takes (32 features): fixed, so that the split never
/// depends on the thread count.
const FC_BLOCKS: usize = 4;

/// `y (N x M) = x (N x K) W^T` with the output features as lanes: each sample a pixel
/// whose `K` taps lie side by side, every sample in each task, tasks of [`FC_BLOCKS`] blocks
/// (a task of a few samples streamed all the weights from L3 for few tiles: vgg-small's
/// 1152 -> 256 layer at batch 64 took 1.4 times as long in tasks of 16 samples). The
/// product's sums on `W x^T`, so its bits.
pub(crate) fn fc(filters: &BlockedFilters, n: usize, x: &[f32], y: &mut [f32]) {
    let (m, k) = (filters.m, filters.k);
    assert!(x.len() >= n * k && y.len() >= n * m && k > 0);
    assert!(crate::sgemm::avx2_only() || crate::sgemm::avx512());
    let blocks = filters.blocks();
    let planes = Planes {
        lanes: 1,
        wp: k,
        plane: k,
        len: 0,
        offsets: (0..k).collect(),
        bases: (0..n).map(|s| s * k).collect(),
        prefetch: false,
    };
    with_scratch(blocks * n * BLOCK, |out| {
        out.par_chunks_mut(FC_BLOCKS * n * BLOCK)
            .enumerate()
            .for_each(|(t, chunk)| {
                let first = t * FC_BLOCKS;
                let range = first..first + chunk.len() / (n * BLOCK);
                // SAFETY: AVX2 and FMA (asserted: `avx2_only`).
                unsafe { sample(&planes, filters, range, &x[..n * k], chunk) };
            });
        // Each sample's features, 8 at a time, are one block's lanes.
        let out: &[f32] = out;
        y[..n * m]
            .par_chunks_mut(m)
            .enumerate()
            .for_each(|(s, row)| {
                // 8 at a time where whole (a copy of a length known only at run time is
                // a call to `memcpy`).
                let mut whole = row.chunks_exact_mut(BLOCK);
                for (b, features) in whole.by_ref().enumerate() {
                    let at = (b * n + s) * BLOCK;
                    let values: &[f32; BLOCK] = out[at..at + BLOCK].try_into().unwrap();
                    features.copy_from_slice(values);
                }
                let rest = whole.into_remainder();
                if !rest.is_empty() {
                    let at = (m / BLOCK * n + s) * BLOCK;
                    rest.copy_from_slice(&out[at..at + rest.len()]);
                }
            });
    })
}

/// The blocks `blocks` of one sample's output (`out`, as [`sample`] writes them from block
/// `blocks.start` on) into `y` (`P x Q` planes from channel `blocks.start * BLOCK` on, the
/// first `m` channels of the layer), each plane then through the epilogue.
fn store(
    g: &ConvGeometry,
    blocks: std::ops::Range<usize>,
    m: usize,
    out: &[f32],
    y: &mut [f32],
    epilogue: &Epilogue,
) {
    let pq = g.p * g.q;
    let first = blocks.start * BLOCK;
    let channels = (blocks.end * BLOCK).min(m) - first;
    assert!(out.len() >= blocks.len() * pq * BLOCK && y.len() >= channels * pq);
    for b in 0..blocks.len() {
        let lanes = (channels - b * BLOCK).min(BLOCK);
        let block = &out[b * pq * BLOCK..(b + 1) * pq * BLOCK];
        let planes = &mut y[b * BLOCK * pq..(b * BLOCK + lanes) * pq];
        #[cfg(target_arch = "x86_64")]
        if lanes == BLOCK {
            // SAFETY: `applies` checked AVX2; the block holds every pixel, `planes` 8
            // planes of them.
            unsafe { unblock_avx2(pq, block, planes) };
            continue;
        }
        for (pixel, values) in block.chunks_exact(BLOCK).enumerate() {
            for (l, v) in values.iter().enumerate().take(lanes) {
                planes[l * pq + pixel] = *v;
            }
        }
    }
    for (c, plane) in y[..channels * pq].chunks_exact_mut(pq).enumerate() {
        epilogue.channel(first + c, plane);
    }
}

/// A whole block's pixels into its 8 planes, 8 pixels at a time through a transpose.
///
/// # Safety
/// AVX2; `block` holds `BLOCK` values for each of `pq` pixels, `planes` 8 planes of them.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn unblock_avx2(pq: usize, block: &[f32], planes: &mut [f32]) {
    use std::arch::x86_64::*;
    assert!(planes.len() >= BLOCK * pq && block.len() >= pq * BLOCK);
    let (src, dst) = (block.as_ptr(), planes.as_mut_ptr());
    let mut j = 0;
    while j + 8 <= pq {
        let at = src.add(j * BLOCK);
        let pixels: [__m256; 8] = std::array::from_fn(|t| _mm256_loadu_ps(at.add(t * BLOCK)));
        for (l, line) in crate::sgemm::transpose8(pixels).into_iter().enumerate() {
            _mm256_storeu_ps(dst.add(l * pq + j), line);
        }
        j += 8;
    }
    for j in j..pq {
        for l in 0..BLOCK {
            *dst.add(l * pq + j) = *src.add(j * BLOCK + l);
        }
    }
}

/// One sample's output in blocks (`out`: block `b`, pixel `x`, lane `l` at
/// `((b - blocks.start) P Q + x) BLOCK + l`) for the blocks `blocks`, from the planes (`src`:
/// as [`Planes`] lays them out).
///
/// # Safety
/// AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn sample(
    planes: &Planes,
    filters: &BlockedFilters,
    blocks: std::ops::Range<usize>,
    src: &[f32],
    out: &mut [f32],
) {
    if filters.lanes == wide::LANES {
        // SAFETY: filters in blocks of 16 are laid out on AVX-512 machines only.
        return wide::sample(planes, filters, blocks, src, out);
    }
    let pq = planes.bases.len();
    assert!(out.len() >= blocks.len() * pq * BLOCK);
    assert!(blocks.end <= filters.blocks() && filters.k == planes.offsets.len());
    // Every tap of every pixel lies in `src`.
    let reach = planes.offsets.iter().max().copied().unwrap_or(0);
    assert!(planes.bases.iter().all(|b| b + reach < src.len()));
    let k = filters.k;
    for k0 in (0..k).step_by(KC) {
        let steps = k0..(k0 + KC).min(k);
        let mut b = blocks.start;
        while b < blocks.end {
            let pair = (blocks.end - b).min(2);
            for (t, bases) in planes.bases.chunks(PIXELS).enumerate() {
                let tile = Tile {
                    filters: filters.data.as_ptr().add(b * k * BLOCK),
                    stride: k * BLOCK,
                    steps: steps.clone(),
                    offsets: &planes.offsets,
                    src: src.as_ptr(),
                    bases,
                    out: out
                        .as_mut_ptr()
                        .add(((b - blocks.start) * pq + t * PIXELS) * BLOCK),
                    out_stride: pq * BLOCK,
                    halves: pair,
                    add: k0 > 0,
                    prefetch: false,
                };
                tile.run_any(pair);
            }
            b += pair;
        }
    }
}

/// `F` blocks of vectors against `P` broadcast columns over a range of steps: `out[i][j]
/// (+)= sum over steps t of filters[i][t] * src[bases[j] + offsets[t]]`. In the forward
/// pass the vectors are filters, the steps taps and the columns pixels; in the weight
/// gradient the vectors are `dY`, the steps pixels and the columns taps.
#[cfg(target_arch = "x86_64")]
struct Tile<'a> {
    /// The first block's vector for step 0, step `t`'s `t BLOCK` on, the next block's
    /// `stride` on.
    filters: *const f32,
    stride: usize,
    steps: std::ops::Range<usize>,
    /// Each step's offset in `src`.
    offsets: &'a [usize],
    src: *const f32,
    /// Each column's base in `src`.
    bases: &'a [usize],
    /// The first block's output for the tile's first column, the next column's `BLOCK` on,
    /// the next block's `out_stride` on.
    out: *mut f32,
    out_stride: usize,
    /// Blocks of [`BLOCK`] outputs written: the AVX-512 tile's last vector of 16 may reach
    /// one past the layer's ([`wide`]); the AVX2 tile writes all of its own.
    halves: usize,
    /// Add to what `out` holds (a later block of steps).
    add: bool,
    /// Prefetch the filters some steps ahead (the AVX-512 tile): they are read once.
    prefetch: bool,
}

/// `$tile.$run::<V, P>()` for `V` (1 or 2) vectors a step and `P` the tile's columns (1 to
/// [`PIXELS`]): the shapes the AVX2 and AVX-512 tiles are compiled for.
#[cfg(target_arch = "x86_64")]
macro_rules! tile_shapes {
    ($tile:expr, $vectors:expr, $run:ident) => {
        match ($vectors, $tile.bases.len()) {
            (2, 6) => $tile.$run::<2, 6>(),
            (2, 5) => $tile.$run::<2, 5>(),
            (2, 4) => $tile.$run::<2, 4>(),
            (2, 3) => $tile.$run::<2, 3>(),
            (2, 2) => $tile.$run::<2, 2>(),
            (2, _) => $tile.$run::<2, 1>(),
            (_, 6) => $tile.$run::<1, 6>(),
            (_, 5) => $tile.$run::<1, 5>(),
            (_, 4) => $tile.$run::<1, 4>(),
            (_, 3) => $tile.$run::<1, 3>(),
            (_, 2) => $tile.$run::<1, 2>(),
            (_, _) => $tile.$run::<1, 1>(),
        }
    };
}
#[cfg(target_arch = "x86_64")]
use tile_shapes;

#[cfg(target_arch = "x86_64")]
impl Tile<'_> {
    /// [`run`](Self::run) on `blocks` (1 or 2) blocks and as many columns as `bases` holds
    /// (1 to [`PIXELS`]).
    ///
    /// # Safety
    /// As [`run`](Self::run).
    #[target_feature(enable = "avx2,fma")]
    unsafe fn run_any(&self, blocks: usize) {
        tile_shapes!(self, blocks, run)
    }

    /// # Safety
    /// AVX2 and FMA; `F` blocks of filters hold the steps; every base plus every offset
    /// lies in `src`; `out` holds `F` blocks of `P` pixels.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn run<const F: usize, const P: usize>(&self) {
        use std::arch::x86_64::*;
        let mut acc = [[_mm256_setzero_ps(); P]; F];
        let x: [*const f32; P] = std::array::from_fn(|j| self.src.add(self.bases[j]));
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
                let at = self.out.add(i * self.out_stride + j * BLOCK);
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
        crate::layers::lowered::check_stride_one(run);
    }

    /// The weight gradient against the lowered product's (`product_add` of im2col and dY
    /// transposed, samples side by side), bit for bit: strides 1-3, 1x1 read in place,
    /// paddings on one side, a dilation, partial blocks of filters and of taps, more than
    /// [`KC`] steps in a run (a block of them ending inside a sample), one to three samples
    /// in runs of two.
    #[test]
    fn weight_gradient_equals_the_lowered_product_bit_for_bit() {
        // (c, r, s, stride, dilation, pad top, pad left, pad bottom, pad right, h, w, m, n)
        for (c, r, s, st, dil, pt, pl, pb, pr, h, w, m, n) in [
            (32, 3, 3, 1, 1, 1, 1, 1, 1, 14, 14, 64, 2),
            (1, 5, 5, 1, 1, 2, 2, 2, 2, 28, 28, 6, 2),
            (6, 5, 5, 1, 1, 0, 0, 0, 0, 14, 14, 16, 3),
            (3, 3, 3, 1, 1, 1, 1, 1, 1, 20, 20, 17, 1),
            (16, 1, 1, 1, 1, 0, 0, 0, 0, 9, 7, 25, 2),
            (16, 1, 1, 2, 1, 0, 0, 0, 0, 9, 7, 24, 1),
            (8, 3, 3, 2, 1, 0, 0, 1, 1, 12, 12, 16, 2),
            (5, 3, 3, 3, 1, 1, 2, 0, 1, 13, 10, 9, 2),
            (4, 3, 3, 1, 2, 2, 2, 2, 2, 7, 9, 24, 1),
            (3, 7, 7, 2, 1, 3, 3, 3, 3, 20, 18, 16, 2),
            (64, 3, 3, 1, 1, 1, 1, 1, 1, 7, 7, 40, 3),
        ] {
            let g = ConvGeometry {
                c,
                h,
                w,
                p: (h + pt + pb - dil * (r - 1) - 1) / st + 1,
                q: (w + pl + pr - dil * (s - 1) - 1) / st + 1,
                r,
                s,
                stride_h: st,
                stride_w: st,
                pad_top: pt,
                pad_left: pl,
                dilation_h: dil,
                dilation_w: dil,
            };
            let (in_len, pq, k) = (c * h * w, g.p * g.q, g.col_rows());
            let x: Vec<f32> = (0..n * in_len)
                .map(|i| ((i * 37) % 23) as f32 / 7.0 - 1.5)
                .collect();
            let dy: Vec<f32> = (0..n * m * pq)
                .map(|i| ((i * 11) % 13) as f32 / 9.0 - 0.7)
                .collect();
            let (mut col, mut dwt) = (vec![0f32; g.col_len()], vec![0f32; k * m]);
            let planes = Planes::new(&g);
            let mut scratch = vec![f32::NAN; weight_gradient_scratch(&planes, &g, m, 2)];
            let mut acc = vec![0f32; weight_gradient_len(m, k)];
            // Runs of two samples side by side (the last may hold one), each against the
            // product on the run's lowered ifmaps side by side and dY stacked.
            for (xs, dys) in x.chunks(2 * in_len).zip(dy.chunks(2 * m * pq)) {
                let run = xs.len() / in_len;
                let (mut cols, mut dyt) = (vec![0f32; k * run * pq], vec![0f32; run * pq * m]);
                for (i, (xi, dyi)) in xs.chunks(in_len).zip(dys.chunks(m * pq)).enumerate() {
                    g.im2col(xi, &mut col);
                    for (kk, row) in col.chunks(pq).enumerate() {
                        cols[kk * run * pq + i * pq..][..pq].copy_from_slice(row);
                    }
                    for (f, plane) in dyi.chunks(pq).enumerate() {
                        for (j, v) in plane.iter().enumerate() {
                            dyt[(i * pq + j) * m + f] = *v;
                        }
                    }
                }
                crate::sgemm::product_add(k, m, run * pq, &cols, &dyt, &mut dwt);
                weight_gradient_samples(&g, &planes, m, run, xs, dys, &mut scratch, &mut acc);
            }
            let want: Vec<u32> = (0..m * k)
                .map(|i| (0.0 + dwt[(i % k) * m + i / k]).to_bits())
                .collect();
            let mut dw = vec![0f32; m * k];
            add_unblocked_weights(m, k, &acc, &mut dw);
            let bits: Vec<u32> = dw.iter().map(|v| v.to_bits()).collect();
            let case = format!("c {c} {r}x{s} stride {st} dil {dil} {h}x{w} m {m} n {n}");
            assert_eq!(bits, want, "{case}");
        }
    }

    /// Zero-bordered planes against their definition, on NaN-filled buffers (a value left
    /// unwritten fails it): both fills, lines shorter and longer than a vector and of whole
    /// vectors, one-sided padding, no padding on one side, no room after the last line.
    #[test]
    fn planes_hold_the_ifmap_inside_a_zero_border() {
        // (c, h, w, r, s, stride, pad_top, pad_left)
        let cases = [
            (3, 14, 14, 3, 3, 1, 1, 1),
            (2, 5, 3, 3, 3, 1, 1, 2),
            (2, 6, 17, 5, 5, 1, 2, 0),
            (1, 7, 8, 3, 3, 2, 0, 1),
            (4, 9, 11, 7, 7, 2, 3, 3),
            (1, 4, 5, 3, 3, 1, 0, 1), // the last line's tail too near the end for a vector
        ];
        for (c, h, w, r, sz, st, pt, pl) in cases {
            let g = ConvGeometry {
                c,
                h,
                w,
                r,
                s: sz,
                p: (h + 2 * pt - r) / st + 1,
                q: (w + 2 * pl - sz) / st + 1,
                stride_h: st,
                stride_w: st,
                pad_top: pt,
                pad_left: pl,
                dilation_h: 1,
                dilation_w: 1,
            };
            let planes = Planes::new(&g);
            assert!(planes.len > 0);
            let x: Vec<f32> = (0..c * h * w).map(|i| i as f32 + 1.0).collect();
            let rows = planes.plane / planes.wp;
            let want: Vec<f32> = (0..planes.len)
                .map(|at| {
                    let (ch, i, j) = (
                        at / planes.plane,
                        at % planes.plane / planes.wp,
                        at % planes.wp,
                    );
                    let (i, j) = (i as isize - pt as isize, j as isize - pl as isize);
                    let inside = (0..h as isize).contains(&i) && (0..w as isize).contains(&j);
                    if inside {
                        x[(ch * h + i as usize) * w + j as usize]
                    } else {
                        0.0
                    }
                })
                .collect();
            assert!(rows >= pt + h && planes.wp >= pl + w);
            for dispatched in [false, true] {
                let mut padded = vec![f32::NAN; planes.len];
                if dispatched {
                    planes.fill(&g, &x, &mut padded);
                } else {
                    planes.fill_lines(&g, &x, &mut padded);
                }
                let same = padded
                    .iter()
                    .zip(&want)
                    .all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(
                    same,
                    "{c}x{h}x{w} {r}x{sz} stride {st} pad {pt},{pl} dispatched {dispatched}"
                );
            }
        }
    }

    /// Filters into blocks, element by element against the layout, small (one task) and
    /// large (tasks of a few blocks, the last partial), with lanes past `m` zero (a whole
    /// block of 8 of them in 16 lanes).
    #[test]
    fn filters_go_into_blocks() {
        for (m, k) in [(13, 7), (37, 7100), (8, 5)] {
            let filter: Vec<f32> = (0..m * k).map(|i| i as f32).collect();
            let blocked = BlockedFilters::new(m, k, &filter);
            let lanes = blocked.lanes;
            let want_lanes = if crate::sgemm::avx512() { 16 } else { BLOCK };
            assert_eq!(lanes, want_lanes);
            assert_eq!(blocked.data.len(), m.div_ceil(lanes) * k * lanes);
            for (at, v) in blocked.data.iter().enumerate() {
                let (b, kk, l) = (at / (k * lanes), at / lanes % k, at % lanes);
                let f = b * lanes + l;
                let want = if f < m { filter[f * k + kk] } else { 0.0 };
                assert_eq!(*v, want, "m {m} k {k} [{at}]");
            }
        }
    }

    /// The blocked kernel on one layer, split at batch 1 (every test layer has more than 1
    /// MAC).
    fn run(g: &ConvGeometry, n: usize, m: usize, x: &[f32], f: &[f32], y: &mut [f32]) {
        assert!(applies(g, 1));
        let filters = BlockedFilters::new(m, g.col_rows(), f);
        forward(g, n, &filters, (x, false), &Epilogue::default(), 1, y);
    }

    /// The same at strides 2 and 3 and on 1x1 layers (read in place where unpadded), bit for
    /// bit: a first layer of 3 channels (7x7, stride 2), a downsampling 1x1, stride 2 with
    /// the bottom and right padding only, 16 and 25 filters.
    #[test]
    fn blocked_equals_the_lowered_product_at_any_stride() {
        // (c, r, s, stride, pad top, pad left, pad bottom, pad right, h, w, m, n)
        for (c, r, s, st, pt, pl, pb, pr, h, w, m, n) in [
            (3, 7, 7, 2, 3, 3, 3, 3, 20, 18, 16, 2),
            (16, 1, 1, 1, 0, 0, 0, 0, 9, 7, 25, 2),
            (16, 1, 1, 2, 0, 0, 0, 0, 9, 7, 24, 1),
            (8, 3, 3, 2, 1, 1, 1, 1, 11, 12, 17, 2),
            (8, 3, 3, 2, 0, 0, 1, 1, 12, 12, 16, 1),
            (5, 3, 3, 3, 1, 2, 0, 1, 13, 10, 9, 2),
            (12, 1, 1, 1, 1, 1, 1, 1, 4, 5, 8, 1),
            // Two blocks of `k` (288 terms) at stride 2.
            (32, 3, 3, 2, 1, 1, 1, 1, 9, 9, 16, 1),
        ] {
            let g = ConvGeometry {
                c,
                h,
                w,
                p: (h + pt + pb - r) / st + 1,
                q: (w + pl + pr - s) / st + 1,
                r,
                s,
                stride_h: st,
                stride_w: st,
                pad_top: pt,
                pad_left: pl,
                dilation_h: 1,
                dilation_w: 1,
            };
            let case = format!("c {c} {r}x{s} stride {st} {h}x{w} m {m}");
            crate::layers::lowered::check_case(&g, n, m, &case, &run);
        }
    }
}
