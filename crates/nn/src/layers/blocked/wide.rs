//! The blocked kernel's tile on AVX-512 machines: a vector holds 16 output channels, so each
//! multiply-add does twice the AVX2 tile's work (on AMD's Zen 5 cores, which run 512-bit
//! FMAs at full width, that is twice the arithmetic a cycle). The filters lie in blocks of
//! 16 ([`BlockedFilters`] lays them out so on these machines); the outputs go out in blocks
//! of [`BLOCK`] as the AVX2 tile writes them (each vector's halves to two blocks), so
//! everything that reads them is unchanged. Each output's sum is the AVX2 tile's (from
//! zero, steps ascending, one fused multiply-add a term, blocks of [`KC`] added to the
//! running value): the same bits.

use super::{tile_shapes, BlockedFilters, Planes, Tile, BLOCK};
use crate::kernels::blocks::Finish;
use crate::sgemm::KC;
use std::arch::x86_64::*;

/// Output channels a vector.
pub(super) const LANES: usize = 16;

/// Pixels a tile of the forward pass.
pub(super) const TILE_PIXELS: usize = 8;

/// Steps ahead a tile prefetches its filters where they are read once ([`Tile::prefetch`]):
/// resnet18 at batch 1 streams 9.4 MB of filters through each of its last layers, and the
/// tile waited for them (one thread, alternating processes, 2026-12-02: 0.86-0.90 of the
/// network's time at 16 or 32 steps ahead, none at 8). At batch 16 the filters stay in
/// cache between samples, and prefetching took 1.12 of the time.
const AHEAD: usize = 32;

/// One sample's output in blocks of [`BLOCK`] for the blocks `blocks` (`blocks.start` a
/// whole vector's, even), as [`super::sample`] writes them.
///
/// # Safety
/// AVX-512F; `filters` in blocks of [`LANES`].
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn sample(
    planes: &Planes,
    filters: &BlockedFilters,
    blocks: std::ops::Range<usize>,
    src: &[f32],
    out: &mut [f32],
) {
    let pq = planes.bases.len();
    assert!(out.len() >= blocks.len() * pq * BLOCK);
    sample_pixels(planes, filters, blocks, 0..pq, src, out.as_mut_ptr())
}

/// [`sample`] for the pixels `pixels` only, written where [`sample`] writes them: `out`
/// holds the blocks' every pixel, and another task may write the other pixels meanwhile.
///
/// # Safety
/// As [`sample`]; `out` points to `blocks.len()` blocks of all `P Q` pixels, of which this
/// call alone writes the pixels `pixels` while it runs.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn sample_pixels(
    planes: &Planes,
    filters: &BlockedFilters,
    blocks: std::ops::Range<usize>,
    pixels: std::ops::Range<usize>,
    src: &[f32],
    out: *mut f32,
) {
    let pq = planes.bases.len();
    assert!(filters.lanes == LANES && blocks.start.is_multiple_of(LANES / BLOCK));
    assert!(pixels.end <= pq);
    assert!(blocks.end <= filters.blocks() && filters.k == planes.offsets.len());
    // Every tap of every pixel run lies in `src`.
    let reach = planes.offsets.iter().max().copied().unwrap_or(0);
    assert!(planes.bases[pixels.clone()]
        .iter()
        .all(|b| b + reach < src.len()));
    let tiles = ForwardTiles {
        planes,
        filters,
        blocks,
        pixels,
        src,
        out: (out, pq * BLOCK),
    };
    tiles.for_each(|tile, vectors, _, _, _| tile.run_wide_up_to_8(vectors));
}

/// The forward pass's tiles over `blocks` and `pixels` ([`sample_pixels`],
/// [`sample_pooled`]): blocks of [`KC`] steps, in each every pair of vectors (32 filters,
/// or what is left), in each every tile of [`TILE_PIXELS`] pixels, its sums at `out.0` plus
/// `out.1` a block past `blocks.start` and [`BLOCK`] a pixel (pixel `pixels.start` first).
struct ForwardTiles<'a> {
    planes: &'a Planes,
    filters: &'a BlockedFilters,
    blocks: std::ops::Range<usize>,
    pixels: std::ops::Range<usize>,
    src: &'a [f32],
    out: (*mut f32, usize),
}

impl ForwardTiles<'_> {
    /// `run(tile, vectors, last, b, t)` on every tile: `vectors` of filters (1 or 2), `last`
    /// whether its steps end the layer's, `b` its first block, `t` its index among the
    /// tiles of a run of pixels.
    ///
    /// # Safety
    /// As [`sample_pixels`]; `run` writes only through the tile or what it owns.
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn for_each(&self, mut run: impl FnMut(&Tile, usize, bool, usize, usize)) {
        let (filters, planes, blocks) = (self.filters, self.planes, &self.blocks);
        let k = filters.k;
        for k0 in (0..k).step_by(KC) {
            let steps = k0..(k0 + KC).min(k);
            let mut b = blocks.start;
            while b < blocks.end {
                let left = blocks.end - b;
                let vectors = left.div_ceil(2).min(2);
                let halves = (2 * vectors).min(left);
                // Tiles of 2 vectors x 8 pixels (16 accumulators) keep every operand in
                // registers: one sample in cache, one thread (2026-12-02), vgg-small's 32 ->
                // 64 layer at 14x14 ran at 116 GMAC/s, its 64 -> 128 at 7x7 at 110, against
                // 113 and 107 in tiles of 6 pixels (and 75-87 in the network then, 4 x 4 and
                // 2 x 7 73-78); with 4 x 6 or 2 x 10 the compiler loaded all the broadcasts
                // first and spilled accumulators (44-56).
                let bases = &planes.bases[self.pixels.clone()];
                for (t, bases) in bases.chunks(TILE_PIXELS).enumerate() {
                    let at = self.pixels.start + t * TILE_PIXELS;
                    let tile = Tile {
                        filters: filters.data.as_ptr().add(b / 2 * k * LANES),
                        stride: k * LANES,
                        steps: steps.clone(),
                        offsets: &planes.offsets,
                        src: self.src.as_ptr(),
                        bases,
                        // Not read nor written where a caller's `run` keeps none.
                        out: self
                            .out
                            .0
                            .wrapping_add((b - blocks.start) * self.out.1 + at * BLOCK),
                        out_stride: self.out.1,
                        halves,
                        add: k0 > 0,
                        prefetch: planes.prefetch,
                    };
                    run(&tile, vectors, steps.end == k, b, t);
                }
                b += halves;
            }
        }
    }
}

/// [`sample`] with a 2x2 max pooling (stride 2) after the epilogue `finish`, in the tile:
/// `planes.bases` lists the windows' pixels (4 a window, [`super::pooled_bases`]), `out`
/// gets each block's windows (block `b`, window `w` at `((b - blocks.start) W + w) BLOCK`).
/// `partial` holds each block's pixels' sums between blocks of [`KC`] steps (a layer of more
/// steps); the last block's sums go through the epilogue and the pooling in registers, so
/// the ofmap is never written whole. The same sums, epilogue and selects as [`sample`], the
/// epilogue on blocks and the pooling on blocks: the same bits.
///
/// # Safety
/// AVX-512F; `filters` in blocks of [`LANES`]; `finish` has every channel of the blocks.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn sample_pooled(
    planes: &Planes,
    filters: &BlockedFilters,
    blocks: std::ops::Range<usize>,
    src: &[f32],
    finish: &Finish,
    partial: &mut [f32],
    out: &mut [f32],
) {
    let pixels = planes.bases.len();
    let windows = pixels / 4;
    assert!(filters.lanes == LANES && blocks.start.is_multiple_of(LANES / BLOCK));
    assert!(pixels.is_multiple_of(4) && out.len() >= blocks.len() * windows * BLOCK);
    assert!(blocks.end <= filters.blocks() && filters.k == planes.offsets.len());
    let k = filters.k;
    assert!(k <= KC || partial.len() >= blocks.len() * pixels * BLOCK);
    let reach = planes.offsets.iter().max().copied().unwrap_or(0);
    assert!(planes.bases.iter().all(|b| b + reach < src.len()));
    let tiles = ForwardTiles {
        planes,
        filters,
        blocks: blocks.clone(),
        pixels: 0..pixels,
        src,
        // Each block's pixels' partial sums (two windows a tile, as `sample`'s tiles).
        out: (partial.as_mut_ptr(), pixels * BLOCK),
    };
    tiles.for_each(|tile, vectors, last, b, t| {
        let pooled = (
            out.as_mut_ptr()
                .add(((b - blocks.start) * windows + t * TILE_PIXELS / 4) * BLOCK),
            windows * BLOCK,
        );
        match (last, vectors, tile.bases.len()) {
            (false, 2, 8) => tile.run_wide::<2, 8>(),
            (false, 2, _) => tile.run_wide::<2, 4>(),
            (false, _, 8) => tile.run_wide::<1, 8>(),
            (false, _, _) => tile.run_wide::<1, 4>(),
            (true, 2, 8) => tile.run_wide_pooled::<2, 8>(finish, b, pooled),
            (true, 2, _) => tile.run_wide_pooled::<2, 4>(finish, b, pooled),
            (true, _, 8) => tile.run_wide_pooled::<1, 8>(finish, b, pooled),
            (true, _, _) => tile.run_wide_pooled::<1, 4>(finish, b, pooled),
        }
    });
}

/// [`super::weight_gradient_samples`]' sums on the AVX-512 tile: `dyb` holds `dY` in vectors
/// of 16 filters (vector `v`, step `t` at `(v steps + t) LANES`), `src.1` each step's base in
/// `src.0`; the sums go into `acc` in blocks of [`BLOCK`] (block `b`, tap `k` at `(b K + k)
/// BLOCK`), each vector's halves to two blocks: the AVX2 tile's sums, the same bits.
///
/// # Safety
/// AVX-512F; every step's every tap lies in `src.0`; `dyb` and `acc` hold what they lay out.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn weight_gradient(
    planes: &Planes,
    k: usize,
    steps: usize,
    src: (&[f32], &[usize]),
    dyb: &[f32],
    acc: &mut [f32],
) {
    let blocks = acc.len() / (k * BLOCK).max(1);
    assert!(dyb.len() >= blocks.div_ceil(2) * steps * LANES && src.1.len() == steps);
    for s0 in (0..steps).step_by(KC) {
        let run = s0..(s0 + KC).min(steps);
        let mut b = 0;
        while b < blocks {
            let left = blocks - b;
            let vectors = left.div_ceil(2).min(2);
            let halves = (2 * vectors).min(left);
            for (t, taps) in planes.offsets.chunks(TILE_PIXELS).enumerate() {
                let tile = Tile {
                    filters: dyb.as_ptr().add(b / 2 * steps * LANES),
                    stride: steps * LANES,
                    steps: run.clone(),
                    offsets: src.1,
                    src: src.0.as_ptr(),
                    bases: taps,
                    out: acc.as_mut_ptr().add((b * k + t * TILE_PIXELS) * BLOCK),
                    out_stride: k * BLOCK,
                    halves,
                    add: true,
                    prefetch: false,
                };
                tile.run_wide_up_to_8(vectors);
            }
            b += halves;
        }
    }
}

/// The AVX-512 tile: [`Tile`]'s vectors are `V` vectors of 16 filters, each vector's halves
/// written to blocks `2 i` and `2 i + 1` (those below `halves`).
impl Tile<'_> {
    /// [`run_wide`](Self::run_wide) on `vectors` (1 or 2) vectors and as many pixels as
    /// `bases` holds (1 to [`TILE_PIXELS`]).
    ///
    /// # Safety
    /// As [`run_wide`](Self::run_wide).
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn run_wide_up_to_8(&self, vectors: usize) {
        match (vectors, self.bases.len()) {
            (2, 8) => self.run_wide::<2, 8>(),
            (2, 7) => self.run_wide::<2, 7>(),
            (1, 8) => self.run_wide::<1, 8>(),
            (1, 7) => self.run_wide::<1, 7>(),
            _ => self.run_wide_any(vectors),
        }
    }

    /// [`run_wide`](Self::run_wide) on `vectors` (1 or 2) vectors and as many pixels as
    /// `bases` holds (1 to [`super::PIXELS`]).
    ///
    /// # Safety
    /// As [`run_wide`](Self::run_wide).
    #[target_feature(enable = "avx512f")]
    unsafe fn run_wide_any(&self, vectors: usize) {
        tile_shapes!(self, vectors, run_wide)
    }

    /// # Safety
    /// AVX-512F; `V` vectors of filters hold the steps; every base plus every offset lies
    /// in `src`; `out` holds `halves` blocks of `P` pixels.
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn run_wide<const V: usize, const P: usize>(&self) {
        let acc = self.sums::<V, P>();
        for (i, vector) in acc.iter().enumerate() {
            for (j, a) in vector.iter().enumerate() {
                for (h, half) in halves(*a).into_iter().enumerate() {
                    if 2 * i + h >= self.halves {
                        break;
                    }
                    let at = self.out.add((2 * i + h) * self.out_stride + j * BLOCK);
                    let v = if self.add {
                        _mm256_add_ps(_mm256_loadu_ps(at), half)
                    } else {
                        half
                    };
                    _mm256_storeu_ps(at, v);
                }
            }
        }
    }

    /// The tile's sums over its steps: `V` vectors x `P` pixels.
    ///
    /// # Safety
    /// As [`run_wide`](Self::run_wide).
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn sums<const V: usize, const P: usize>(&self) -> [[__m512; P]; V] {
        let mut acc = [[_mm512_setzero_ps(); P]; V];
        let x: [*const f32; P] = std::array::from_fn(|j| self.src.add(self.bases[j]));
        for kk in self.steps.clone() {
            let off = *self.offsets.get_unchecked(kk);
            let f: [__m512; V] = std::array::from_fn(|i| {
                _mm512_loadu_ps(self.filters.add(i * self.stride + kk * LANES))
            });
            if self.prefetch {
                for i in 0..V {
                    let ahead = self
                        .filters
                        .wrapping_add(i * self.stride + (kk + AHEAD) * LANES);
                    _mm_prefetch::<_MM_HINT_T0>(ahead as *const i8);
                }
            }
            for j in 0..P {
                let v = _mm512_set1_ps(*x[j].add(off));
                for i in 0..V {
                    acc[i][j] = _mm512_fmadd_ps(f[i], v, acc[i][j]);
                }
            }
        }
        acc
    }

    /// The last block of steps of a tile of whole 2x2 pooling windows (`bases` in windows'
    /// order, each window's pixels row by row): each pixel's sum (what `out` holds from
    /// the earlier blocks plus this block's, where `add`) through `finish`'s steps for its
    /// block, then the larger a step from minus infinity over its window (the pooling on
    /// blocks' select), one value a window into `pooled` (the next window [`BLOCK`] on, the
    /// next block `pooled_stride` on). `first`: the tile's first block in the layer.
    ///
    /// # Safety
    /// As [`run_wide`](Self::run_wide), `P` a multiple of 4; `pooled` holds `halves` blocks
    /// of `P / 4` windows; `finish` has the values of every channel of those blocks.
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn run_wide_pooled<const V: usize, const P: usize>(
        &self,
        finish: &Finish,
        first: usize,
        (pooled, pooled_stride): (*mut f32, usize),
    ) {
        let acc = self.sums::<V, P>();
        for (i, vector) in acc.iter().enumerate() {
            if 2 * i + 1 < self.halves {
                // Both blocks of the vector: the epilogue and the selects on its 16 lanes at
                // once, split only to be stored (the same steps lane by lane). vgg-small's
                // first layer (9 steps) spent as long on them as on its sums.
                let lanes = finish.wide_lanes((first + 2 * i) * BLOCK);
                let (at, stride) = (self.out.add(2 * i * self.out_stride), self.out_stride);
                let out = pooled.add(2 * i * pooled_stride);
                for (w, window) in vector.chunks_exact(4).enumerate() {
                    let mut best = _mm512_set1_ps(f32::NEG_INFINITY);
                    for (j, a) in (4 * w..).zip(window) {
                        let mut v = *a;
                        if self.add {
                            let at = at.add(j * BLOCK);
                            let sums = join(_mm256_loadu_ps(at), _mm256_loadu_ps(at.add(stride)));
                            v = _mm512_add_ps(sums, v);
                        }
                        best = _mm512_max_ps(lanes.apply(v), best);
                    }
                    let [lo, hi] = halves(best);
                    _mm256_storeu_ps(out.add(w * BLOCK), lo);
                    _mm256_storeu_ps(out.add(pooled_stride + w * BLOCK), hi);
                }
                continue;
            }
            for h in 0..2 {
                let b = 2 * i + h;
                if b >= self.halves {
                    break;
                }
                let lanes = finish.lanes((first + b) * BLOCK);
                for (w, window) in vector.chunks_exact(4).enumerate() {
                    let mut best = _mm256_set1_ps(f32::NEG_INFINITY);
                    for (j, a) in (4 * w..).zip(window) {
                        let mut v = halves(*a)[h];
                        if self.add {
                            let at = self.out.add(b * self.out_stride + j * BLOCK);
                            v = _mm256_add_ps(_mm256_loadu_ps(at), v);
                        }
                        best = _mm256_max_ps(lanes.apply(v), best);
                    }
                    _mm256_storeu_ps(pooled.add(b * pooled_stride + w * BLOCK), best);
                }
            }
        }
    }
}

/// The vector of lanes 0-7 `lo` and 8-15 `hi` ([`halves`] undone).
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn join(lo: __m256, hi: __m256) -> __m512 {
    let lo = _mm512_castpd256_pd512(_mm256_castps_pd(lo));
    _mm512_castpd_ps(_mm512_insertf64x4::<1>(lo, _mm256_castps_pd(hi)))
}

/// A vector's lanes 0-7 and 8-15.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn halves(a: __m512) -> [__m256; 2] {
    let upper = _mm512_extractf64x4_pd::<1>(_mm512_castps_pd(a));
    [_mm512_castps512_ps256(a), _mm256_castpd_ps(upper)]
}
