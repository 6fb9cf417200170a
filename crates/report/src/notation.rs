//! Numbers for people: engineering notation ([`eng`]) and the tick labels built on it.

/// SI prefixes from 10^-24 to 10^24, one per power of 1000.
const PREFIXES: [&str; 17] = [
    "y", "z", "a", "f", "p", "n", "µ", "m", "", "k", "M", "G", "T", "P", "E", "Z", "Y",
];
/// The power of ten of `PREFIXES[0]`.
const FIRST_EXPONENT: i32 = -24;

/// Engineering notation with three significant digits and an SI prefix, trailing zeros dropped:
/// `1.2e9` -> `"1.2 G"`, `3.4e-4` -> `"340 µ"`, `2000` -> `"2 k"`, `12.345` -> `"12.3"`,
/// `-1500` -> `"-1.5 k"`, `999.95` -> `"1 k"` (rounding carries into the next prefix), `0` -> `"0"`.
///
/// The prefix follows a space, so a unit written straight after it reads right (`340 µJ` is
/// `eng(v) + "J"`); tick labels and table cells leave the unit to the axis label or column
/// header (`energy (pJ)`).
/// Not-a-number is `"NaN"`, infinities are `"∞"` and `"-∞"`; magnitudes outside the prefixes
/// (below 1 y, from 1000 Y) fall back to scientific notation (`"1.5e-30"`).
///
/// ```
/// assert_eq!(joule_report::eng(0.000_34), "340 µ");
/// ```
pub fn eng(value: f64) -> String {
    eng_digits(value, 3)
}

/// [`eng`] with `digits` significant digits (at least 1).
pub(crate) fn eng_digits(value: f64, digits: usize) -> String {
    if value.is_nan() {
        return "NaN".into();
    }
    if value.is_infinite() {
        return if value > 0.0 { "∞" } else { "-∞" }.into();
    }
    if value == 0.0 {
        return "0".into();
    }
    let digits = digits.max(1);
    let mut exponent = 3 * (value.abs().log10() / 3.0).floor() as i32;
    let mut mantissa = value / 10f64.powi(exponent);
    // log10 can land one ulp off at exact powers of ten; rounding can carry up to 1000.
    if mantissa.abs() < 1.0 {
        exponent -= 3;
        mantissa = value / 10f64.powi(exponent);
    }
    let mut text = significant(mantissa, digits);
    if text.trim_start_matches('-').parse::<f64>().unwrap_or(0.0) >= 1000.0 {
        exponent += 3;
        text = significant(value / 10f64.powi(exponent), digits);
    }
    let index = (exponent - FIRST_EXPONENT) / 3;
    match usize::try_from(index).ok().and_then(|i| PREFIXES.get(i)) {
        Some(&"") => text,
        Some(prefix) => format!("{text} {prefix}"),
        None => {
            let text = format!("{:.*e}", digits - 1, value);
            // "1.50e-30" -> "1.5e-30"
            let (mantissa, exp) = text.split_once('e').unwrap_or((&text, "0"));
            format!("{}e{exp}", trim_zeros(mantissa))
        }
    }
}

/// `value` rounded to `digits` significant digits, as a plain decimal without trailing zeros.
fn significant(value: f64, digits: usize) -> String {
    if value == 0.0 {
        return "0".into();
    }
    let magnitude = value.abs().log10().floor() as i32;
    let decimals = (digits as i32 - 1 - magnitude).max(0) as usize;
    let text = trim_zeros(&format!("{value:.decimals$}"));
    if text == "-0" {
        "0".into()
    } else {
        text
    }
}

fn trim_zeros(text: &str) -> String {
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text.to_string()
    }
}

/// Tick labels for an axis spanning `lo..hi` with about `ticks` labels: plain decimals while the
/// axis stays within [0.1, 1000) in magnitude (accuracy in %, ratios), engineering notation
/// otherwise; enough significant digits that neighbouring ticks differ.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TickFormat {
    digits: usize,
    plain: bool,
    /// Ticks are rounded to a multiple of this first, so `5.6e-17` on a 0..1 axis reads `0`.
    resolution: f64,
}

impl TickFormat {
    pub(crate) fn linear(lo: f64, hi: f64, ticks: usize) -> TickFormat {
        let largest = lo.abs().max(hi.abs());
        let step = (hi - lo).abs() / ticks.max(1) as f64;
        let digits = if largest > 0.0 && step > 0.0 {
            // One digit more than the estimated step needs: plotters may pick a finer step (2.5,
            // 0.5), and trailing zeros are dropped anyway.
            (largest.log10().floor() - step.log10().floor()) as i64 + 2
        } else {
            1
        };
        let digits = digits.clamp(3, 9) as usize;
        let resolution = if largest > 0.0 && largest.is_finite() {
            10f64.powi(largest.log10().floor() as i32 + 1 - digits as i32)
        } else {
            0.0
        };
        TickFormat {
            digits,
            plain: (0.1..1000.0).contains(&largest),
            resolution,
        }
    }

    /// Decades (1, 10, 100, ...): one significant digit is enough.
    pub(crate) fn log(lo: f64, hi: f64) -> TickFormat {
        TickFormat {
            digits: 3,
            plain: lo >= 0.1 && hi < 1000.0,
            resolution: 0.0,
        }
    }

    pub(crate) fn label(&self, value: f64) -> String {
        let value = if self.resolution > 0.0 {
            (value / self.resolution).round() * self.resolution
        } else {
            value
        };
        if self.plain {
            significant(value, self.digits)
        } else {
            eng_digits(value, self.digits)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eng_hand_table() {
        let table: [(f64, &str); 24] = [
            (0.0, "0"),
            (-0.0, "0"),
            (1.0, "1"),
            (5.0, "5"),
            (12.345, "12.3"),
            (999.0, "999"),
            (999.4, "999"),
            (999.95, "1 k"),
            (1000.0, "1 k"),
            (2000.0, "2 k"),
            (-1500.0, "-1.5 k"),
            (123_456.0, "123 k"),
            (1.2e9, "1.2 G"),
            (15.47e9, "15.5 G"),
            (0.5, "500 m"),
            (1e-3, "1 m"),
            (3.4e-4, "340 µ"),
            (1e-6, "1 µ"),
            (-2.5e-12, "-2.5 p"),
            (0.000_999_96, "1 m"),
            (1e24, "1 Y"),
            (1.5e-30, "1.5e-30"),
            (2e30, "2e30"),
            (f64::NAN, "NaN"),
        ];
        for (value, expected) in table {
            assert_eq!(eng(value), expected, "eng({value:e})");
        }
        assert_eq!(eng(f64::INFINITY), "∞");
        assert_eq!(eng(f64::NEG_INFINITY), "-∞");
        // Exact powers of ten, where log10 may be an ulp off, never print "1000 x" or "0.1 x".
        for k in -24i32..=26 {
            let mantissa = ["1", "10", "100"][k.rem_euclid(3) as usize];
            let text = eng(10f64.powi(k));
            assert_eq!(text.split(' ').next(), Some(mantissa), "10^{k}: {text}");
            let text = eng(0.999_999 * 10f64.powi(k));
            assert_eq!(
                text.split(' ').next(),
                Some(mantissa),
                "0.999999e{k}: {text}"
            );
        }
    }

    #[test]
    fn ticks_get_enough_digits_and_plain_decimals_in_the_plain_range() {
        let f = TickFormat::linear(0.0, 1.0, 10);
        assert_eq!(
            [0.0, 0.2, 0.25].map(|v| f.label(v)),
            ["0", "0.2", "0.25"].map(String::from)
        );
        let f = TickFormat::linear(0.0, 2.5e9, 10);
        assert_eq!(f.label(5e8), "500 M");
        assert_eq!(f.label(1.25e9), "1.25 G");
        // Ticks one apart at 12 340: three digits would print "12.3 k" for all of them.
        let f = TickFormat::linear(12_340.0, 12_350.0, 10);
        assert_eq!(f.label(12_341.0), "12.341 k");
        let f = TickFormat::linear(90.0, 100.0, 10);
        assert_eq!(f.label(97.5), "97.5");
        // Floating-point leftovers at zero.
        assert_eq!(TickFormat::linear(-1.0, 1.0, 10).label(5.6e-17), "0");
        assert_eq!(TickFormat::linear(-1e9, 1e9, 10).label(-3e-8), "0");
    }
}
