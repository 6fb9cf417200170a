//! The 1x1 stride-1 convolution writing its ofmap in channel blocks ([`super::blocks`]),
//! reading its ifmap in blocks or in planes: the output channels on the lanes, each of a
//! tile's pixels one broadcast value a step. The ifmap is read where it lies (no packed
//! copy of it, which for a projection to few channels cost as much as its arithmetic:
//! mobilenet_v2's 144 -> 24 layer took 1.4-1.6x onnxruntime's time on the lowered product).
//!
//! Every output is summed as the product under the plane layout sums it
//! ([`crate::sgemm`]): from zero, channels ascending, one fused multiply-add a term, in
//! blocks of [`KC`] added to the running value. So the same bits.

use super::blocks::Finish;
use super::CHANNELS;
use crate::sgemm::KC;
use rayon::prelude::*;

/// Pixels a task computes at a time: its `KC` channels of ifmap (96 KiB) stay in L2 while
/// the filters of each pair of blocks (`KC x 16`, 16 KiB) stay in L1.
const PIXELS: usize = 96;

/// MACs a rayon task takes at least (a few microseconds).
const TASK_MACS: usize = 1 << 17;

/// A 1x1 layer's filters (`m x c`) in blocks of [`CHANNELS`] output channels: block `b`
/// holds, for every input channel, its 8 filters' weights side by side.
#[derive(Clone, Debug)]
pub(crate) struct BlockFilters {
    m: usize,
    c: usize,
    data: Vec<f32>,
}

impl BlockFilters {
    /// `None` where [`forward`] does not run: without AVX2 and FMA, or when `m` or `c` is
    /// not a multiple of [`CHANNELS`].
    pub(crate) fn new(m: usize, c: usize, filter: &[f32]) -> Option<BlockFilters> {
        if !runs(m, c) || filter.len() < m * c {
            return None;
        }
        let mut data = vec![0.0; m * c];
        for (b, block) in data.chunks_exact_mut(CHANNELS * c).enumerate() {
            for (k, lanes) in block.chunks_exact_mut(CHANNELS).enumerate() {
                for (l, v) in lanes.iter_mut().enumerate() {
                    *v = filter[(b * CHANNELS + l) * c + k];
                }
            }
        }
        Some(BlockFilters { m, c, data })
    }

    /// Output channels.
    pub(crate) fn filters(&self) -> usize {
        self.m
    }

    /// Input channels.
    pub(crate) fn channels(&self) -> usize {
        self.c
    }
}

/// Whether [`forward`] runs for `m` filters over `c` channels on this CPU.
pub(crate) fn runs(m: usize, c: usize) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        m > 0
            && c > 0
            && m.is_multiple_of(CHANNELS)
            && c.is_multiple_of(CHANNELS)
            && std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (m, c);
        false
    }
}

/// What runs on a computed stretch of a block's pixels after [`Finish`]: `(block, values)`.
pub(crate) type Rest = dyn Fn(usize, &mut [f32]) + Sync;

/// `y = finish(w x)` for `n` samples of `hw` pixels: `x` holds `c` channels a sample, in
/// blocks when `x_blocks`, else in planes; `y` gets `m` channels a sample in blocks, each
/// tile's sums through `finish` in registers before they are stored (a pass over the
/// stored ofmap was a tenth of the kernel's time on the layers of few channels). `rest(block,
/// values)` then runs on each computed stretch of a block's pixels (`values`: pixels of 8
/// channels side by side), in any order and on any thread (an activation `finish` leaves).
///
/// # Panics
/// Where [`runs`] does not hold, or on short slices.
#[allow(clippy::too_many_arguments)]
pub(crate) fn forward(
    w: &BlockFilters,
    n: usize,
    hw: usize,
    x: &[f32],
    x_blocks: bool,
    y: &mut [f32],
    finish: &Finish,
    rest: Option<&Rest>,
) {
    let (m, c) = (w.m, w.c);
    assert!(
        runs(m, c),
        "the channel-block kernel needs AVX2, FMA and whole blocks"
    );
    assert!(x.len() >= n * c * hw && y.len() >= n * m * hw);
    if n == 0 || hw == 0 {
        return;
    }
    let blocks = m / CHANNELS;
    let pixels = PIXELS.min(hw);
    let chunks = hw.div_ceil(pixels);
    // Blocks a task: an even number (pairs fill the tile), enough MACs to pay the hand-off.
    let per_block = pixels * c * CHANNELS;
    let per_task = TASK_MACS
        .div_ceil(per_block)
        .next_multiple_of(2)
        .min(blocks);
    let groups = blocks.div_ceil(per_task);
    /// `y`, whose disjoint stretches the tasks write.
    struct Out(*mut f32);
    // SAFETY: every task writes its own blocks' pixels of its own sample.
    unsafe impl Sync for Out {}
    let out = Out(y.as_mut_ptr());
    (0..n * chunks * groups).into_par_iter().for_each(|t| {
        let (sample, within) = (t / (chunks * groups), t % (chunks * groups));
        let (chunk, group) = (within / groups, within % groups);
        let p0 = chunk * pixels;
        let task = Task {
            w,
            finish,
            hw,
            x: &x[sample * c * hw..(sample + 1) * c * hw],
            x_blocks,
            pixels: p0..(p0 + pixels).min(hw),
            blocks: group * per_task..((group + 1) * per_task).min(blocks),
        };
        let out = &out;
        // SAFETY: sample `sample` of `y` holds `m x hw` values (asserted); this task writes,
        // and lends to `finish`, only its blocks' stretch of its pixels.
        unsafe {
            let ys = out.0.add(sample * m * hw);
            #[cfg(target_arch = "x86_64")]
            task.run(ys);
            let Some(rest) = rest else { return };
            for b in task.blocks.clone() {
                let at = ys.add(b * hw * CHANNELS + task.pixels.start * CHANNELS);
                let len = task.pixels.len() * CHANNELS;
                rest(b, std::slice::from_raw_parts_mut(at, len));
            }
        }
    });
}

/// One task of [`forward`]: one sample's `pixels` for output `blocks`.
struct Task<'a> {
    w: &'a BlockFilters,
    finish: &'a Finish<'a>,
    hw: usize,
    x: &'a [f32],
    x_blocks: bool,
    pixels: std::ops::Range<usize>,
    blocks: std::ops::Range<usize>,
}

#[cfg(target_arch = "x86_64")]
impl Task<'_> {
    /// # Safety
    /// AVX2 and FMA ([`runs`]); `y` points at the sample's `m x hw` outputs.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn run(&self, y: *mut f32) {
        let (c, hw) = (self.w.c, self.hw);
        // A channel's value at a pixel: `cb * step.0 + lane * step.1 + pixel * step.2`.
        let step = if self.x_blocks {
            (hw * CHANNELS, 1, CHANNELS)
        } else {
            (hw * CHANNELS, hw, 1)
        };
        for k0 in (0..c).step_by(KC) {
            let kc = KC.min(c - k0);
            let mut b = self.blocks.start;
            while b < self.blocks.end {
                // Pairs of blocks; a lone three (24 filters) as one tile of 4 pixels.
                let left = self.blocks.end - b;
                let v = if left == 3 { 3 } else { left.min(2) };
                let most = match v {
                    1 => 12,
                    2 => 6,
                    _ => 4,
                };
                let mut p = self.pixels.start;
                while p < self.pixels.end {
                    let left = self.pixels.end - p;
                    // A short last tile (49 pixels: 8 x 6 + 1) keeps too few accumulators
                    // to cover the FMA latency: the last two share their pixels (4 + 3).
                    let count = if left > most && left < most + most / 2 {
                        left / 2
                    } else {
                        left.min(most)
                    };
                    let tile = Tile {
                        x: self.x.as_ptr().add((k0 / CHANNELS) * step.0 + p * step.2),
                        step,
                        w: self.w.data.as_ptr().add(b * CHANNELS * c + k0 * CHANNELS),
                        w_block: CHANNELS * c,
                        kc,
                        y: y.add(b * hw * CHANNELS + p * CHANNELS),
                        y_block: hw * CHANNELS,
                        add: k0 > 0,
                        finish: (k0 + kc == c).then_some((self.finish, b * CHANNELS)),
                    };
                    macro_rules! shapes {
                        ($($v:literal: $($p:literal)*;)*) => {
                            match (v, count) {
                                $($(($v, $p) => tile.run::<$p, $v>(),)*)*
                                _ => unreachable!("{v} blocks, {count} pixels"),
                            }
                        };
                    }
                    shapes! {
                        1: 1 2 3 4 5 6 7 8 9 10 11 12;
                        2: 1 2 3 4 5 6;
                        3: 1 2 3 4;
                    }
                    p += count;
                }
                b += v;
            }
        }
    }
}

/// `P` pixels times `V` blocks of output channels over `kc` input channels.
struct Tile<'a> {
    /// The first pixel's first channel of the step's ifmap.
    x: *const f32,
    /// Strides of the ifmap: between blocks of channels, channels in a block, pixels.
    step: (usize, usize, usize),
    /// The first block's weights of the first channel.
    w: *const f32,
    /// Stride between blocks of weights.
    w_block: usize,
    kc: usize,
    /// The first pixel of the first block of the ofmap.
    y: *mut f32,
    /// Stride between blocks of the ofmap.
    y_block: usize,
    /// Add the sums to what `y` holds (a later block of [`KC`] channels).
    add: bool,
    /// The epilogue and the tile's first output channel, on the last block of channels.
    finish: Option<(&'a Finish<'a>, usize)>,
}

#[cfg(target_arch = "x86_64")]
impl Tile<'_> {
    /// # Safety
    /// AVX2 and FMA; the tile's channels, pixels and blocks lie in the operands.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn run<const P: usize, const V: usize>(&self) {
        if self.step.1 == 1 {
            self.run_on::<P, V, true>()
        } else {
            self.run_on::<P, V, false>()
        }
    }

    /// [`run`](Self::run) on an ifmap in blocks (`BLOCKS`: a step's values at fixed offsets
    /// from one pointer) or planes (one pointer a channel, the pixels at fixed offsets).
    /// Offsets known at compile time: computed at run time from the strides, the addresses
    /// took more registers than there are and the accumulators spilled in the inner loop.
    ///
    /// # Safety
    /// As [`run`](Self::run).
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn run_on<const P: usize, const V: usize, const BLOCKS: bool>(&self) {
        use std::arch::x86_64::*;
        const L: usize = CHANNELS;
        let (cb_step, lane_step, _) = self.step;
        let mut acc = [[_mm256_setzero_ps(); V]; P];
        let w: [*const f32; V] = std::array::from_fn(|v| self.w.add(v * self.w_block));
        for cb in 0..self.kc / L {
            let x = self.x.add(cb * cb_step);
            let w: [*const f32; V] = std::array::from_fn(|v| w[v].add(cb * L * L));
            for lane in 0..L {
                let wv: [__m256; V] = std::array::from_fn(|v| _mm256_loadu_ps(w[v].add(lane * L)));
                for (i, row) in acc.iter_mut().enumerate() {
                    let at = if BLOCKS {
                        x.add(i * L + lane)
                    } else {
                        x.add(lane * lane_step + i)
                    };
                    let xv = _mm256_broadcast_ss(&*at);
                    for (a, wv) in row.iter_mut().zip(&wv) {
                        *a = _mm256_fmadd_ps(xv, *wv, *a);
                    }
                }
            }
        }
        for (i, row) in acc.iter().enumerate() {
            for (v, a) in row.iter().enumerate() {
                let at = self.y.add(v * self.y_block + i * L);
                let value = if self.add {
                    _mm256_add_ps(_mm256_loadu_ps(at), *a)
                } else {
                    *a
                };
                _mm256_storeu_ps(at, value);
            }
        }
        if let Some((finish, first)) = self.finish {
            self.finish::<P, V>(finish, first);
        }
    }

    /// The tile's outputs, just stored (in L1), through `finish`. Apart from [`run_on`]
    /// (Self::run_on) and not inlined: the epilogue in its registers had its constants
    /// hoisted out of the loop, whose accumulators then spilled (1.27x the time).
    ///
    /// # Safety
    /// AVX; the tile lies in the ofmap.
    #[target_feature(enable = "avx")]
    #[inline(never)]
    unsafe fn finish<const P: usize, const V: usize>(&self, finish: &Finish, first: usize) {
        use std::arch::x86_64::*;
        const L: usize = CHANNELS;
        for v in 0..V {
            let lanes = finish.lanes(first + v * L);
            for i in 0..P {
                let at = self.y.add(v * self.y_block + i * L);
                _mm256_storeu_ps(at, lanes.apply(_mm256_loadu_ps(at)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::blocks::{self, Clip};
    use crate::rng::Rng;

    /// Every output against the product under the plane layout, bit for bit: filters and
    /// channels from one block to past [`KC`] (a second block of the sum), a lone three
    /// blocks, pixels that leave a short tile and several tasks, both ifmap layouts.
    #[test]
    fn forward_equals_the_product_on_planes_bit_for_bit() {
        if !runs(8, 8) {
            panic!("this test needs AVX2 and FMA: the kernel runs only there");
        }
        let mut rng = Rng::new(3);
        for (n, m, c, hw) in [
            (1, 8, 8, 1),
            (2, 24, 16, 49),
            (1, 16, 264, 13),
            (3, 40, 32, 200),
            (1, 96, 576, 16),
            (2, 32, 96, 784),
        ] {
            let x: Vec<f32> = (0..n * c * hw).map(|_| rng.symmetric(1.0)).collect();
            let filter: Vec<f32> = (0..m * c).map(|_| rng.symmetric(1.0)).collect();
            let mut want = vec![0.0; n * m * hw];
            for (xs, ys) in x.chunks(c * hw).zip(want.chunks_mut(m * hw)) {
                crate::sgemm::product(m, hw, c, &filter, xs, ys);
            }
            let w = BlockFilters::new(m, c, &filter).unwrap();
            for x_blocks in [false, true] {
                let mut xin = x.clone();
                if x_blocks {
                    for (xs, bs) in x.chunks(c * hw).zip(xin.chunks_mut(c * hw)) {
                        blocks::to_blocks(c, hw, xs, bs);
                    }
                }
                let mut got = vec![f32::NAN; n * m * hw];
                let finish = Finish {
                    bias: None,
                    affine: None,
                    clip: Clip::None,
                };
                forward(&w, n, hw, &xin, x_blocks, &mut got, &finish, None);
                let mut planes = vec![0.0; n * m * hw];
                for (gs, ps) in got.chunks(m * hw).zip(planes.chunks_mut(m * hw)) {
                    blocks::from_blocks(m, hw, gs, ps);
                }
                let same = planes
                    .iter()
                    .zip(&want)
                    .all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(same, "n {n} m {m} c {c} hw {hw} blocks {x_blocks}");
            }
        }
    }

    /// `finish` runs on every output once, after the last block of [`KC`] channels (264
    /// channels: two), and `rest` once after it, each stretch in its place.
    #[test]
    fn the_epilogue_runs_once_on_every_output() {
        let (n, m, c, hw) = (2, 48, 264, 300);
        let w = BlockFilters::new(m, c, &vec![1.0; m * c]).unwrap();
        let x = vec![1.0; n * c * hw];
        let mut y = vec![0.0; n * m * hw];
        let bias: Vec<f32> = (0..m).map(|k| k as f32 * 100.0).collect();
        let (scale, shift) = (vec![2.0; m], vec![1.0; m]);
        let finish = Finish {
            bias: Some(&bias),
            affine: Some((&scale, &shift)),
            clip: Clip::MaxMin(0.0, 5000.0),
        };
        let rest = |_: usize, values: &mut [f32]| values.iter_mut().for_each(|v| *v += 0.5);
        forward(&w, n, hw, &x, true, &mut y, &finish, Some(&rest));
        let mut planes = vec![0.0; n * m * hw];
        for (ys, ps) in y.chunks(m * hw).zip(planes.chunks_mut(m * hw)) {
            blocks::from_blocks(m, hw, ys, ps);
        }
        for (i, v) in planes.iter().enumerate() {
            let channel = (i / hw) % m;
            let want = ((c as f32 + channel as f32 * 100.0) * 2.0 + 1.0).min(5000.0) + 0.5;
            assert_eq!(*v, want, "value {i}");
        }
    }
}
