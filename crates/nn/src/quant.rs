//! Fake quantization: the quantize-dequantize kernels the engine runs in a CONV or FC layer's
//! forward pass when the layer carries a [`LayerQuant`] ([`Network::set_quant`]), and the
//! straight-through estimator (STE) its backward pass uses.
//!
//! * **Weights**, per output channel ([`quantize_weights`]): every scheme returns integer
//!   codes and a per-channel step, so the dequantized weight is exactly `code x step` (what
//!   an ONNX `DequantizeLinear` computes):
//!   - [`WeightScheme::Uniform`]: symmetric, `step = max|w_c| / (2^(b-1) - 1)`, codes in
//!     `±(2^(b-1) - 1)` (the restricted range, so the grid is symmetric about zero);
//!   - [`WeightScheme::PowerOfTwo`]: LogNet-style (Lee et al., ICASSP 2017), magnitudes
//!     `max|w_c| x 2^-k`, `k` rounded in the log domain, one code for zero, 1 sign bit:
//!     `2^(b-1) - 1` exponents (at most 31);
//!   - [`WeightScheme::Ternary`]: TWN (Li et al., 2016), threshold `0.7 mean|w_c|`, scale the
//!     mean magnitude of the weights above it, codes {-1, 0, 1};
//!   - [`WeightScheme::Binary`]: BWN / XNOR-Net (Rastegari et al., ECCV 2016), `sign(w) x
//!     mean|w_c|`, codes {-1, 1}.
//! * **Activations** ([`ActQuant`]), per tensor, asymmetric (affine) uniform on a calibrated
//!   range `[lo, hi]` that includes 0: `scale = (hi - lo) / (2^b - 1)`, `zero_point =
//!   round(-lo / scale)`, `q = clamp(round(x / scale) + zero_point, 0, 2^b - 1)`, `x' = (q -
//!   zero_point) x scale`, rounding half to even and dividing by the scale as ONNX
//!   `QuantizeLinear` does, so that onnxruntime reproduces the values.
//! * **STE** (Bengio et al., 2013; as in DoReFa and PACT): the gradient reaching a
//!   quantized weight passes to the float weight unchanged; the gradient reaching a quantized
//!   activation passes where `lo <= x <= hi` and is zero where the clip saturated.
//!
//! [`Network::set_quant`]: crate::Network::set_quant

use serde::{Deserialize, Serialize};

/// How weights are quantized.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WeightScheme {
    Uniform,
    PowerOfTwo,
    Ternary,
    Binary,
}

impl WeightScheme {
    pub fn name(self) -> &'static str {
        match self {
            WeightScheme::Uniform => "uniform",
            WeightScheme::PowerOfTwo => "power-of-two",
            WeightScheme::Ternary => "ternary",
            WeightScheme::Binary => "binary",
        }
    }

    pub fn parse(s: &str) -> Option<WeightScheme> {
        [
            WeightScheme::Uniform,
            WeightScheme::PowerOfTwo,
            WeightScheme::Ternary,
            WeightScheme::Binary,
        ]
        .into_iter()
        .find(|w| w.name() == s)
    }

    /// The storage width of one weight code: `bits` for uniform and power-of-two, 2 for
    /// ternary, 1 for binary.
    pub fn storage_bits(self, bits: u32) -> u32 {
        match self {
            WeightScheme::Uniform | WeightScheme::PowerOfTwo => bits,
            WeightScheme::Ternary => 2,
            WeightScheme::Binary => 1,
        }
    }
}

/// A weight quantizer: scheme and code width.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct WeightQuant {
    pub scheme: WeightScheme,
    pub bits: u32,
}

/// Quantized weights: `dequantized[i] = codes[i] x steps[channel of i]`.
#[derive(Clone, Debug, PartialEq)]
pub struct QuantizedWeights {
    pub codes: Vec<i32>,
    /// One step per output channel.
    pub steps: Vec<f32>,
    pub dequantized: Vec<f32>,
}

impl QuantizedWeights {
    /// Whether every code fits a signed 8-bit integer (ONNX int8 `DequantizeLinear`).
    pub fn fits_int8(&self) -> bool {
        self.codes.iter().all(|c| (-127..=127).contains(c))
    }
}

/// The largest power-of-two exponent: codes stay within `i32` and steps within `f32`.
const MAX_EXPONENT: u32 = 30;

/// Quantizes `weights` (output channel first: `channels` equal slices) with `quant`.
pub fn quantize_weights(weights: &[f32], channels: usize, quant: WeightQuant) -> QuantizedWeights {
    let per = weights.len() / channels.max(1);
    let mut codes = Vec::with_capacity(weights.len());
    let mut steps = Vec::with_capacity(channels);
    for w in weights.chunks(per.max(1)) {
        let max = w.iter().fold(0f32, |m, v| m.max(v.abs()));
        let (step, code): (f32, Box<dyn Fn(f32) -> i32>) = match quant.scheme {
            WeightScheme::Uniform => {
                let qmax = ((1i64 << (quant.bits - 1)) - 1) as f32;
                let step = max / qmax;
                (
                    step,
                    Box::new(move |v: f32| {
                        if step > 0.0 {
                            (v / step).round_ties_even().clamp(-qmax, qmax) as i32
                        } else {
                            0
                        }
                    }),
                )
            }
            WeightScheme::PowerOfTwo => {
                let kmax = ((1u32 << (quant.bits - 1).min(5)) - 2).min(MAX_EXPONENT) as i32;
                let step = max * (-(kmax as f32)).exp2();
                (
                    step,
                    Box::new(move |v: f32| {
                        if max == 0.0 || v == 0.0 {
                            return 0;
                        }
                        // Distance below the channel's largest magnitude, in octaves.
                        let t = -(v.abs() / max).log2();
                        if t > kmax as f32 + 0.5 {
                            return 0;
                        }
                        let k = (t.round_ties_even() as i32).clamp(0, kmax);
                        (1i32 << (kmax - k)) * if v < 0.0 { -1 } else { 1 }
                    }),
                )
            }
            WeightScheme::Ternary => {
                let mean = w.iter().map(|v| v.abs()).sum::<f32>() / w.len().max(1) as f32;
                let delta = 0.7 * mean;
                let above: Vec<f32> = w.iter().map(|v| v.abs()).filter(|a| *a > delta).collect();
                let alpha = if above.is_empty() {
                    0.0
                } else {
                    above.iter().sum::<f32>() / above.len() as f32
                };
                (
                    alpha,
                    Box::new(move |v: f32| {
                        if v.abs() > delta {
                            if v < 0.0 {
                                -1
                            } else {
                                1
                            }
                        } else {
                            0
                        }
                    }),
                )
            }
            WeightScheme::Binary => {
                let alpha = w.iter().map(|v| v.abs()).sum::<f32>() / w.len().max(1) as f32;
                (alpha, Box::new(|v: f32| if v < 0.0 { -1 } else { 1 }))
            }
        };
        steps.push(step);
        codes.extend(w.iter().map(|&v| code(v)));
    }
    let dequantized = codes
        .iter()
        .enumerate()
        .map(|(i, &c)| c as f32 * steps[i / per.max(1)])
        .collect();
    QuantizedWeights {
        codes,
        steps,
        dequantized,
    }
}

/// A per-tensor activation quantizer on the range `[lo, hi]` (`lo <= 0 <= hi`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActQuant {
    pub bits: u32,
    pub lo: f32,
    pub hi: f32,
}

impl ActQuant {
    /// A quantizer of `bits` on `[min(lo, 0), max(hi, 0)]` (a degenerate range widens to
    /// one step, so the scale stays positive).
    pub fn new(bits: u32, lo: f32, hi: f32) -> ActQuant {
        let (lo, mut hi) = (lo.min(0.0), hi.max(0.0));
        if hi - lo <= f32::MIN_POSITIVE {
            hi = lo + 1.0;
        }
        ActQuant { bits, lo, hi }
    }

    /// The largest code, `2^bits - 1`.
    pub fn qmax(&self) -> f32 {
        ((1u64 << self.bits) - 1) as f32
    }

    pub fn scale(&self) -> f32 {
        (self.hi - self.lo) / self.qmax()
    }

    /// The code of real zero.
    pub fn zero_point(&self) -> f32 {
        (-self.lo / self.scale())
            .round_ties_even()
            .clamp(0.0, self.qmax())
    }

    /// The dequantized range `[(0 - zp) x scale, (qmax - zp) x scale]`: what the grid spans.
    pub fn grid_range(&self) -> (f32, f32) {
        let (s, z) = (self.scale(), self.zero_point());
        ((0.0 - z) * s, (self.qmax() - z) * s)
    }

    /// Quantize-dequantize `x` into `out`.
    pub fn fake_quant(&self, x: &[f32], out: &mut [f32]) {
        let (s, z, qmax) = (self.scale(), self.zero_point(), self.qmax());
        for (o, &v) in out.iter_mut().zip(x) {
            let q = ((v / s).round_ties_even() + z).clamp(0.0, qmax);
            *o = (q - z) * s;
        }
    }

    /// STE: zeroes the gradient `dx` where `x` saturated the grid.
    pub fn ste(&self, x: &[f32], dx: &mut [f32]) {
        let (lo, hi) = self.grid_range();
        for (d, &v) in dx.iter_mut().zip(x) {
            if !(lo..=hi).contains(&v) {
                *d = 0.0;
            }
        }
    }

    /// Mean squared quantization error of `x`.
    pub fn mse(&self, x: &[f32]) -> f64 {
        let mut q = vec![0f32; x.len()];
        self.fake_quant(x, &mut q);
        x.iter()
            .zip(&q)
            .map(|(a, b)| ((a - b) as f64).powi(2))
            .sum::<f64>()
            / x.len().max(1) as f64
    }
}

/// How an activation range is calibrated from sample values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Calibration {
    /// The observed minimum and maximum: nothing clips.
    MinMax,
    /// The clip that minimises the mean squared quantization error at the chosen width.
    Mse,
}

impl Calibration {
    pub fn name(self) -> &'static str {
        match self {
            Calibration::MinMax => "minmax",
            Calibration::Mse => "mse",
        }
    }

    pub fn parse(s: &str) -> Option<Calibration> {
        [Calibration::MinMax, Calibration::Mse]
            .into_iter()
            .find(|c| c.name() == s)
    }
}

/// Candidate clips of the MSE search, as fractions of the observed range: 1.0 down to 0.05.
const MSE_STEPS: usize = 96;

/// Calibrates a `bits`-wide quantizer on `values`. MSE searches clips that shrink the
/// observed range `[min, max]` proportionally (both ends by the same fraction) and keeps
/// the one with the least error over `values`; min/max keeps the observed range.
pub fn calibrate(values: &[f32], bits: u32, method: Calibration) -> ActQuant {
    let (min, max) = values
        .iter()
        .fold((0f32, 0f32), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    let full = ActQuant::new(bits, min, max);
    match method {
        Calibration::MinMax => full,
        Calibration::Mse => {
            let mut best = (full.mse(values), full);
            for k in 1..MSE_STEPS {
                let f = 1.0 - k as f32 / (MSE_STEPS as f32 + 5.0);
                let candidate = ActQuant::new(bits, min * f, max * f);
                let e = candidate.mse(values);
                if e < best.0 {
                    best = (e, candidate);
                }
            }
            best.1
        }
    }
}

/// What a CONV or FC layer quantizes: its weights and its input activations.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LayerQuant {
    pub weight: Option<WeightQuant>,
    pub input: Option<ActQuant>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_weights_are_per_channel_symmetric() {
        // Two channels of max 1.0 and 0.5 at 3 bits: qmax 3, steps 1/3 and 1/6.
        let w = [1.0, -0.5, 0.2, 0.0, 0.5, -0.25, 0.1, -0.5];
        let q = quantize_weights(
            &w,
            2,
            WeightQuant {
                scheme: WeightScheme::Uniform,
                bits: 3,
            },
        );
        assert_eq!(q.steps, [1.0 / 3.0, 0.5 / 3.0]);
        // 0.5 / (1/3) = 1.5 rounds to even 2; 0.2 * 3 = 0.6 -> 1; -0.25 / (1/6) = -1.5 -> -2.
        assert_eq!(q.codes, [3, -2, 1, 0, 3, -2, 1, -3]);
        assert_eq!(q.dequantized[4], 0.5);
        assert!(q.fits_int8());
    }

    #[test]
    fn power_of_two_ternary_and_binary_levels() {
        let w = [0.8, 0.4, -0.2, 0.11, 0.01, -0.8];
        // 3 bits: exponents 0..=2 below 0.8: 0.8, 0.4, 0.2 (step 0.2, codes 4, 2, 1); 0.11
        // is 2.86 octaves down, past kmax + 0.5 = 2.5, so zero.
        let q = quantize_weights(
            &w,
            1,
            WeightQuant {
                scheme: WeightScheme::PowerOfTwo,
                bits: 3,
            },
        );
        assert_eq!(q.codes, [4, 2, -1, 0, 0, -4]);
        assert_eq!(q.steps, [0.2]);
        // Ternary: mean |w| = 2.32 / 6, threshold 0.7 x that = 0.2707; above: 0.8, 0.4, 0.8.
        let t = quantize_weights(
            &w,
            1,
            WeightQuant {
                scheme: WeightScheme::Ternary,
                bits: 2,
            },
        );
        assert_eq!(t.codes, [1, 1, 0, 0, 0, -1]);
        assert!((t.steps[0] - 2.0 / 3.0).abs() < 1e-6);
        let b = quantize_weights(
            &w,
            1,
            WeightQuant {
                scheme: WeightScheme::Binary,
                bits: 1,
            },
        );
        assert_eq!(b.codes, [1, 1, -1, 1, 1, -1]);
        assert!((b.steps[0] - 2.32 / 6.0).abs() < 1e-6);
    }

    #[test]
    fn activations_round_half_even_and_clip() {
        // 2 bits on [0, 3]: scale 1, zero point 0.
        let a = ActQuant::new(2, 0.0, 3.0);
        let mut out = [0f32; 6];
        a.fake_quant(&[-1.0, 0.5, 1.5, 2.5, 2.6, 7.0], &mut out);
        assert_eq!(out, [0.0, 0.0, 2.0, 2.0, 3.0, 3.0]);
        let mut dx = [1f32; 6];
        a.ste(&[-1.0, 0.5, 1.5, 2.5, 3.0, 7.0], &mut dx);
        assert_eq!(dx, [0.0, 1.0, 1.0, 1.0, 1.0, 0.0]);
        // A signed range: 2 bits on [-1, 3]: scale 4/3, zero point round(0.75) = 1, so the
        // grid is {-4/3, 0, 4/3, 8/3}: zero exact, the ends moved to fit it.
        let s = ActQuant::new(2, -1.0, 3.0);
        assert_eq!(s.zero_point(), 1.0);
        let (lo, hi) = s.grid_range();
        assert!((lo + 4.0 / 3.0).abs() < 1e-6 && (hi - 8.0 / 3.0).abs() < 1e-6);
    }

    #[test]
    fn mse_clips_a_long_tail_at_low_width_and_min_max_does_not() {
        // 1000 values in [0, 1) and one outlier at 20.
        let mut v: Vec<f32> = (0..1000).map(|i| i as f32 / 1000.0).collect();
        v.push(20.0);
        let full = calibrate(&v, 4, Calibration::MinMax);
        assert_eq!((full.lo, full.hi), (0.0, 20.0));
        let mse = calibrate(&v, 4, Calibration::Mse);
        assert!(mse.hi < 20.0, "{mse:?}");
        assert!(mse.mse(&v) < full.mse(&v));
    }
}
