//! Timing protocol: warm-up, repeated runs, median until stable, spread.
//!
//! The clock is a trait ([`LayerTimer`]) so that the table's logic is tested with a
//! deterministic fake; [`WallClock`] runs joule's inference engine
//! ([`joule_nn::Network::forward`]) at batch `n` on a rayon pool of the chosen size.

use crate::CompressError;
use joule_nn::{FeatureMap, Network};
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// How many runs a measurement takes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MeasureConfig {
    /// Runs discarded before timing (caches, allocator, lazy pools).
    pub warmup: usize,
    /// Runs per round; the median is re-taken after each round.
    pub round: usize,
    /// Stop when the median moved by at most this fraction between two rounds.
    pub tolerance: f64,
    /// Give up on stability after this many timed runs (the median so far is kept).
    pub max_runs: usize,
}

impl Default for MeasureConfig {
    fn default() -> Self {
        MeasureConfig {
            warmup: 3,
            round: 15,
            tolerance: 0.02,
            max_runs: 150,
        }
    }
}

/// A measured duration in milliseconds: the median and the spread of the runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Measurement {
    pub median_ms: f64,
    /// Inter-quartile range of the runs.
    pub spread_ms: f64,
    pub runs: usize,
    /// Whether the median settled within the tolerance before `max_runs`.
    pub stable: bool,
}

/// Median of `values` (sorted copy; the mean of the middle two for an even count).
pub fn median(values: &[f64]) -> f64 {
    quantile(values, 0.5)
}

/// Linear-interpolated quantile `q` in [0, 1] of `values`; 0 for an empty slice.
pub fn quantile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let at = q.clamp(0.0, 1.0) * (v.len() - 1) as f64;
    let (lo, hi) = (at.floor() as usize, at.ceil() as usize);
    v[lo] + (v[hi] - v[lo]) * (at - lo as f64)
}

/// Runs `sample` (one timed run, in ms) by the protocol of `config`.
pub fn stable_median(
    config: &MeasureConfig,
    mut sample: impl FnMut() -> Result<f64, CompressError>,
) -> Result<Measurement, CompressError> {
    for _ in 0..config.warmup {
        sample()?;
    }
    let round = config.round.max(1);
    let mut runs: Vec<f64> = Vec::new();
    let mut previous: Option<f64> = None;
    let mut stable = false;
    while runs.len() < config.max_runs.max(round) {
        for _ in 0..round {
            runs.push(sample()?);
        }
        let m = median(&runs);
        if let Some(p) = previous {
            if (m - p).abs() <= config.tolerance * p.abs().max(f64::MIN_POSITIVE) {
                stable = true;
                break;
            }
        }
        previous = Some(m);
    }
    Ok(Measurement {
        median_ms: median(&runs),
        spread_ms: quantile(&runs, 0.75) - quantile(&runs, 0.25),
        runs: runs.len(),
        stable,
    })
}

/// What one timed run executes: a network (a single layer, or a whole network) on an input.
pub struct Probe<'a> {
    /// The table key of the layer, `None` for a whole network.
    pub key: Option<&'a super::LayerKey>,
    pub network: &'a Network,
    pub input: &'a FeatureMap,
}

/// One timed run of a probe, in milliseconds.
pub trait LayerTimer: Sync {
    fn time_ms(&self, probe: &Probe<'_>) -> Result<f64, CompressError>;
}

/// Wall-clock timing of joule's inference engine on a dedicated rayon pool.
pub struct WallClock {
    pool: rayon::ThreadPool,
    pub threads: usize,
}

impl WallClock {
    pub fn new(threads: usize) -> Result<WallClock, CompressError> {
        let threads = threads.max(1);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .map_err(|e| CompressError::config("threads", e.to_string()))?;
        Ok(WallClock { pool, threads })
    }
}

impl LayerTimer for WallClock {
    fn time_ms(&self, probe: &Probe<'_>) -> Result<f64, CompressError> {
        self.pool.install(|| {
            let start = Instant::now();
            let out = probe.network.forward(probe.input)?;
            let ms = start.elapsed().as_secs_f64() * 1e3;
            std::hint::black_box(out);
            Ok(ms)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_quantiles_of_known_values() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(quantile(&[1.0, 2.0, 3.0, 4.0, 5.0], 0.25), 2.0);
        assert_eq!(quantile(&[1.0, 2.0, 3.0, 4.0, 5.0], 0.75), 4.0);
    }

    #[test]
    fn a_steady_clock_stops_after_two_rounds_and_skips_warmup() {
        let config = MeasureConfig {
            warmup: 2,
            round: 5,
            tolerance: 0.01,
            max_runs: 100,
        };
        // Warm-up runs are slow (100 ms) and must not count.
        let mut calls = 0;
        let m = stable_median(&config, || {
            calls += 1;
            Ok(if calls <= 2 {
                100.0
            } else {
                1.0 + (calls % 3) as f64 * 0.1
            })
        })
        .unwrap();
        assert_eq!(m.runs, 10);
        assert!(m.stable);
        assert!((m.median_ms - 1.1).abs() < 1e-9, "{m:?}");
        assert!(m.spread_ms > 0.0 && m.spread_ms <= 0.2);
    }

    #[test]
    fn a_drifting_clock_runs_to_the_cap_and_says_unstable() {
        let config = MeasureConfig {
            warmup: 0,
            round: 4,
            tolerance: 0.01,
            max_runs: 20,
        };
        let mut t = 0.0;
        let m = stable_median(&config, || {
            t += 1.0;
            Ok(t)
        })
        .unwrap();
        assert_eq!(m.runs, 20);
        assert!(!m.stable);
        assert_eq!(m.median_ms, 10.5);
    }
}
