//! CONV (grouped and depthwise included) and FC: forward and backward on im2col + gemm,
//! rayon over the samples of the batch.

use super::blocked::{self, BlockedFilters};
use super::winograd::{self, WinogradFilters};
use super::{activation_in_place, Residual};
use super::{direct, implicit};
use crate::kernels::pointwise::{self, BlockFilters};
use crate::kernels::{
    blocks, interleave_taps, matmul, plain, transposed, wide, with_scratch, ConvGeometry, CHANNELS,
};
use crate::sgemm::{self, product, product_add, product_packed, PackedFilters, PANEL_ROWS};
use joule_model::ops::{Activation, Conv};
use joule_model::LoopNest;
use rayon::prelude::*;

/// Samples per unit of parallel work in the backward pass.
const SAMPLES_PER_CHUNK: usize = 8;

fn geometry(conv: &Conv, nest: &LoopNest) -> ConvGeometry {
    ConvGeometry {
        c: nest.c,
        h: nest.h,
        w: nest.w,
        p: nest.p,
        q: nest.q,
        r: nest.r,
        s: nest.s,
        stride_h: nest.stride_h,
        stride_w: nest.stride_w,
        pad_top: conv.padding.top,
        pad_left: conv.padding.left,
        dilation_h: nest.dilation_h,
        dilation_w: nest.dilation_w,
    }
}

/// What follows a CONV or FC in the same pass over its ofmap, in this order: the bias, an
/// inference-mode batch norm as its per-channel affine map `v * scale + shift`
/// ([`batch_norm_affine`](super::batch_norm_affine)), an activation. Each step rounds as the
/// separate layer would, so fusing does not change a bit.
#[derive(Clone, Copy, Debug, Default)]
pub struct Epilogue<'a> {
    pub bias: Option<&'a [f32]>,
    pub affine: Option<(&'a [f32], &'a [f32])>,
    pub activation: Option<Activation>,
}

impl Epilogue<'_> {
    /// Applies the epilogue to the values of output channel `channel` (16 lanes wide on
    /// AVX-512, 8 on AVX2: it was a tenth of mobilenet_v2's time in 4 lanes).
    pub(super) fn channel(&self, channel: usize, values: &mut [f32]) {
        wide(
            #[inline(always)]
            || self.passes(channel, values),
        )
    }

    /// The epilogue on channel blocks: its per-channel steps (a clipping activation among
    /// them), and an activation left to run after them.
    pub(crate) fn block_steps(&self) -> (blocks::Finish<'_>, Option<Activation>) {
        use crate::kernels::blocks::Clip;
        let (clip, rest) = match self.activation {
            Some(Activation::Relu6) => (Clip::Clamp(0.0, 6.0), None),
            Some(Activation::Clip { min, max }) => (Clip::MaxMin(min, max), None),
            Some(Activation::Relu) => (Clip::MaxMin(0.0, f32::INFINITY), None),
            other => (Clip::None, other),
        };
        let finish = blocks::Finish {
            bias: self.bias,
            affine: self.affine,
            clip,
        };
        (finish, rest)
    }

    /// One pass over the values: the bias, the affine map and a clipping activation fused
    /// into one loop (their passes were 6% of mobilenet_v2's time; a batch norm and ReLU6
    /// over 16 x 96 planes of 56x56 went 2556 -> 2343 us, alternating), each step rounded as
    /// it was on its own (no multiply-add is fused), so the same bits.
    #[inline(always)]
    fn passes(&self, channel: usize, values: &mut [f32]) {
        let bias = self.bias.map(|b| b[channel]);
        let affine = self.affine.map(|(k, b)| (k[channel], b[channel]));
        #[inline(always)]
        fn each(
            v: &mut [f32],
            bias: Option<f32>,
            affine: Option<(f32, f32)>,
            f: impl Fn(f32) -> f32,
        ) {
            match (bias, affine) {
                (Some(b), Some((k, s))) => v.iter_mut().for_each(|v| *v = f((*v + b) * k + s)),
                (Some(b), None) => v.iter_mut().for_each(|v| *v = f(*v + b)),
                (None, Some((k, s))) => v.iter_mut().for_each(|v| *v = f(*v * k + s)),
                (None, None) => v.iter_mut().for_each(|v| *v = f(*v)),
            }
        }
        // The clipping activations with their bounds hoisted, so the loop vectorises (the
        // generic per-value match does not); each computes what `activate` does, bit for bit.
        match self.activation {
            Some(Activation::Relu6) => each(values, bias, affine, |v| v.clamp(0.0, 6.0)),
            Some(Activation::Clip { min, max }) => {
                each(values, bias, affine, |v| v.max(min).min(max))
            }
            Some(Activation::Relu) => each(values, bias, affine, |v| v.max(0.0)),
            Some(act) => {
                if bias.is_some() || affine.is_some() {
                    each(values, bias, affine, |v| v);
                }
                activation_in_place(act, values)
            }
            None if bias.is_some() || affine.is_some() => each(values, bias, affine, |v| v),
            None => {}
        }
    }
}

/// A sample whose ofmap has fewer pixels than this is lowered side by side with the next
/// samples of the batch into one wide product: the `gemm` crate packs both operands on every
/// call and runs its kernels at speed only on a wide right-hand side (vgg-small's 7x7 layer
/// and resnet's last stages are 49 and 16 columns a sample). Not on the AVX2 kernel's
/// machines, where the copies in and out cost more than they saved (2026-12-01, AMD EPYC, 1
/// thread: mobilenet_v2 batch 16 11% faster without, efficientnet_b0 11%, vgg-small, resnet18
/// and LeNet-5 within noise; 2 threads: mobilenet_v2 36%).
const WIDE: usize = 256;

/// A batch-1 convolution of at least this many MACs splits its filters in two halves that
/// rayon may run on two cores. Two halves whatever the thread count, so the result does not
/// depend on it.
const SPLIT_MACS: usize = 1 << 20;

/// Whether a batch-1 convolution of `m` filters splits its `pq` columns in two halves rather
/// than its filters: halves of 48 filters or fewer leave a thread a row tile short of the
/// kernel's 6 rows (24 filters split 16 + 8: two thirds of the work on one core), while
/// halves of the columns keep every tile whole. Measured per layer on mobilenet_v2 at batch
/// 1, 2 threads, alternating pass by pass (AMD EPYC, 2026-12-01): its projections to 16, 24
/// and 32 channels at 56x56 to 14x14 took 0.79-0.91 of their time.
fn column_halves(m: usize, pq: usize) -> bool {
    m <= 48 && pq >= 2 * sgemm::PANEL_COLUMNS
}

/// A batch-1 FC layer of at least this many MACs splits its rows in two halves that rayon
/// may run on two cores.
const FC_SPLIT_MACS: usize = 1 << 17;

/// Depthwise work (MACs) per rayon task: smaller layers would spend more on the hand-off.
const DEPTHWISE_TASK_MACS: usize = 1 << 14;

/// `y = epilogue(conv(x, filter))` for the whole batch (`nest.n` samples). Every output is
/// computed the same way on every run: the kernel and the split of the work follow from the
/// geometry and the batch size alone, never from the thread count.
pub fn conv_forward(
    conv: &Conv,
    nest: &LoopNest,
    x: &[f32],
    filter: &[f32],
    epilogue: &Epilogue,
    y: &mut [f32],
) {
    conv_forward_prepared(conv, nest, x, filter, None, epilogue, y)
}

/// One sample's ifmap lowered into `col` with its channels in two halves that rayon may run
/// on two cores (a batch-1 layer's lowering kept one core waiting); the same values as
/// [`ConvGeometry::im2col`].
fn im2col_halves(g: &ConvGeometry, x: &[f32], col: &mut [f32]) {
    if g.c < 2 {
        return g.im2col(x, col);
    }
    let half = g.c / 2;
    let (x0, x1) = x.split_at(half * g.h * g.w);
    let (col0, col1) = col.split_at_mut(half * g.r * g.s * g.p * g.q);
    let lower = |c: usize, x: &[f32], col: &mut [f32]| ConvGeometry { c, ..*g }.im2col(x, col);
    rayon::join(|| lower(half, x0, col0), || lower(g.c - half, x1, col1));
}

/// Rows `rows` of one group's filters (`k` columns) times `b` into `c`: on the filters packed
/// once ([`PackedFilters`]) when given (same bits as packing them on the call).
fn filter_product(
    packed: Option<&PackedFilters>,
    filter: &[f32],
    rows: std::ops::Range<usize>,
    n: usize,
    k: usize,
    b: &[f32],
    c: &mut [f32],
) {
    match packed {
        Some(packed) => product_packed(packed, rows, n, b, c),
        None => {
            let filter = &filter[rows.start * k..rows.end * k];
            product(rows.len(), n, k, filter, b, c)
        }
    }
}

/// A CONV's filters prepared once per weights for the kernel that runs it.
#[derive(Clone, Debug)]
pub(crate) enum Filters {
    /// Packed for the product on the lowered ifmap (`m x crs`, one group).
    Packed(PackedFilters),
    /// In blocks of output channels for [`blocked::forward`] and [`blocked::fc`] (AVX2 and
    /// AVX-512 machines).
    Blocked(BlockedFilters),
    /// Transformed for Winograd's F(2x2, 3x3) (3x3 stride-1 layers), and packed for the
    /// batch sizes where the direct kernel is expected to be faster ([`winograd::pays`]).
    Winograd(WinogradFilters, Option<PackedFilters>),
    /// A 1x1 layer's filters in blocks of output channels for the channel-block layout
    /// ([`conv_forward_blocks`]), and as the layer on planes wants them.
    ChannelBlocks(BlockFilters, Option<Box<Filters>>),
    /// A depthwise layer's filters for the kernel on eight channels at once, each block's
    /// taps interleaved ([`interleave_taps`]):
    /// gathered for every block of every sample, they took a third of a 4 x 4 map's time.
    Depthwise(Vec<f32>),
}

/// Whether [`conv_forward_blocks`] runs this layer (on this CPU): depthwise layers of whole
/// blocks of channels, and 1x1 stride-1 layers of whole blocks of filters and channels.
pub(crate) fn channel_blocks(conv: &Conv, nest: &LoopNest) -> bool {
    let g = geometry(conv, nest);
    let depthwise = g.c == 1 && nest.m == 1 && nest.groups > 1;
    if depthwise {
        return nest.groups.is_multiple_of(CHANNELS) && g.channels_run();
    }
    // On AVX-512 machines the blocked kernel, 16 filters a vector, takes 1x1 layers (it
    // reads and writes blocks too): mobilenet_v2 (Zen 5, 2026-12-02, alternating
    // processes, 4-6 rounds) took 0.76 of the time at batch 16 and 0.84-0.95 at batch 1.
    nest.groups == 1 && g.is_pointwise() && pointwise::runs(nest.m, g.c) && !sgemm::avx512()
}

/// `filter` (`m x c x r x s`) prepared for the kernel [`conv_forward_prepared`] picks for
/// this layer; `None` where it reads them as they are.
pub(crate) fn prepare_filters(conv: &Conv, nest: &LoopNest, filter: &[f32]) -> Option<Filters> {
    let planes = prepare_for_planes(conv, nest, filter);
    let g = geometry(conv, nest);
    let rs = g.r * g.s;
    if g.c == 1 && nest.m == 1 && nest.groups > 1 && filter.len() == nest.groups * rs {
        return Some(Filters::Depthwise(interleave_taps(filter, rs)));
    }
    if nest.groups == 1 && channel_blocks(conv, nest) {
        if let Some(blocks) = BlockFilters::new(nest.m, g.c, filter) {
            return Some(Filters::ChannelBlocks(blocks, planes.map(Box::new)));
        }
    }
    planes
}

/// [`prepare_filters`] for the kernels on planes.
fn prepare_for_planes(conv: &Conv, nest: &LoopNest, filter: &[f32]) -> Option<Filters> {
    let g = geometry(conv, nest);
    if filter.len() != nest.groups * nest.m * g.col_rows() {
        return None;
    }
    if nest.groups != 1 {
        return None;
    }
    let packed = PackedFilters::new(nest.m, g.col_rows(), filter);
    if winograd_chosen(&g, nest) {
        let transformed = WinogradFilters::new(nest.m, g.c, filter);
        return Some(Filters::Winograd(transformed, packed));
    }
    if blocked_chosen(&g, nest) {
        return Some(Filters::Blocked(BlockedFilters::new(
            nest.m,
            g.col_rows(),
            filter,
        )));
    }
    packed.map(Filters::Packed)
}

/// Whether [`prepare_filters`] transforms the filters for Winograd: where it is expected to
/// win at batch 1 or at a large batch.
fn winograd_chosen(g: &ConvGeometry, nest: &LoopNest) -> bool {
    winograd::applies(g, nest.groups, nest.m)
        && [1, 64].iter().any(|&n| winograd::pays(g, n, nest.m))
}

/// Whether [`prepare_filters`] lays the filters out for the blocked kernel.
fn blocked_chosen(g: &ConvGeometry, nest: &LoopNest) -> bool {
    !winograd_chosen(g, nest) && blocked::applies(g, nest.groups) && blocked::pays(g)
}

/// Whether [`conv_forward_blocks`] runs this layer from an ifmap in planes into channel
/// blocks, on the blocked kernel (whose own output layout they are: the transposes back to
/// planes are skipped). Not where [`channel_blocks`] holds, nor where the direct kernel
/// takes the layer on planes.
pub(crate) fn writes_channel_blocks(conv: &Conv, nest: &LoopNest) -> bool {
    let g = geometry(conv, nest);
    !channel_blocks(conv, nest)
        && nest.groups == 1
        && nest.m.is_multiple_of(CHANNELS)
        && !direct::applies(&g, 1, nest.m)
        && blocked_chosen(&g, nest)
}

/// Whether [`conv_forward_blocks`] runs this layer on the blocked kernel with its ifmap in
/// channel blocks too: where [`writes_channel_blocks`] holds, on whole blocks of channels.
/// The blocked kernel reads taps from blocks as from planes (only their offsets change), so
/// the layers between such layers pass blocks with no transposes and no epilogue pass
/// over planes.
pub(crate) fn reads_channel_blocks(conv: &Conv, nest: &LoopNest) -> bool {
    nest.c.is_multiple_of(CHANNELS) && writes_channel_blocks(conv, nest)
}

/// [`conv_forward`] with the filters prepared by [`prepare_filters`] (same bits as direct
/// where they are packed; Winograd's rounding where they are transformed).
pub(crate) fn conv_forward_prepared(
    conv: &Conv,
    nest: &LoopNest,
    x: &[f32],
    filter: &[f32],
    prepared: Option<&Filters>,
    epilogue: &Epilogue,
    y: &mut [f32],
) {
    let g = geometry(conv, nest);
    let (groups, m, pq) = (nest.groups, nest.m, nest.p * nest.q);
    let crs = g.col_rows();
    let prepared = match prepared {
        Some(Filters::ChannelBlocks(_, planes)) => planes.as_deref(),
        other => other,
    };
    if let Some(Filters::Winograd(w, _)) = prepared {
        let fits = w.filters() == m && w.channels() == g.c && winograd::applies(&g, groups, m);
        if fits && winograd::pays(&g, nest.n, m) {
            return winograd::forward(&g, nest.n, w, x, epilogue, y);
        }
    }
    let packed = match prepared {
        Some(Filters::Packed(p)) | Some(Filters::Winograd(_, Some(p))) => Some(p),
        _ => None,
    };
    if g.c == 1 && groups > 1 {
        let filters = (filter, depthwise_taps(prepared));
        return depthwise_forward(&g, groups, m, x, filters, epilogue, (false, false), y);
    }
    if direct::applies(&g, groups, m) {
        return direct::forward(&g, nest.n, m, x, filter, epilogue, y);
    }
    if let Some(Filters::Blocked(b)) = prepared {
        if b.rows() == m && b.depth() == crs && blocked::applies(&g, groups) {
            return blocked::forward(&g, nest.n, b, (x, false), epilogue, SPLIT_MACS, y);
        }
    }
    let packed = packed.filter(|p| groups == 1 && p.rows() == m && p.depth() == crs);
    if let (Some(packed), true) = (
        packed,
        implicit::applies(&g, groups) && implicit::pays(&g, m),
    ) {
        return implicit::forward(&g, nest.n, packed, x, epilogue, SPLIT_MACS, y);
    }
    let in_len = groups * g.c * g.h * g.w;
    let out_len = groups * m * pq;
    let filter_len = m * crs;
    let col_len = if g.is_pointwise() { 0 } else { g.col_len() };
    if nest.n == 1 && groups == 1 && m >= 16 && m * pq * crs >= SPLIT_MACS {
        // One sample: lower it once, then the two halves of the filters in parallel.
        let columns = packed.map_or(0, |_| sgemm::columns_len(crs, pq));
        return with_scratch(col_len + columns, |buffer| {
            let (col, panels) = buffer.split_at_mut(col_len);
            let lowered: &[f32] = if g.is_pointwise() {
                x
            } else {
                im2col_halves(&g, x, col);
                col
            };
            if packed.is_some() {
                // Packed for the product once, not once a half.
                sgemm::pack_columns(crs, pq, lowered, panels);
            }
            if let (Some(a), true) = (packed, column_halves(m, pq)) {
                let finish = |row: usize, values: &mut [f32]| epilogue.channel(row, values);
                return sgemm::product_columns_halves(a, pq, panels, &mut y[..out_len], &finish);
            }
            // Halves on a panel boundary, so that either can start a packed product.
            let half = m.div_ceil(2).next_multiple_of(PANEL_ROWS);
            let panels: &[f32] = panels;
            y[..out_len]
                .par_chunks_mut(half * pq)
                .enumerate()
                .for_each(|(h, yh)| {
                    let rows = h * half..h * half + yh.len() / pq;
                    match packed {
                        Some(a) => sgemm::product_columns(a, rows, pq, panels, yh),
                        None => filter_product(None, filter, rows, pq, crs, lowered, yh),
                    }
                    for (c, channel) in yh.chunks_mut(pq).enumerate() {
                        epilogue.channel(h * half + c, channel);
                    }
                });
        });
    }
    let per = if pq >= WIDE || sgemm::avx2_only() {
        1
    } else {
        WIDE.div_ceil(pq).min(nest.n)
    };
    if per > 1 {
        return y[..nest.n * out_len]
            .par_chunks_mut(out_len * per)
            .zip(x.par_chunks(in_len * per))
            .for_each(|(yc, xc)| {
                let width = (yc.len() / out_len) * pq;
                with_scratch(crs * width + m * width, |buffer| {
                    let (col, out) = buffer.split_at_mut(crs * width);
                    for group in 0..groups {
                        for (s, xi) in xc.chunks(in_len).enumerate() {
                            let xg = &xi[group * g.c * g.h * g.w..(group + 1) * g.c * g.h * g.w];
                            g.im2col_strided(xg, &mut col[s * pq..], width);
                        }
                        let wg = &filter[group * filter_len..(group + 1) * filter_len];
                        filter_product(packed, wg, 0..m, width, crs, col, out);
                        for (s, yi) in yc.chunks_mut(out_len).enumerate() {
                            for j in 0..m {
                                let channel = group * m + j;
                                let dst = &mut yi[channel * pq..(channel + 1) * pq];
                                dst.copy_from_slice(&out[j * width + s * pq..][..pq]);
                                epilogue.channel(channel, dst);
                            }
                        }
                    }
                });
            });
    }
    y.par_chunks_mut(out_len)
        .zip(x.par_chunks(in_len))
        .for_each(|(yi, xi)| {
            with_scratch(col_len, |col| {
                for group in 0..groups {
                    let xg = &xi[group * g.c * g.h * g.w..(group + 1) * g.c * g.h * g.w];
                    let lowered: &[f32] = if g.is_pointwise() {
                        xg
                    } else {
                        g.im2col(xg, col);
                        col
                    };
                    let wg = &filter[group * filter_len..(group + 1) * filter_len];
                    let yg = &mut yi[group * m * pq..(group + 1) * m * pq];
                    filter_product(packed, wg, 0..m, pq, crs, lowered, yg);
                }
            });
            for (c, channel) in yi.chunks_mut(pq).enumerate() {
                epilogue.channel(c, channel);
            }
        });
}

/// [`conv_forward_prepared`] with the ifmap (`x_blocks`) or the ofmap (`y_blocks`) in
/// channel blocks ([`crate::kernels::blocks`]) rather than planes, on a layer where
/// [`channel_blocks`] or [`writes_channel_blocks`] holds ([`reads_channel_blocks`] for an
/// ifmap in blocks there), its filters prepared by [`prepare_filters`]. Each value is the
/// one [`conv_forward_prepared`] computes, bit for bit, in its place in the layout.
/// `residual`: an addition's other operand, added before the epilogue's activation where
/// [`adds_residual`] holds (its values as the addition after the layer gives them).
///
/// # Panics
/// Where none of those holds, the layer's filters are not prepared for its kernel, or a
/// residual comes where [`adds_residual`] does not hold.
#[allow(clippy::too_many_arguments)]
pub(crate) fn conv_forward_blocks(
    conv: &Conv,
    nest: &LoopNest,
    x: &[f32],
    filter: &[f32],
    prepared: Option<&Filters>,
    epilogue: &Epilogue,
    (x_blocks, y_blocks): (bool, bool),
    residual: Option<Residual>,
    y: &mut [f32],
) {
    let g = geometry(conv, nest);
    let (n, m, hw) = (nest.n, nest.m, nest.p * nest.q);
    assert!(
        residual
            .is_none_or(|r| adds_residual(conv, nest, y_blocks) && r.values.len() >= n * m * hw),
        "a residual added where the layer does not add it"
    );
    if writes_channel_blocks(conv, nest) {
        assert!(!x_blocks || reads_channel_blocks(conv, nest));
        let Some(Filters::Blocked(b)) = prepared else {
            panic!("a layer writing channel blocks runs on its blocked filters");
        };
        if !y_blocks {
            return blocked::forward(&g, n, b, (x, x_blocks), epilogue, SPLIT_MACS, y);
        }
        let finish = |range: std::ops::Range<usize>, at: usize, out: &mut [f32]| {
            let (finish, rest) = epilogue.block_steps();
            // Each block's run of pixels: all `hw`, or a part where one sample splits.
            let per = out.len() / range.len().max(1);
            for (i, (b, block)) in range.zip(out.chunks_exact_mut(per.max(1))).enumerate() {
                // Only x86 machines write blocks (the blocked kernel's).
                #[cfg(target_arch = "x86_64")]
                {
                    // The residual's values where the block lies in `y`.
                    let r = residual.map(|r| (&r.values[at + i * per..][..block.len()], r.first));
                    blocks::finish(block, &finish, b * CHANNELS, r);
                }
                if let Some(act) = rest {
                    activation_in_place(act, block);
                }
            }
        };
        return blocked::forward_blocks(&g, n, b, (x, x_blocks), &finish, SPLIT_MACS, y);
    }
    assert!(
        channel_blocks(conv, nest),
        "a layer the channel blocks do not run"
    );
    if g.c == 1 {
        let (layout, filters) = ((x_blocks, y_blocks), (filter, depthwise_taps(prepared)));
        return depthwise_forward(&g, nest.groups, m, x, filters, epilogue, layout, y);
    }
    let Some(Filters::ChannelBlocks(w, _)) = prepared else {
        panic!("a 1x1 layer on channel blocks runs on its prepared filters");
    };
    assert!(w.filters() == m && w.channels() == g.c);
    let (finish, rest) = epilogue.block_steps();
    let rest = rest.map(|act| move |_: usize, values: &mut [f32]| activation_in_place(act, values));
    let rest = rest
        .as_ref()
        .map(|f| f as &(dyn Fn(usize, &mut [f32]) + Sync));
    if y_blocks {
        return pointwise::forward(w, n, hw, x, x_blocks, y, &finish, rest);
    }
    // Planes wanted (the next layer reads them): computed in blocks, then spread.
    with_scratch(n * m * hw, |out| {
        pointwise::forward(w, n, hw, x, x_blocks, out, &finish, rest);
        for (o, ys) in out.chunks(m * hw).zip(y.chunks_mut(m * hw)) {
            blocks::from_blocks(m, hw, o, ys);
        }
    })
}

/// Whether [`conv_forward_blocks`] adds a residual connection to this layer's output in its
/// epilogue: where the blocked kernel writes it into channel blocks (`y_blocks`), on x86
/// machines (the only ones whose blocked kernel writes blocks).
pub(crate) fn adds_residual(conv: &Conv, nest: &LoopNest, y_blocks: bool) -> bool {
    cfg!(target_arch = "x86_64") && y_blocks && writes_channel_blocks(conv, nest)
}

/// Whether [`conv_pool_forward`] runs this layer and the max pooling after it together: a
/// 2x2 pooling of stride 2 (no padding, sizes rounded down) after a layer on the blocked
/// kernel's AVX-512 tile ([`blocked::pools_in_tile`]), whose epilogue is all per-channel
/// steps (a clipping activation or none).
pub(crate) fn pools_in_tile(
    conv: &Conv,
    nest: &LoopNest,
    pool: &joule_model::ops::Pool,
    prepared: Option<&Filters>,
    epilogue: &Epilogue,
) -> bool {
    let g = geometry(conv, nest);
    let two_by_two = pool.kind == joule_model::ops::PoolKind::Max
        && (pool.kernel_h, pool.kernel_w, pool.stride_h, pool.stride_w) == (2, 2, 2, 2)
        && pool.padding == joule_model::ops::Padding::uniform(0)
        && !pool.ceil_mode;
    let blocked = matches!(prepared, Some(Filters::Blocked(b)) if b.rows() == nest.m && b.depth() == g.col_rows());
    two_by_two
        && blocked
        && nest.groups == 1
        && !direct::applies(&g, 1, nest.m)
        && epilogue.block_steps().1.is_none()
        && blocked::pools_in_tile(&g, nest.m)
}

/// `y = maxpool2x2(epilogue(conv(x)))` where [`pools_in_tile`] holds: the pooled ofmap in
/// channel blocks (`y_blocks`) or planes; the ifmap in planes or (`x_blocks`) in blocks
/// ([`reads_channel_blocks`] holding there). The bits of the layer and then the pooling.
#[allow(clippy::too_many_arguments)]
pub(crate) fn conv_pool_forward(
    conv: &Conv,
    nest: &LoopNest,
    x: &[f32],
    prepared: Option<&Filters>,
    epilogue: &Epilogue,
    (x_blocks, y_blocks): (bool, bool),
    y: &mut [f32],
) {
    let g = geometry(conv, nest);
    let Some(Filters::Blocked(b)) = prepared else {
        panic!("a layer pooled in the tile runs on its blocked filters");
    };
    let (finish, rest) = epilogue.block_steps();
    assert!(rest.is_none());
    let (n, m) = (nest.n, nest.m);
    if y_blocks {
        return blocked::forward_pooled(&g, n, b, (x, x_blocks), &finish, SPLIT_MACS, y);
    }
    let windows = (g.p / 2) * (g.q / 2);
    with_scratch(n * m * windows, |out| {
        blocked::forward_pooled(&g, n, b, (x, x_blocks), &finish, SPLIT_MACS, out);
        for (o, ys) in out.chunks(m * windows).zip(y.chunks_mut(m * windows)) {
            blocks::from_blocks(m, windows, o, ys);
        }
    })
}

/// A depthwise layer's interleaved taps, where prepared.
fn depthwise_taps(prepared: Option<&Filters>) -> Option<&[f32]> {
    match prepared {
        Some(Filters::Depthwise(taps)) => Some(taps),
        _ => None,
    }
}

/// Depthwise convolution (one input channel a group, `m` filters each) directly, one
/// (sample, group) plane per task; eight channels a task, with the ifmap or the ofmap in
/// channel blocks where `layout` says (`m == 1` and whole blocks there). `(filter,
/// interleaved)`: the filters, and for those eight channels at a time their taps
/// interleaved when prepared ([`interleave_taps`]).
#[allow(clippy::too_many_arguments)]
fn depthwise_forward(
    g: &ConvGeometry,
    groups: usize,
    m: usize,
    x: &[f32],
    (filter, interleaved): (&[f32], Option<&[f32]>),
    epilogue: &Epilogue,
    layout: (bool, bool),
    y: &mut [f32],
) {
    let (pq, rs, plane) = (g.p * g.q, g.r * g.s, g.h * g.w);
    let taps = g.taps();
    let in_blocks = layout != (false, false);
    assert!(!in_blocks || (m == 1 && groups.is_multiple_of(CHANNELS)));
    if m == 1 && (in_blocks || g.channels_pay()) {
        // Channels in blocks of eight, a lane each; the last few of a sample a plane at a
        // time.
        let per_task = DEPTHWISE_TASK_MACS.div_ceil((CHANNELS * pq * rs).max(1));
        let samples = y
            .par_chunks_mut(groups * pq)
            .zip(x.par_chunks(groups * plane));
        samples.for_each(|(ys, xs)| {
            ys.par_chunks_mut(CHANNELS * pq)
                .zip(xs.par_chunks(CHANNELS * plane))
                .enumerate()
                .with_min_len(per_task)
                .for_each(|(block, (yb, xb))| {
                    let first = block * CHANNELS;
                    let filters = &filter[first * rs..];
                    let block_taps =
                        interleaved.and_then(|t| t.get(first * rs..(first + CHANNELS) * rs));
                    let whole = yb.len() == CHANNELS * pq;
                    if layout.1 {
                        // The epilogue's per-channel steps run in the kernel.
                        let (finish, rest) = epilogue.block_steps();
                        let filters = (filters, block_taps);
                        g.depthwise_channels(xb, filters, yb, layout, Some((&finish, first)));
                        if let Some(act) = rest {
                            activation_in_place(act, yb);
                        }
                        return;
                    }
                    if whole {
                        g.depthwise_channels(xb, (filters, block_taps), yb, layout, None);
                    }
                    for (j, yc) in yb.chunks_mut(pq).enumerate() {
                        if !whole {
                            let xc = &xb[j * plane..(j + 1) * plane];
                            g.depthwise(&taps, xc, &filters[j * rs..(j + 1) * rs], yc);
                        }
                        epilogue.channel(first + j, yc);
                    }
                })
        });
        return;
    }
    let per_task = DEPTHWISE_TASK_MACS.div_ceil((m * pq * rs).max(1));
    y.par_chunks_mut(m * pq)
        .zip(x.par_chunks(plane))
        .enumerate()
        .with_min_len(per_task)
        .for_each(|(i, (yg, xg))| {
            let group = i % groups;
            for (j, yc) in yg.chunks_mut(pq).enumerate() {
                let channel = group * m + j;
                g.depthwise(&taps, xg, &filter[channel * rs..(channel + 1) * rs], yc);
                epilogue.channel(channel, yc);
            }
        });
}

/// A chunk's partial filter gradient, and (for 32 or more filters) its transpose being summed.
type Accumulators = (Vec<f32>, Vec<f32>);

/// Which kernel takes a convolution's weight gradient ([`conv_backward`]).
enum WeightKernel {
    /// The direct kernel's orientation, output pixels on the lanes (few-channel layers).
    Lanes,
    /// The blocked kernel, filters on the lanes, reading the ifmap from these planes.
    Blocked(blocked::Planes),
    /// `dW^T += col dY^T` on our product, the ifmap lowered.
    Transposed,
    /// `dW += dY col^T` on the `gemm` crate, the ifmap lowered.
    Gemm,
}

/// Gradients of a convolution: accumulates into `d_filter` and `d_bias`, writes `dx` when
/// given (the first layer does not need it).
#[allow(clippy::too_many_arguments)]
pub fn conv_backward(
    conv: &Conv,
    nest: &LoopNest,
    x: &[f32],
    filter: &[f32],
    dy: &[f32],
    dx: Option<&mut [f32]>,
    d_filter: &mut [f32],
    d_bias: Option<&mut [f32]>,
) {
    let g = geometry(conv, nest);
    let (groups, m, pq) = (nest.groups, nest.m, nest.p * nest.q);
    let in_len = groups * g.c * g.h * g.w;
    let out_len = groups * m * pq;
    let filter_len = m * g.col_rows();
    let mut dx = dx;
    if let (Some(dxs), 1) = (dx.as_deref_mut().filter(|d| !d.is_empty()), groups) {
        // A stride-1 layer's input gradient as the forward convolution of dY with the
        // filters flipped, on the blocked kernel: no lowered gradient matrix and no col2im
        // (they were a tenth of vgg-small's training time). Against the implicit lowering
        // that ran it before, vgg-small's and LeNet-5's epochs took 0.84-0.98 of the time
        // (alternating epoch by epoch at batch 64, 1 thread). Into a single block of input
        // channels (its tile 1 block x 6 pixels, load-bound) the direct kernel takes it.
        let transposed = implicit::input_gradient(&g, m);
        let blocks = |t: &ConvGeometry| blocked::applies(t, 1) && blocked::pays(t);
        if direct::input_gradient(&g, nest.n, m, filter, dy, dxs) {
            dx = None;
        } else if let Some(t) = transposed.filter(blocks) {
            let flipped = implicit::flipped_filters(&g, m, filter);
            let filters = BlockedFilters::new(g.c, m * g.r * g.s, &flipped);
            let none = Epilogue::default();
            blocked::forward(&t, nest.n, &filters, (dy, false), &none, SPLIT_MACS, dxs);
            dx = None;
        }
    }
    let mut scratch_dx;
    let dx: &mut [f32] = match dx {
        Some(dx) => dx,
        None => {
            scratch_dx = Vec::new();
            &mut scratch_dx
        }
    };
    let want_dx = !dx.is_empty();
    // Each group's filters transposed (CRS x M), for the dx product.
    let crs = g.col_rows();
    let filter_t: Vec<f32> = if want_dx {
        let mut t = vec![0f32; filter.len()];
        for group in 0..groups {
            let (w, wt) = (
                &filter[group * filter_len..(group + 1) * filter_len],
                &mut t[group * filter_len..(group + 1) * filter_len],
            );
            for i in 0..m {
                for k in 0..crs {
                    wt[k * m + i] = w[i * crs + k];
                }
            }
        }
        t
    } else {
        Vec::new()
    };
    // The weight gradient on the blocked kernel where it runs (one group, AVX2 or AVX-512).
    // Against the lowered product (vgg-small, batch 64, one thread, 64 steps, AVX2): 32 -> 64
    // filters at 14x14 1.03 -> 0.55 s, 64 -> 128 at 7x7 1.11 -> 0.66 s, the first layer 0.25
    // -> 0.12 s. On AVX-512 (16 filters a vector) against the product there, alternating
    // whole runs at 2 threads (2026-12-02): vgg-small's epochs 0.83 of the time at batch 64
    // and 256, LeNet-5's 0.92-0.93.
    // Few-channel layers' (the first layer on grey images) on the direct kernel's
    // orientation, pixels on the lanes ([`direct::weight_gradient_sample`]). Elsewhere the
    // old path: dW^T on our product (16-lane vectors) from 32 filters, else `gemm`.
    let kernel = if direct::weight_gradient_applies(&g, groups, m) {
        WeightKernel::Lanes
    } else if groups == 1 && blocked::applies(&g, 1) {
        WeightKernel::Blocked(blocked::Planes::new(&g))
    } else if m >= 32 {
        WeightKernel::Transposed
    } else {
        WeightKernel::Gemm
    };
    // Per sample: the lowered ifmap, the lowered gradient, dY transposed or in blocks,
    // each written whole before it is read, so a thread's scratch serves (freshly zeroed
    // buffers cost a twelfth of vgg-small's training time).
    let lowered_len = |needed: bool| {
        if needed && !g.is_pointwise() {
            g.col_len()
        } else {
            0
        }
    };
    let lowers = matches!(kernel, WeightKernel::Transposed | WeightKernel::Gemm);
    let col_len = lowered_len(lowers);
    let dcol_len = lowered_len(want_dx);
    // Samples a run: the blocked weight gradient takes a few side by side.
    let run = match &kernel {
        WeightKernel::Blocked(_) => blocked::weight_gradient_group(&g).min(SAMPLES_PER_CHUNK),
        _ => 1,
    };
    let dyt_len = match &kernel {
        WeightKernel::Lanes => direct::weight_gradient_scratch(&g, m),
        WeightKernel::Blocked(planes) => blocked::weight_gradient_scratch(planes, &g, m, run),
        WeightKernel::Transposed => m * pq,
        WeightKernel::Gemm => 0,
    };
    let scratch_len = col_len + dcol_len + dyt_len;
    let per_sample = |acc: &mut Accumulators,
                      scratch: &mut [f32],
                      xi: &[f32],
                      dyi: &[f32],
                      dxi: Option<&mut [f32]>| {
        let (dw, dwt) = acc;
        let (col, rest) = scratch.split_at_mut(col_len);
        let (dcol, dyt) = rest.split_at_mut(dcol_len);
        let mut dxi = dxi;
        for group in 0..groups {
            let xg = &xi[group * g.c * g.h * g.w..(group + 1) * g.c * g.h * g.w];
            let dyg = &dyi[group * m * pq..(group + 1) * m * pq];
            if let WeightKernel::Lanes = kernel {
                direct::weight_gradient_sample(&g, m, xg, dyg, dyt, dwt);
            } else if let WeightKernel::Blocked(_) = &kernel {
                // A run of samples at a time (`per_run`).
            } else {
                let lowered: &[f32] = if g.is_pointwise() {
                    xg
                } else {
                    g.im2col(xg, col);
                    col
                };
                let dwg = &mut dw[group * filter_len..(group + 1) * filter_len];
                if let WeightKernel::Transposed = kernel {
                    // dW^T (CRS x M) += col (CRS x PQ) * dY^T (PQ x M) on our product (AVX-512
                    // or AVX2), summed over the chunk's samples and added into dW (M x CRS)
                    // once a chunk ([`fold`]): both operands row-major, no lowered transpose.
                    for (i, row) in dyg.chunks_exact(pq).enumerate() {
                        for (j, v) in row.iter().enumerate() {
                            dyt[j * m + i] = *v;
                        }
                    }
                    let dwt = &mut dwt[group * filter_len..(group + 1) * filter_len];
                    product_add(crs, m, pq, lowered, dyt, dwt);
                } else {
                    // dW (M x CRS) += dY (M x PQ) * col^T (PQ x CRS)
                    matmul(
                        m,
                        crs,
                        pq,
                        plain(dyg),
                        transposed(lowered),
                        dwg,
                        true,
                        false,
                    );
                }
            }
            if let Some(dxi) = dxi.as_deref_mut() {
                let dxg = &mut dxi[group * g.c * g.h * g.w..(group + 1) * g.c * g.h * g.w];
                let wt = &filter_t[group * filter_len..(group + 1) * filter_len];
                if g.is_pointwise() {
                    product(g.col_rows(), pq, m, wt, dyg, dxg);
                } else {
                    // dcol (CRS x PQ) = W^T (CRS x M) * dY (M x PQ), on our product (AVX-512 or AVX2)
                    // with the filters transposed once per call.
                    product(g.col_rows(), pq, m, wt, dyg, dcol);
                    dxg.fill(0.0);
                    g.col2im(dcol, dxg);
                }
            }
        }
    };
    // A run of samples (`xs`, `dys`, `dxs` hold each sample's values one after the other).
    let per_run = |acc: &mut Accumulators,
                   scratch: &mut [f32],
                   xs: &[f32],
                   dys: &[f32],
                   dxs: Option<&mut [f32]>| {
        if let WeightKernel::Blocked(planes) = &kernel {
            let n = xs.len() / in_len;
            let dyt = &mut scratch[col_len + dcol_len..];
            blocked::weight_gradient_samples(&g, planes, m, n, xs, dys, dyt, &mut acc.1);
        }
        let samples = xs.chunks(in_len).zip(dys.chunks(out_len));
        match dxs {
            Some(dxs) => {
                for ((xi, dyi), dxi) in samples.zip(dxs.chunks_mut(in_len)) {
                    per_sample(acc, scratch, xi, dyi, Some(dxi));
                }
            }
            None => samples.for_each(|(xi, dyi)| per_sample(acc, scratch, xi, dyi, None)),
        }
    };
    // The bias gradient summed with the weight gradient's (after it in each partial).
    let fused_bias = matches!(kernel, WeightKernel::Lanes) && d_bias.is_some();
    // The blocked kernel's partials stay in blocks, summed there and laid out once (each
    // chunk's laid out on its own, into a zeroed gradient of its own, was about 6% of
    // vgg-small's 7x7 weight gradient at batch 64).
    let in_blocks = matches!(kernel, WeightKernel::Blocked(_));
    let partial_len = if in_blocks {
        0
    } else {
        d_filter.len() + if fused_bias { m } else { 0 }
    };
    let init = || {
        let acc_len = match kernel {
            WeightKernel::Lanes => direct::weight_gradient_len(m, crs),
            WeightKernel::Blocked(_) => blocked::weight_gradient_len(m, crs),
            WeightKernel::Transposed => d_filter.len(),
            WeightKernel::Gemm => 0,
        };
        (vec![0.0f32; partial_len], vec![0.0f32; acc_len])
    };
    // The chunk's dW^T (per group CRS x M) or lanes added into its dW (M x CRS); blocked
    // partials stay in blocks.
    let fold = |acc: &mut Accumulators| {
        let (dw, dwt) = acc;
        match kernel {
            WeightKernel::Lanes => return direct::add_lanes(m, crs, fused_bias, dwt, dw),
            WeightKernel::Blocked(_) => return,
            WeightKernel::Transposed | WeightKernel::Gemm => {}
        }
        for (dwg, dwtg) in dw
            .chunks_exact_mut(filter_len)
            .zip(dwt.chunks_exact(filter_len))
        {
            for (k, column) in dwtg.chunks_exact(m).enumerate() {
                for (i, v) in column.iter().enumerate() {
                    dwg[i * crs + k] += v;
                }
            }
        }
    };
    // Fixed chunks of samples, partial filter gradients summed in chunk order: the result
    // does not depend on how rayon schedules the chunks, so seeded runs repeat bit for bit.
    let partials: Vec<Vec<f32>> = if want_dx {
        dx.par_chunks_mut(in_len * SAMPLES_PER_CHUNK)
            .zip(x.par_chunks(in_len * SAMPLES_PER_CHUNK))
            .zip(dy.par_chunks(out_len * SAMPLES_PER_CHUNK))
            .map(|((dxc, xc), dyc)| {
                let mut acc = init();
                with_scratch(scratch_len, |scratch| {
                    for ((dxs, xs), dys) in dxc
                        .chunks_mut(in_len * run)
                        .zip(xc.chunks(in_len * run))
                        .zip(dyc.chunks(out_len * run))
                    {
                        per_run(&mut acc, scratch, xs, dys, Some(dxs));
                    }
                });
                fold(&mut acc);
                if in_blocks {
                    acc.1
                } else {
                    acc.0
                }
            })
            .collect()
    } else {
        x.par_chunks(in_len * SAMPLES_PER_CHUNK)
            .zip(dy.par_chunks(out_len * SAMPLES_PER_CHUNK))
            .map(|(xc, dyc)| {
                let mut acc = init();
                with_scratch(scratch_len, |scratch| {
                    for (xs, dys) in xc.chunks(in_len * run).zip(dyc.chunks(out_len * run)) {
                        per_run(&mut acc, scratch, xs, dys, None);
                    }
                });
                fold(&mut acc);
                if in_blocks {
                    acc.1
                } else {
                    acc.0
                }
            })
            .collect()
    };
    let mut d_bias = d_bias;
    if in_blocks {
        let mut partials = partials.into_iter();
        if let Some(mut sum) = partials.next() {
            for partial in partials {
                sum.iter_mut().zip(&partial).for_each(|(a, b)| *a += b);
            }
            blocked::add_unblocked_weights(m, crs, &sum, d_filter);
        }
    } else {
        for partial in &partials {
            let (dw, db) = partial.split_at(d_filter.len());
            for (a, b) in d_filter.iter_mut().zip(dw) {
                *a += b;
            }
            if let (Some(d_bias), true) = (d_bias.as_deref_mut(), fused_bias) {
                d_bias.iter_mut().zip(db).for_each(|(a, b)| *a += b);
            }
        }
    }
    if let (Some(d_bias), false) = (d_bias, fused_bias) {
        // Channels in parallel (tasks of at least 16 K values), each summed over the
        // samples in order, each plane in 8 lanes added at the end (fixed, whatever the
        // thread count). One chain of adds over every value, on one core, took LeNet-5's
        // conv1 0.30 ms a step at batch 64 (here 0.23 on 1 thread, 0.13 on 2).
        let values = dy.len() / d_bias.len().max(1);
        d_bias
            .par_iter_mut()
            .enumerate()
            .with_min_len(super::ELEMENTS_A_TASK.div_ceil(values.max(1)))
            .for_each(|(c, db)| {
                let mut lanes = [0f32; 8];
                for dyi in dy.chunks_exact(out_len) {
                    super::add_lanes(&dyi[c * pq..(c + 1) * pq], &mut lanes);
                }
                *db += lanes.iter().sum::<f32>();
            });
    }
}

/// `y (N x M) = epilogue(x (N x K) * W^T)`, the epilogue's channels being the M outputs.
pub fn fc_forward(
    n: usize,
    k: usize,
    m: usize,
    x: &[f32],
    weight: &[f32],
    epilogue: &Epilogue,
    y: &mut [f32],
) {
    fc_forward_prepared(n, k, m, x, weight, None, epilogue, y)
}

/// An FC layer's weights (`m x k`) prepared for [`fc_forward_prepared`]: in blocks of
/// outputs on the AVX2 and AVX-512 kernels' machines (no transposes of the batch;
/// vgg-small's 1152 -> 256 layer at batch 64, 2 threads: 913-927 us on the packed product,
/// 620-625 here on AVX2; 1152 -> 512 on a Zen 5 with AVX-512, 580 -> 353 us), packed for
/// the product on the others; `None` where neither kernel runs.
pub(crate) fn prepare_fc(m: usize, k: usize, weight: &[f32]) -> Option<Filters> {
    if (sgemm::avx2_only() || sgemm::avx512()) && weight.len() >= m * k && k > 0 {
        return Some(Filters::Blocked(BlockedFilters::new(m, k, weight)));
    }
    PackedFilters::new(m, k, weight).map(Filters::Packed)
}

/// Output features per task of a batched FC on packed weights: a multiple of the panel
/// height, fixed, so that the split never depends on the thread count.
const FC_ROWS_A_TASK: usize = 8 * PANEL_ROWS;

/// [`fc_forward`] with the weights prepared once per weights ([`prepare_fc`]): a batch then
/// runs on the blocked kernel (AVX2) or on our product kernel as `W x^T`, instead of the
/// `gemm` crate's, which packs both operands on every call.
#[allow(clippy::too_many_arguments)]
pub(crate) fn fc_forward_prepared(
    n: usize,
    k: usize,
    m: usize,
    x: &[f32],
    weight: &[f32],
    prepared: Option<&Filters>,
    epilogue: &Epilogue,
    y: &mut [f32],
) {
    let (packed, blocked) = match prepared {
        Some(Filters::Packed(p)) => (Some(p).filter(|p| p.rows() == m && p.depth() == k), None),
        Some(Filters::Blocked(b)) => (None, Some(b).filter(|b| b.rows() == m && b.depth() == k)),
        _ => (None, None),
    };
    if let (Some(b), true) = (blocked, n > 1) {
        blocked::fc(b, n, x, y);
    } else if let (Some(a), true) = (packed, n > 1) {
        // y^T (m x n) = W (m x k) x^T (k x n): both transposes are small next to the product.
        with_scratch(k * n + m * n, |buffer| {
            let (xt, yt) = buffer.split_at_mut(k * n);
            transpose(n, k, &x[..n * k], xt);
            let xt: &[f32] = xt;
            yt.par_chunks_mut(FC_ROWS_A_TASK * n)
                .enumerate()
                .for_each(|(t, c)| {
                    let rows = t * FC_ROWS_A_TASK..t * FC_ROWS_A_TASK + c.len() / n;
                    product_packed(a, rows, n, xt, c)
                });
            transpose(m, n, yt, &mut y[..n * m]);
        });
    } else if n == 1 {
        // One sample: the weights stream through once; halves of the rows on two cores
        // when there is enough to share (the same sums either way).
        let y = &mut y[..m];
        if m * k >= FC_SPLIT_MACS {
            let half = m.div_ceil(2);
            let (y0, y1) = y.split_at_mut(half);
            let (w0, w1) = weight[..m * k].split_at(half * k);
            rayon::join(
                || sgemm::gemv(half, k, w0, x, y0),
                || sgemm::gemv(m - half, k, w1, x, y1),
            );
        } else {
            sgemm::gemv(m, k, weight, x, y);
        }
    } else {
        matmul(n, m, k, plain(x), transposed(weight), y, false, true);
    }
    for row in y.chunks_mut(m) {
        if let Some(bias) = epilogue.bias {
            row.iter_mut().zip(bias).for_each(|(v, b)| *v += b);
        }
        if let Some((scale, shift)) = epilogue.affine {
            row.iter_mut()
                .zip(scale.iter().zip(shift))
                .for_each(|(v, (k, b))| *v = *v * k + b);
        }
    }
    if let Some(act) = epilogue.activation {
        activation_in_place(act, y);
    }
}

/// `dst (cols x rows) = src (rows x cols)^T`, in 8 x 8 blocks so that both sides are read
/// and written a cache line at a time.
fn transpose(rows: usize, cols: usize, src: &[f32], dst: &mut [f32]) {
    const B: usize = 8;
    for r0 in (0..rows).step_by(B) {
        for c0 in (0..cols).step_by(B) {
            for r in r0..(r0 + B).min(rows) {
                for c in c0..(c0 + B).min(cols) {
                    dst[c * rows + r] = src[r * cols + c];
                }
            }
        }
    }
}

/// Rows of an FC layer's gradient a task of [`fc_backward`] takes: fixed, so that the bits
/// never depend on the thread count (a row's sums do not depend on it either). Each task
/// packs the other operand's panels anew, so fewer, larger tasks pack less: vgg-small's
/// 1152 -> 512 layer at batch 256, 2 threads, backward per 24 steps 77-83 ms at 32 rows,
/// 64-76 at 64, 61-70 at 128 (alternating processes, 2026-12-03); at batch 64 and on
/// LeNet-5's layers no slower.
const FC_ROWS: usize = 128;

/// FC gradients: `dW += dY^T x`, `db += sum dY`, `dx = dY W`.
#[allow(clippy::too_many_arguments)]
pub fn fc_backward(
    n: usize,
    k: usize,
    m: usize,
    x: &[f32],
    weight: &[f32],
    dy: &[f32],
    dx: Option<&mut [f32]>,
    d_weight: &mut [f32],
    d_bias: Option<&mut [f32]>,
) {
    assert!(x.len() >= n * k && weight.len() >= m * k && dy.len() >= n * m);
    assert!(d_weight.len() >= m * k);
    if sgemm::has_kernel() {
        // Our product (16 lanes on AVX-512, where the `gemm` crate's kernel has 8), in
        // fixed tasks of rows, the two products side by side: vgg-small's 1152 -> 512 layer
        // at batch 64, 2 threads: 1.03-1.13 ms a step against 1.17-1.43 on the `gemm` crate
        // (alternating processes, 2026-12-02).
        let mut dyt = crate::buffers::overwritten(n * m);
        transpose(n, m, dy, &mut dyt);
        rayon::join(
            || {
                d_weight[..m * k]
                    .par_chunks_mut(FC_ROWS * k)
                    .zip(dyt.par_chunks(FC_ROWS * n))
                    .for_each(|(dw, dyt)| product_add(dyt.len() / n, k, n, dyt, x, dw))
            },
            || {
                if let Some(dx) = dx {
                    dx[..n * k]
                        .par_chunks_mut(FC_ROWS * k)
                        .zip(dy.par_chunks(FC_ROWS * m))
                        .for_each(|(dx, dy)| product(dy.len() / m, k, m, dy, weight, dx))
                }
            },
        );
        if let Some(d_bias) = d_bias {
            for row in dy[..n * m].chunks(m) {
                d_bias.iter_mut().zip(row).for_each(|(d, v)| *d += v);
            }
        }
        crate::buffers::recycle(dyt);
        return;
    }
    // On two cores the two products run side by side, one a core: the `gemm` crate split
    // each over both and scaled by 1.1x (vgg-small's 1152 -> 512 layer at batch 64: 4.0 ms
    // on one thread, 3.3-3.7 on two; side by side 2.4, alternating epochs in one process).
    let split_each = rayon::current_num_threads() > 2;
    let weights = |parallel: bool| {
        matmul(m, k, n, transposed(dy), plain(x), d_weight, true, parallel);
        if let Some(d_bias) = d_bias {
            for row in dy.chunks(m) {
                d_bias.iter_mut().zip(row).for_each(|(d, v)| *d += v);
            }
        }
    };
    match dx {
        Some(dx) => {
            rayon::join(
                || weights(split_each),
                || matmul(n, k, m, plain(dy), plain(weight), dx, false, split_each),
            );
        }
        None => weights(true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use joule_model::ops::Padding;

    /// The convolution by its definition: seven nested loops, padding read as zero.
    fn naive(conv: &Conv, nest: &LoopNest, x: &[f32], filter: &[f32], bias: &[f32]) -> Vec<f32> {
        let n = nest;
        let mut y = vec![0f32; n.n * n.groups * n.m * n.p * n.q];
        for b in 0..n.n {
            for g in 0..n.groups {
                for m in 0..n.m {
                    let oc = g * n.m + m;
                    for p in 0..n.p {
                        for q in 0..n.q {
                            let mut acc = bias[oc] as f64;
                            for c in 0..n.c {
                                let ic = g * n.c + c;
                                for r in 0..n.r {
                                    for s in 0..n.s {
                                        let yy = (p * n.stride_h + r * n.dilation_h) as isize
                                            - conv.padding.top as isize;
                                        let xx = (q * n.stride_w + s * n.dilation_w) as isize
                                            - conv.padding.left as isize;
                                        if yy < 0
                                            || xx < 0
                                            || yy >= n.h as isize
                                            || xx >= n.w as isize
                                        {
                                            continue;
                                        }
                                        let xi = ((b * n.groups * n.c + ic) * n.h + yy as usize)
                                            * n.w
                                            + xx as usize;
                                        let fi = ((oc * n.c + c) * n.r + r) * n.s + s;
                                        acc += x[xi] as f64 * filter[fi] as f64;
                                    }
                                }
                            }
                            y[((b * n.groups * n.m + oc) * n.p + p) * n.q + q] = acc as f32;
                        }
                    }
                }
            }
        }
        y
    }

    /// The layer into channel blocks ([`conv_forward_blocks`], its ifmap in planes, with the
    /// epilogue and residual `blocked`), and on planes with the epilogue `planes`
    /// ([`conv_forward_prepared`]), each sample's planes then put in blocks.
    fn blocks_and_planes(
        (conv, nest, prepared): (&Conv, &LoopNest, Option<&Filters>),
        (x, filter): (&[f32], &[f32]),
        blocked: (&Epilogue, Option<Residual>),
        planes: &Epilogue,
    ) -> (Vec<f32>, Vec<f32>) {
        let (m, pq) = (nest.m, nest.p * nest.q);
        let len = nest.n * m * pq;
        let mut got = vec![f32::NAN; len];
        let (epilogue, residual) = blocked;
        let layout = (false, true);
        conv_forward_blocks(
            conv, nest, x, filter, prepared, epilogue, layout, residual, &mut got,
        );
        let mut on_planes = vec![f32::NAN; len];
        conv_forward_prepared(conv, nest, x, filter, prepared, planes, &mut on_planes);
        let mut want = vec![f32::NAN; len];
        for (p, w) in on_planes.chunks(m * pq).zip(want.chunks_mut(m * pq)) {
            blocks::to_blocks(m, pq, p, w);
        }
        (got, want)
    }

    /// `len` values spread over [-1, 1): `i * step mod modulus`, scaled.
    fn spread(len: usize, step: usize, modulus: usize) -> Vec<f32> {
        let half = (modulus / 2) as f32;
        (0..len)
            .map(|i| ((i * step) % modulus) as f32 / half - 1.0)
            .collect()
    }

    /// A `k x k` stride-1 layer of `m` filters over `c` channels of `size x size`, `p x p`
    /// out.
    fn square(n: usize, m: usize, c: usize, (p, size): (usize, usize), k: usize) -> LoopNest {
        LoopNest {
            n,
            m,
            c,
            p,
            q: p,
            r: k,
            s: k,
            h: size,
            w: size,
            stride_h: 1,
            stride_w: 1,
            dilation_h: 1,
            dilation_w: 1,
            groups: 1,
        }
    }

    /// Samples into channel blocks with a residual added ([`conv_forward_blocks`]) give the
    /// bits of the layer on planes, then the addition and the activation: 4 x 4 and 7 x 7
    /// maps, whose samples the AVX-512 kernel runs side by side (one group, several groups
    /// a thread's share, the last one short), 24 filters (a vector and a half), on one and
    /// two threads, the residual as either operand, a clipping activation and another.
    #[test]
    fn samples_side_by_side_give_the_planes_bits() {
        let (c, filters) = (16, 24);
        let conv = Conv::new(filters, 3, 1, 1);
        for (n, size, threads, first, act) in [
            (7, 7, 1, true, Activation::Relu),
            (7, 7, 2, false, Activation::HardSwish),
            (5, 4, 2, true, Activation::Relu6),
            (16, 4, 1, false, Activation::Relu),
        ] {
            let nest = square(n, filters, c, (size, size), 3);
            let (pq, out_len) = (size * size, filters * size * size);
            let x = spread(n * c * pq, 7919, 23);
            let filter = spread(filters * c * 9, 104729, 17);
            let r: Vec<f32> = spread(n * out_len, 31, 13)
                .iter()
                .map(|v| 2.0 * v)
                .collect();
            let bias: Vec<f32> = (0..filters).map(|i| i as f32 * 0.25 - 1.0).collect();
            let epilogue = Epilogue {
                bias: Some(&bias),
                affine: None,
                activation: Some(act),
            };
            let prepared = prepare_filters(&conv, &nest, &filter);
            if !adds_residual(&conv, &nest, true) {
                assert!(!sgemm::avx512(), "AVX-512 machines add the residual here");
                continue;
            }
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let residual = Residual { values: &r, first };
            let before = Epilogue {
                activation: None,
                ..epilogue
            };
            let layer = (&conv, &nest, prepared.as_ref());
            let (got, mut want) = pool.install(|| {
                blocks_and_planes(layer, (&x, &filter), (&epilogue, Some(residual)), &before)
            });
            for (w, r) in want.iter_mut().zip(&r) {
                // Either operand first: the same sum where neither is NaN.
                *w = crate::layers::activate(act, *w + *r);
            }
            let same = got
                .iter()
                .zip(&want)
                .all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(same, "batch {n} at {size}x{size}, {threads} threads");
        }
    }

    /// One sample into channel blocks ([`conv_forward_blocks`]) gives the bits of the layer
    /// on planes, on layers whose filters do not split evenly in whole vectors: on AVX-512
    /// machines its two halves are the sample's pixels ([`blocked::pixel_halves`]), each
    /// finishing its own part of every block.
    #[test]
    fn one_sample_split_by_pixels_gives_the_planes_bits() {
        // (channels, size, filters, k, pad)
        for (c, size, filters, k, pad) in
            [(144, 28, 24, 1, 0), (32, 56, 16, 1, 0), (16, 21, 24, 3, 1)]
        {
            let conv = Conv::new(filters, k, 1, pad);
            let p = size + 2 * pad + 1 - k;
            let nest = square(1, filters, c, (p, size), k);
            let x = spread(c * size * size, 7919, 23);
            let filter = spread(filters * c * k * k, 104729, 17);
            let bias: Vec<f32> = (0..filters).map(|i| i as f32 * 0.25 - 1.0).collect();
            let epilogue = Epilogue {
                bias: Some(&bias),
                affine: None,
                activation: Some(Activation::Relu6),
            };
            let prepared = prepare_filters(&conv, &nest, &filter);
            if !(writes_channel_blocks(&conv, &nest) || channel_blocks(&conv, &nest)) {
                assert!(!sgemm::avx512(), "AVX-512 machines write blocks here");
                continue;
            }
            if let (true, Some(Filters::Blocked(b))) = (sgemm::avx512(), prepared.as_ref()) {
                assert!(
                    blocked::pixel_halves(b, p * p).is_some(),
                    "{filters} filters split by pixels"
                );
                assert!(
                    filters * p * p * c * k * k >= SPLIT_MACS,
                    "big enough to split"
                );
            }
            let layer = (&conv, &nest, prepared.as_ref());
            let (got, want) = blocks_and_planes(layer, (&x, &filter), (&epilogue, None), &epilogue);
            let same = got
                .iter()
                .zip(&want)
                .all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(same, "{c} -> {filters} at {size}x{size}, {k}x{k}");
        }
    }

    /// The layer and its 2x2 max pooling in the tile ([`conv_pool_forward`], AVX-512
    /// machines) give the bits of the layer on planes and then the pooling: odd sizes (the
    /// last row and column dropped), more steps than a block of `KC` (partial sums kept
    /// between blocks), 24 filters (a vector and a half), one sample split over the filters
    /// and several side by side, the ifmap and the ofmap in planes or channel blocks, and
    /// each kind of epilogue the tile runs.
    #[test]
    fn conv_and_pooling_in_the_tile_give_the_layer_then_the_pooling() {
        let nest_of = |n, m, c, p, size| square(n, m, c, (p, size), 3);
        if !sgemm::avx512() {
            // The AVX2 and portable paths pool separately: nothing here to compare.
            let g = geometry(&Conv::new(8, 3, 1, 1), &nest_of(1, 8, 8, 8, 8));
            assert!(!blocked::pools_in_tile(&g, 8));
            return;
        }
        let pool = joule_model::ops::Pool::max(2, 2, 0);
        // (batch, channels, size, filters, pad)
        let cases = [
            (1, 64, 7, 128, 1), // vgg-small's third layer: 576 steps, 7x7
            (3, 32, 14, 64, 1), // its second, three samples
            (1, 1, 28, 32, 1),  // its first: one channel (a step a tap)
            (2, 16, 9, 24, 0),  // 24 filters, no padding: 7x7 out
            (1, 48, 10, 40, 1), // one sample, 5 blocks: halves of 3 and 2
        ];
        for (batch, c, size, filters, pad) in cases {
            let conv = Conv::new(filters, 3, 1, pad);
            let p = size + 2 * pad - 2;
            let nest = nest_of(batch, filters, c, p, size);
            let x: Vec<f32> = (0..batch * c * size * size)
                .map(|i| ((i * 7919) % 23) as f32 / 11.0 - 1.0)
                .collect();
            let filter: Vec<f32> = (0..filters * c * 9)
                .map(|i| ((i * 104729) % 17) as f32 / 8.0 - 1.0)
                .collect();
            let bias: Vec<f32> = (0..filters).map(|i| i as f32 * 0.25 - 1.0).collect();
            let scale: Vec<f32> = (0..filters).map(|i| 0.5 - (i % 3) as f32 * 0.5).collect();
            let shift: Vec<f32> = (0..filters).map(|i| (i % 5) as f32 * 0.5 - 1.0).collect();
            let prepared = prepare_filters(&conv, &nest, &filter);
            let (pp, pq) = (p / 2, p / 2);
            let mid = joule_model::Shape::new(batch, filters, p, p);
            let out = joule_model::Shape::new(batch, filters, pp, pq);
            for activation in [Some(Activation::Relu), Some(Activation::Relu6), None] {
                let epilogue = Epilogue {
                    bias: Some(&bias),
                    affine: Some((&scale, &shift)),
                    activation,
                };
                assert!(
                    pools_in_tile(&conv, &nest, &pool, prepared.as_ref(), &epilogue),
                    "case {:?}",
                    (batch, c, size, filters)
                );
                let mut planes = vec![f32::NAN; mid.elements() as usize];
                conv_forward_prepared(
                    &conv,
                    &nest,
                    &x,
                    &filter,
                    prepared.as_ref(),
                    &epilogue,
                    &mut planes,
                );
                let mut want = vec![f32::NAN; out.elements() as usize];
                super::super::pool_inference(&pool, mid, out, &planes, &mut want);
                let x_blocks: Vec<f32> = x
                    .chunks(c * size * size)
                    .flat_map(|xi| {
                        let mut b = vec![0.0; xi.len()];
                        if c.is_multiple_of(CHANNELS) {
                            blocks::to_blocks(c, size * size, xi, &mut b);
                        }
                        b
                    })
                    .collect();
                for (xb, yb) in [(false, false), (false, true), (true, true), (true, false)] {
                    if xb && !c.is_multiple_of(CHANNELS) {
                        continue;
                    }
                    let input = if xb { &x_blocks } else { &x };
                    let mut got = vec![f32::NAN; want.len()];
                    conv_pool_forward(
                        &conv,
                        &nest,
                        input,
                        prepared.as_ref(),
                        &epilogue,
                        (xb, yb),
                        &mut got,
                    );
                    if yb {
                        let blocked = got.clone();
                        for (o, ys) in blocked
                            .chunks(filters * pp * pq)
                            .zip(got.chunks_mut(filters * pp * pq))
                        {
                            blocks::from_blocks(filters, pp * pq, o, ys);
                        }
                    }
                    let same = got
                        .iter()
                        .zip(&want)
                        .all(|(a, b)| a.to_bits() == b.to_bits());
                    assert!(
                        same,
                        "case {:?} {activation:?} layout {:?}",
                        (batch, c, size, filters),
                        (xb, yb)
                    );
                }
            }
        }
    }

    /// Every kernel path of `conv_forward` against the definition: depthwise (with a channel
    /// multiplier, stride 2, asymmetric padding), the batch-1 filter split, samples lowered
    /// side by side (grouped and 1x1 too) and the plain per-sample product.
    #[test]
    fn conv_forward_matches_the_definition_on_every_path() {
        // (batch, channels, size, filters, k, stride, pad, groups, dilation)
        let cases = [
            (2, 8, 9, 8, 3, 1, 1, 8, 1),     // depthwise
            (3, 6, 10, 12, 3, 2, 1, 6, 1),   // depthwise, multiplier 2, stride 2
            (1, 4, 7, 4, 5, 1, 2, 4, 1),     // depthwise 5x5, batch 1
            (1, 5, 8, 5, 3, 1, 2, 5, 2),     // depthwise, dilated
            (1, 3, 37, 3, 3, 2, 1, 3, 1),    // depthwise, stride 2, 19 columns: two vectors
            (2, 4, 33, 4, 3, 2, 0, 4, 1),    // depthwise, stride 2, no padding
            (1, 2, 40, 2, 3, 1, 1, 2, 1),    // depthwise, 41 columns: three vectors
            (1, 2, 30, 2, 3, 2, 2, 2, 2),    // depthwise, stride 2, dilated
            (2, 13, 7, 13, 3, 2, 1, 13, 1),  // depthwise: 8 channels a vector, then 5 planes
            (1, 24, 12, 24, 5, 1, 2, 24, 1), // depthwise 5x5: three blocks of 8 channels
            (1, 32, 24, 64, 3, 1, 1, 1, 1),  // batch 1, split filters (>= 1 M MACs)
            (1, 128, 16, 33, 1, 1, 0, 1, 1), // batch 1, odd filter count, 1x1
            (1, 144, 28, 24, 1, 1, 0, 1, 1), // batch 1, 24 filters: columns in halves
            (1, 16, 64, 32, 3, 2, 1, 1, 1),  // batch 1, 32 filters, stride 2: halves
            (7, 16, 7, 24, 3, 1, 1, 1, 1),   // 49 columns: samples side by side
            (5, 8, 4, 6, 1, 1, 0, 2, 1),     // grouped 1x1, side by side
            (3, 6, 9, 8, 3, 2, 0, 2, 1),     // grouped, stride 2, side by side
            (2, 3, 20, 5, 3, 1, 1, 1, 1),    // 400 columns: one sample a product
            (2, 8, 9, 32, 3, 1, 1, 1, 1),    // 81 columns, 32 filters: side by side
            (3, 6, 18, 20, 5, 1, 2, 1, 1),   // 20 filters, 150 terms, 324 columns
            (1, 2, 9, 8, 3, 1, 1, 1, 2),     // dilated, one sample
            (1, 32, 9, 16, 3, 1, 1, 1, 1),   // 288 terms: two blocks of k, one sample
            (2, 3, 300, 4, 3, 2, 1, 1, 1),   // stride 2, 150 x 150 columns
        ];
        for (batch, c, size, filters, k, stride, pad, groups, dil) in cases {
            let mut conv = Conv::new(filters, k, stride, pad).with_groups(groups);
            conv.dilation_h = dil;
            conv.dilation_w = dil;
            // Asymmetric: one more row of padding at the bottom than at the top.
            conv.padding = Padding {
                top: pad,
                left: pad,
                bottom: pad + 1,
                right: pad,
            };
            let out = |size: usize, extra: usize| {
                (size + 2 * pad + extra - (dil * (k - 1) + 1)) / stride + 1
            };
            let nest = LoopNest {
                n: batch,
                m: filters / groups,
                c: c / groups,
                p: out(size, 1),
                q: out(size + 1, 0),
                r: k,
                s: k,
                h: size,
                w: size + 1,
                stride_h: stride,
                stride_w: stride,
                dilation_h: dil,
                dilation_w: dil,
                groups,
            };
            let x: Vec<f32> = (0..batch * c * size * (size + 1))
                .map(|i| ((i * 7919) % 23) as f32 / 11.0 - 1.0)
                .collect();
            let filter: Vec<f32> = (0..filters * (c / groups) * k * k)
                .map(|i| ((i * 104729) % 17) as f32 / 8.0 - 1.0)
                .collect();
            let bias: Vec<f32> = (0..filters).map(|i| i as f32 * 0.25 - 1.0).collect();
            // A folded batch norm and ReLU6 after the bias, as inference fuses them.
            let scale: Vec<f32> = (0..filters).map(|i| 0.5 + (i % 3) as f32 * 0.25).collect();
            let shift: Vec<f32> = (0..filters).map(|i| (i % 5) as f32 * 0.5 - 1.0).collect();
            let pq = nest.p * nest.q;
            let want: Vec<f32> = naive(&conv, &nest, &x, &filter, &bias)
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    let c = (i / pq) % filters;
                    (v * scale[c] + shift[c]).clamp(0.0, 6.0)
                })
                .collect();
            let epilogue = Epilogue {
                bias: Some(&bias),
                affine: Some((&scale, &shift)),
                activation: Some(Activation::Relu6),
            };
            let mut got = vec![f32::NAN; want.len()];
            conv_forward(&conv, &nest, &x, &filter, &epilogue, &mut got);
            let size = want.iter().fold(1f32, |a, v| a.max(v.abs()));
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                assert!(
                    (g - w).abs() <= 1e-5 * size,
                    "case {:?} output {i}: {g} vs {w}",
                    (batch, c, size, filters, k, stride, pad, groups, dil)
                );
            }
            // The same inputs give the same bits on every run.
            let mut again = vec![0f32; want.len()];
            conv_forward(&conv, &nest, &x, &filter, &epilogue, &mut again);
            assert_eq!(got, again);
            // Filters prepared as inference prepares them: packed (the implicit lowering of
            // stride-1 layers on AVX2 machines; the same bits as lowered) or transformed
            // for Winograd (its own rounding).
            let prepared = prepare_filters(&conv, &nest, &filter);
            let mut fast = vec![f32::NAN; want.len()];
            conv_forward_prepared(
                &conv,
                &nest,
                &x,
                &filter,
                prepared.as_ref(),
                &epilogue,
                &mut fast,
            );
            match prepared {
                Some(Filters::Winograd(..)) => {
                    for (i, (g, w)) in fast.iter().zip(&want).enumerate() {
                        assert!((g - w).abs() <= 1e-4 * size, "prepared, output {i}");
                    }
                }
                _ => assert_eq!(fast, got, "prepared"),
            }
        }
    }

    /// FC gradients against their definitions in f64 (`dW[j][p] += sum over samples of
    /// dY[i][j] x[i][p]`, `db[j] += sum dY[i][j]`, `dx[i][p] = sum over j of dY[i][j]
    /// W[j][p]`), added to what the parameter gradients held: rows not a multiple of a
    /// task's, one sample, no input gradient.
    #[test]
    fn fc_gradients_match_the_definition() {
        for (n, k, m, want_dx) in [(37, 33, 70, true), (64, 1152, 512, true), (1, 5, 3, false)] {
            let x: Vec<f32> = (0..n * k)
                .map(|i| ((i * 37) % 23) as f32 / 11.0 - 1.0)
                .collect();
            let w: Vec<f32> = (0..m * k)
                .map(|i| ((i * 53) % 29) as f32 / 14.0 - 1.0)
                .collect();
            let dy: Vec<f32> = (0..n * m)
                .map(|i| ((i * 11) % 13) as f32 / 6.0 - 1.0)
                .collect();
            let (mut dw, mut db) = (vec![0.5f32; m * k], vec![0.25f32; m]);
            let mut dx = vec![f32::NAN; if want_dx { n * k } else { 0 }];
            let dxs = want_dx.then_some(&mut dx[..]);
            fc_backward(n, k, m, &x, &w, &dy, dxs, &mut dw, Some(&mut db));
            let close = |got: f32, terms: &mut dyn Iterator<Item = f64>, base: f64, what: &str| {
                let (mut sum, mut scale) = (base, base.abs());
                for t in terms {
                    sum += t;
                    scale += t.abs();
                }
                assert!(
                    (got as f64 - sum).abs() <= 1e-6 * scale.max(1.0),
                    "{what}: {got} vs {sum}"
                );
            };
            for j in 0..m {
                for p in 0..k {
                    let mut terms = (0..n).map(|i| dy[i * m + j] as f64 * x[i * k + p] as f64);
                    close(
                        dw[j * k + p],
                        &mut terms,
                        0.5,
                        &format!("{n}x{k}x{m} dW[{j}][{p}]"),
                    );
                }
                let mut terms = (0..n).map(|i| dy[i * m + j] as f64);
                close(db[j], &mut terms, 0.25, &format!("{n}x{k}x{m} db[{j}]"));
            }
            for i in 0..n * usize::from(want_dx) {
                for p in 0..k {
                    let mut terms = (0..m).map(|j| dy[i * m + j] as f64 * w[j * k + p] as f64);
                    close(
                        dx[i * k + p],
                        &mut terms,
                        0.0,
                        &format!("{n}x{k}x{m} dx[{i}][{p}]"),
                    );
                }
            }
        }
    }

    /// A batched FC on packed weights (our product kernel, split in tasks of 64 output
    /// features) against the definition in f64, with bias and ReLU; a split of the batch
    /// changes no bit; the weights in blocks (as AVX2 machines prepare them) give the packed
    /// product's bits, in tasks of 16 samples and partial tiles and blocks.
    #[test]
    fn fc_on_packed_weights_matches_the_definition() {
        for (n, k, m) in [
            (2, 5, 3),
            (64, 1152, 512),
            (7, 300, 130),
            (9, 16, 65),
            (37, 84, 10),
        ] {
            let x: Vec<f32> = (0..n * k)
                .map(|i| ((i * 37) % 23) as f32 / 11.0 - 1.0)
                .collect();
            let w: Vec<f32> = (0..m * k)
                .map(|i| ((i * 53) % 29) as f32 / 14.0 - 1.0)
                .collect();
            let bias: Vec<f32> = (0..m).map(|j| j as f32 * 0.01 - 0.3).collect();
            let epilogue = Epilogue {
                bias: Some(&bias),
                activation: Some(Activation::Relu),
                ..Default::default()
            };
            let packed = PackedFilters::new(m, k, &w).expect("AVX2 or AVX-512 on this machine");
            let packed = Filters::Packed(packed);
            let mut y = vec![f32::NAN; n * m];
            fc_forward_prepared(n, k, m, &x, &w, Some(&packed), &epilogue, &mut y);
            if sgemm::avx2_only() {
                let blocked = prepare_fc(m, k, &w).expect("AVX2");
                assert!(matches!(blocked, Filters::Blocked(_)));
                let mut z = vec![f32::NAN; n * m];
                fc_forward_prepared(n, k, m, &x, &w, Some(&blocked), &epilogue, &mut z);
                assert_eq!(z, y, "{n}x{k}x{m}: blocked");
            }
            for i in 0..n {
                for j in 0..m {
                    let terms = (0..k).map(|p| x[i * k + p] as f64 * w[j * k + p] as f64);
                    let scale: f64 = terms.clone().map(f64::abs).sum();
                    let want = (terms.sum::<f64>() + bias[j] as f64).max(0.0);
                    let got = y[i * m + j] as f64;
                    assert!(
                        (got - want).abs() <= 1e-6 * scale.max(1.0),
                        "{n}x{k}x{m} [{i},{j}]: {got} against {want}"
                    );
                }
            }
            let mut head = vec![f32::NAN; 2 * m];
            fc_forward_prepared(2, k, m, &x, &w, Some(&packed), &epilogue, &mut head);
            assert_eq!(head, y[..2 * m], "{n}x{k}x{m}: the first two samples alone");
        }
    }
}
