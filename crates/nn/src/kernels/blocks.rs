//! The channel-block layout of a feature map, which the inference path keeps between the
//! layers that read and write it directly (1x1 and depthwise CONVs, and additions): a
//! sample's channels in blocks of [`CHANNELS`], each block `H x W` pixels of its 8 channels
//! side by side (NCHW8c). A depthwise filter then has one vector of channels a tap, and a
//! 1x1 layer one vector of filters a step, with no copy into or out of that order.

use super::CHANNELS;

/// One sample's `c` channels of `hw` pixels from planes (`x`) into blocks (`y`); `c` a
/// multiple of [`CHANNELS`].
#[cfg(test)]
pub(crate) fn to_blocks(c: usize, hw: usize, x: &[f32], y: &mut [f32]) {
    assert!(c.is_multiple_of(CHANNELS) && x.len() >= c * hw && y.len() >= c * hw);
    for (planes, block) in x[..c * hw]
        .chunks_exact(CHANNELS * hw)
        .zip(y.chunks_exact_mut(CHANNELS * hw))
    {
        for (p, pixel) in block.chunks_exact_mut(CHANNELS).enumerate() {
            for (l, v) in pixel.iter_mut().enumerate() {
                *v = planes[l * hw + p];
            }
        }
    }
}

/// One sample's `c` channels of `hw` pixels from blocks (`x`) into planes (`y`); `c` a
/// multiple of [`CHANNELS`].
pub(crate) fn from_blocks(c: usize, hw: usize, x: &[f32], y: &mut [f32]) {
    assert!(c.is_multiple_of(CHANNELS) && x.len() >= c * hw && y.len() >= c * hw);
    for (block, planes) in x[..c * hw]
        .chunks_exact(CHANNELS * hw)
        .zip(y.chunks_exact_mut(CHANNELS * hw))
    {
        for (p, pixel) in block.chunks_exact(CHANNELS).enumerate() {
            for (l, v) in pixel.iter().enumerate() {
                planes[l * hw + p] = *v;
            }
        }
    }
}

/// A clipping activation as the epilogue on planes computes it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Clip {
    None,
    /// `v.clamp(lo, hi)`: NaN stays NaN (ReLU6).
    Clamp(f32, f32),
    /// `v.max(lo).min(hi)`: NaN becomes `lo` (ReLU, Clip).
    MaxMin(f32, f32),
}

/// The per-channel steps of a layer's epilogue on channel blocks: `clip((v + bias) * k +
/// s)`, the channels' values indexed by output channel over the whole layer.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Finish<'a> {
    pub bias: Option<&'a [f32]>,
    pub affine: Option<(&'a [f32], &'a [f32])>,
    pub clip: Clip,
}

/// `values` (pixels of channels `first..first + 8` side by side) through `finish`, with
/// (`residual`) a residual connection's values of the same pixels added after the bias and
/// the map and before the clipping, as the addition between them would (`(values, true)`:
/// they are the sum's first operand).
///
/// # Panics
/// Without AVX, on a length not whole pixels, or a residual of another length.
#[cfg(target_arch = "x86_64")]
pub(crate) fn finish(
    values: &mut [f32],
    finish: &Finish,
    first: usize,
    residual: Option<(&[f32], bool)>,
) {
    use std::arch::x86_64::*;
    assert!(values.len().is_multiple_of(CHANNELS) && std::arch::is_x86_feature_detected!("avx"));
    assert!(residual.is_none_or(|(r, _)| r.len() == values.len()));
    #[target_feature(enable = "avx")]
    unsafe fn run(values: &mut [f32], finish: &Finish, first: usize) {
        let lanes = finish.lanes(first);
        let at = values.as_mut_ptr();
        for i in (0..values.len()).step_by(CHANNELS) {
            _mm256_storeu_ps(at.add(i), lanes.apply(_mm256_loadu_ps(at.add(i))));
        }
    }
    /// `run` with the residual: `r + v` where it comes first, else `v + r` (the same but
    /// for which NaN a sum of two keeps).
    #[target_feature(enable = "avx")]
    unsafe fn run_residual<const FIRST: bool>(
        values: &mut [f32],
        finish: &Finish,
        first: usize,
        residual: &[f32],
    ) {
        let lanes = finish.lanes(first);
        let (at, r) = (values.as_mut_ptr(), residual.as_ptr());
        for i in (0..values.len()).step_by(CHANNELS) {
            let (v, r) = (
                lanes.map(_mm256_loadu_ps(at.add(i))),
                _mm256_loadu_ps(r.add(i)),
            );
            let sum = if FIRST {
                _mm256_add_ps(r, v)
            } else {
                _mm256_add_ps(v, r)
            };
            _mm256_storeu_ps(at.add(i), lanes.clip(sum));
        }
    }
    // SAFETY: the CPU has AVX; the values are whole vectors, the residual as long (asserted).
    unsafe {
        match residual {
            None => run(values, finish, first),
            Some((r, true)) => run_residual::<true>(values, finish, first, r),
            Some((r, false)) => run_residual::<false>(values, finish, first, r),
        }
    }
}

/// The epilogue's steps in vectors of one width: a type holding [`Finish`]'s values for
/// `$lanes` channels (`$vector`), its constructor on [`Finish`], and `apply`, which runs the
/// steps on a vector as the epilogue on planes does, each step rounded on its own (no
/// multiply-add fused). The 8- and 16-lane versions are the same instructions at two widths.
#[cfg(target_arch = "x86_64")]
macro_rules! vector_steps {
    (
        $(#[$doc:meta])* $name:ident, $new:ident, $feature:literal, $lanes:literal, $vector:ty,
        $load:ident, $set1:ident, $add:ident, $mul:ident, $max:ident, $min:ident
    ) => {
        $(#[$doc])*
        #[derive(Clone, Copy)]
        pub(crate) struct $name {
            bias: Option<$vector>,
            affine: Option<($vector, $vector)>,
            /// `(clamp, (lo, hi))`: `clamp` for [`Clip::Clamp`], else [`Clip::MaxMin`].
            clip: Option<(bool, ($vector, $vector))>,
        }

        impl Finish<'_> {
            #[doc = concat!("The steps' values for channels `first..first + ", $lanes, "`, loaded")]
            /// once for a run of vectors.
            ///
            /// # Panics
            /// Where the channels do not lie in the bias and the map.
            #[target_feature(enable = $feature)]
            #[inline]
            pub(crate) fn $new(&self, first: usize) -> $name {
                use std::arch::x86_64::*;
                let load = |v: &[f32]| {
                    let v: &[f32; $lanes] = v[first..first + $lanes].try_into().expect("lanes");
                    // SAFETY: the CPU has this function's feature; `v` holds a vector.
                    unsafe { $load(v.as_ptr()) }
                };
                let bounds = |lo: f32, hi: f32| ($set1(lo), $set1(hi));
                $name {
                    bias: self.bias.map(load),
                    affine: self.affine.map(|(k, s)| (load(k), load(s))),
                    clip: match self.clip {
                        Clip::None => None,
                        Clip::Clamp(lo, hi) => Some((true, bounds(lo, hi))),
                        Clip::MaxMin(lo, hi) => Some((false, bounds(lo, hi))),
                    },
                }
            }
        }

        impl $name {
            /// `maxps a, b` gives `b` where either is NaN (at either width): `clamp` keeps a
            /// NaN as `max(lo, v)`, `f32::max` drops it as `max(v, lo)`. (Both give `lo` for
            /// `v = -0.0` and `lo = 0.0` where Rust's may keep `-0.0`; a sum from `+0.0` with
            /// a bias or map whose shift is not `-0.0` is never `-0.0`.)
            ///
            /// # Safety
            /// The CPU has the type's feature.
            #[target_feature(enable = $feature)]
            #[inline]
            pub(crate) unsafe fn apply(&self, v: $vector) -> $vector {
                self.clip(self.map(v))
            }

            /// The bias and the affine map.
            ///
            /// # Safety
            /// The CPU has the type's feature.
            #[target_feature(enable = $feature)]
            #[inline]
            pub(crate) unsafe fn map(&self, v: $vector) -> $vector {
                use std::arch::x86_64::*;
                let mut v = v;
                if let Some(b) = self.bias {
                    v = $add(v, b);
                }
                if let Some((k, s)) = self.affine {
                    v = $add($mul(v, k), s);
                }
                v
            }

            /// The clipping activation ([`apply`](Self::apply)'s NaN rules).
            ///
            /// # Safety
            /// The CPU has the type's feature.
            #[target_feature(enable = $feature)]
            #[inline]
            pub(crate) unsafe fn clip(&self, v: $vector) -> $vector {
                use std::arch::x86_64::*;
                match self.clip {
                    None => v,
                    Some((true, (lo, hi))) => $min(hi, $max(lo, v)),
                    Some((false, (lo, hi))) => $min($max(v, lo), hi),
                }
            }
        }
    };
}

#[cfg(target_arch = "x86_64")]
vector_steps!(
    /// [`Finish`] for one block of channels, in 256-bit vectors ([`Finish::lanes`]).
    Lanes, lanes, "avx", 8, std::arch::x86_64::__m256,
    _mm256_loadu_ps, _mm256_set1_ps, _mm256_add_ps, _mm256_mul_ps, _mm256_max_ps, _mm256_min_ps
);

#[cfg(target_arch = "x86_64")]
vector_steps!(
    /// [`Finish`] for two blocks of channels in 512-bit vectors ([`Finish::wide_lanes`]).
    WideLanes, wide_lanes, "avx512f", 16, std::arch::x86_64::__m512,
    _mm512_loadu_ps, _mm512_set1_ps, _mm512_add_ps, _mm512_mul_ps, _mm512_max_ps, _mm512_min_ps
);

#[cfg(test)]
mod tests {
    use super::*;

    /// Channel `k`'s pixel `p` lands at block `k / 8`, pixel `p`, lane `k % 8`, and back.
    #[test]
    fn blocks_hold_each_pixels_channels_side_by_side() {
        let (c, hw) = (16, 5);
        let x: Vec<f32> = (0..c * hw).map(|i| i as f32).collect();
        let mut b = vec![0.0; c * hw];
        to_blocks(c, hw, &x, &mut b);
        for k in 0..c {
            for p in 0..hw {
                let at = (k / CHANNELS) * hw * CHANNELS + p * CHANNELS + k % CHANNELS;
                assert_eq!(b[at], x[k * hw + p], "channel {k} pixel {p}");
            }
        }
        let mut back = vec![0.0; c * hw];
        from_blocks(c, hw, &b, &mut back);
        assert_eq!(back, x);
    }

    /// The vector steps against the scalar definition, NaN and the bounds included.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_vector_steps_equal_the_scalar_steps_bit_for_bit() {
        assert!(
            std::arch::is_x86_feature_detected!("avx"),
            "every machine here has AVX"
        );
        let values: Vec<f32> = (0..64)
            .map(|i| match i {
                5 => f32::NAN,
                9 => 6.0,
                _ => (i as f32 * 0.37).sin() * 9.0,
            })
            .collect();
        let b: Vec<f32> = (0..24).map(|c| c as f32 * 0.3 - 1.0).collect();
        let k: Vec<f32> = (0..24).map(|c| 1.7 - c as f32 * 0.2).collect();
        let s: Vec<f32> = (0..24).map(|c| 0.1 * c as f32).collect();
        let maps = [
            (Some(&b[..]), Some((&k[..], &s[..]))),
            (None, Some((&k[..], &s[..]))),
            (Some(&b[..]), None),
        ];
        for clip in [Clip::None, Clip::Clamp(0.0, 6.0), Clip::MaxMin(-1.0, 2.5)] {
            for (bias, affine) in maps {
                let finish = Finish { bias, affine, clip };
                let mut got = values.clone();
                for pixel in got.chunks_exact_mut(CHANNELS) {
                    // SAFETY: every machine here has AVX (asserted); channels 16..24 exist.
                    unsafe {
                        use std::arch::x86_64::*;
                        let v = finish.lanes(16).apply(_mm256_loadu_ps(pixel.as_ptr()));
                        _mm256_storeu_ps(pixel.as_mut_ptr(), v);
                    }
                }
                let want = |c: usize, v: f32| {
                    let mut x = v;
                    if let Some(b) = bias {
                        x += b[c];
                    }
                    if let Some((k, s)) = affine {
                        x = x * k[c] + s[c];
                    }
                    match clip {
                        Clip::None => x,
                        Clip::Clamp(lo, hi) => x.clamp(lo, hi),
                        Clip::MaxMin(lo, hi) => x.max(lo).min(hi),
                    }
                };
                for (i, (g, v)) in got.iter().zip(&values).enumerate() {
                    let want = want(16 + i % CHANNELS, *v);
                    assert_eq!(
                        g.to_bits(),
                        want.to_bits(),
                        "{clip:?} value {i}: {g} vs {want}"
                    );
                }
                if std::arch::is_x86_feature_detected!("avx512f") {
                    // Channels 8..24, sixteen lanes a vector.
                    let mut wide = values.clone();
                    for pixel in wide.chunks_exact_mut(16) {
                        // SAFETY: AVX-512F (checked); channels 8..24 exist.
                        unsafe {
                            use std::arch::x86_64::*;
                            let v = finish.wide_lanes(8).apply(_mm512_loadu_ps(pixel.as_ptr()));
                            _mm512_storeu_ps(pixel.as_mut_ptr(), v);
                        }
                    }
                    for (i, (g, v)) in wide.iter().zip(&values).enumerate() {
                        let want = want(8 + i % 16, *v);
                        assert_eq!(g.to_bits(), want.to_bits(), "{clip:?} 16 lanes, value {i}");
                    }
                }
            }
        }
    }
}
