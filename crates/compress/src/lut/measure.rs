//! Timing protocol: warm-up, repeated runs, median until stable, spread; the whole taken in
//! several sweeps spread over time, keeping the median of the sweeps' medians.
//!
//! Why sweeps: on a shared machine the speed of the cores drifts in phases (a neighbour's
//! burst on the sibling hyperthread, frequency scaling); one tight burst of runs can land
//! entirely inside a slow phase and be off by 30%. A table measures every entry once per
//! sweep, a network is measured in sweeps a pause apart, so a short phase is voted out by
//! the median.
//!
//! Why a gate: on this project's 2-core VMs slow phases last ten seconds and more, run
//! 1.4x slower across the board, and no median over a few seconds outvotes them.
//! [`WallClock`] therefore times a fixed calibration layer before every sweep and waits
//! (up to `gate_wait_ms`) while it runs more than `gate_tolerance` slower than the fastest
//! calibration seen, so every sweep is taken in the machine's normal state. The reference
//! travels with a table ([`super::LatencyTable::calibration_ms`],
//! [`WallClock::use_reference`]), so a later process
//! measures networks in the same state the table was built in.
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
    /// Sweeps over the table (or repeated measurements of a network); the median of their
    /// medians is kept. Tables written before sweeps existed read as 1.
    #[serde(default = "one")]
    pub sweeps: usize,
    /// Pause between the sweeps of one network's measurement (ms).
    #[serde(default)]
    pub pause_ms: u64,
    /// Relative slowdown of the calibration layer beyond which a sweep waits (0: no gate).
    #[serde(default)]
    pub gate_tolerance: f64,
    /// Longest wait for the machine to return to its reference speed before a sweep (ms);
    /// the sweep then runs anyway and the wait is recorded.
    #[serde(default)]
    pub gate_wait_ms: u64,
    /// How a table's probes are timed (see [`Context`]); tables written before it existed
    /// were timed isolated and read so.
    #[serde(default)]
    pub context: Context,
}

/// The context a table entry is timed in.
///
/// Why: inside a network every step runs after a different one, so its code, weights and
/// the kernel's scratch are not where the previous run of the same step left them. A probe
/// repeated on its own measured mobilenetv3-28's small steps (1-13 us) at about half their
/// cost in the network, and the table's sum under-predicted the whole network by 45%
/// (docs/netadapt.md, "Why the tables under-predicted MobileNets").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Context {
    /// Each probe repeated on its own, back to back (hot caches and branch predictors).
    #[default]
    Isolated,
    /// The probes run in chains in the network's order, one variant of every step per chain
    /// after the overhead probe, each run timed on its own ([`streamed_medians`]).
    Streamed,
}

fn one() -> usize {
    1
}

impl Default for MeasureConfig {
    fn default() -> Self {
        MeasureConfig {
            warmup: 3,
            round: 15,
            tolerance: 0.02,
            max_runs: 150,
            sweeps: 7,
            pause_ms: 100,
            gate_tolerance: 0.1,
            gate_wait_ms: 30_000,
            context: Context::Streamed,
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

/// One measurement from the sweeps of the same quantity: the median of their medians; the
/// spread is the larger of the sweeps' median spread and the spread between sweeps.
pub fn combine_sweeps(sweeps: &[Measurement]) -> Measurement {
    let medians: Vec<f64> = sweeps.iter().map(|m| m.median_ms).collect();
    let spreads: Vec<f64> = sweeps.iter().map(|m| m.spread_ms).collect();
    let between = if sweeps.len() > 1 {
        quantile(&medians, 0.75) - quantile(&medians, 0.25)
    } else {
        0.0
    };
    Measurement {
        median_ms: median(&medians),
        spread_ms: median(&spreads).max(between),
        runs: sweeps.iter().map(|m| m.runs).sum(),
        stable: sweeps.iter().all(|m| m.stable),
    }
}

/// `sample` measured by [`stable_median`] in `config.sweeps` sweeps, `config.pause_ms` apart,
/// each after `timer`'s gate ([`LayerTimer::settle`]), combined by [`combine_sweeps`].
pub fn swept_median(
    config: &MeasureConfig,
    timer: &dyn LayerTimer,
    mut sample: impl FnMut() -> Result<f64, CompressError>,
) -> Result<Measurement, CompressError> {
    let mut sweeps = Vec::with_capacity(config.sweeps.max(1));
    for i in 0..config.sweeps.max(1) {
        if i > 0 && config.pause_ms > 0 {
            std::thread::sleep(std::time::Duration::from_millis(config.pause_ms));
        }
        timer.settle(config)?;
        sweeps.push(stable_median(config, &mut sample)?);
    }
    Ok(combine_sweeps(&sweeps))
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

    /// Waits until the machine runs at its reference speed (see the module docs); a clock
    /// that is not a wall clock has nothing to wait for.
    fn settle(&self, _config: &MeasureConfig) -> Result<(), CompressError> {
        Ok(())
    }

    /// The calibration layer's reference latency (ms), if this clock keeps one.
    fn reference_ms(&self) -> Option<f64> {
        None
    }

    /// Times every probe of `chain` once, one after another (a network's steps streamed),
    /// each on its own: one time in ms per probe.
    fn time_chain_ms(&self, chain: &[Probe<'_>]) -> Result<Vec<f64>, CompressError> {
        chain.iter().map(|p| self.time_ms(p)).collect()
    }
}

impl std::str::FromStr for Context {
    type Err = String;

    fn from_str(s: &str) -> Result<Context, String> {
        match s {
            "isolated" => Ok(Context::Isolated),
            "streamed" => Ok(Context::Streamed),
            _ => Err(format!("unknown context {s:?} (streamed or isolated)")),
        }
    }
}

/// Every probe timed streamed ([`Context::Streamed`]): each pass runs every chain (a list of
/// indices into `probes`) twice in a row with [`LayerTimer::time_chain_ms`], timing the
/// second; after `config.warmup`
/// untimed passes, rounds of `config.round` passes repeat until the median of every probe
/// moved by at most `config.tolerance` between rounds, or `config.max_runs` passes. One
/// measurement per probe (`runs`: its timed runs; a probe no chain names has none and
/// measures 0).
pub fn streamed_medians(
    config: &MeasureConfig,
    timer: &dyn LayerTimer,
    probes: &[Probe<'_>],
    chains: &[Vec<usize>],
) -> Result<Vec<Measurement>, CompressError> {
    let run_pass = |samples: &mut Vec<Vec<f64>>, keep: bool| -> Result<(), CompressError> {
        for chain in chains {
            let list: Vec<Probe<'_>> = chain
                .iter()
                .map(|&i| Probe {
                    key: probes[i].key,
                    network: probes[i].network,
                    input: probes[i].input,
                })
                .collect();
            // Twice in a row, the second timed: a network is timed (and served) run after
            // run, its own weights and buffers warm from its previous run; a chain after
            // other chains ran 10-16% slower than the same steps run again (the drift of
            // mobilenetv3-28's steps against a table timed once per chain: 0.84).
            timer.time_chain_ms(&list)?;
            let times = timer.time_chain_ms(&list)?;
            if keep {
                for (&i, t) in chain.iter().zip(times) {
                    samples[i].push(t);
                }
            }
        }
        Ok(())
    };
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); probes.len()];
    for _ in 0..config.warmup {
        run_pass(&mut samples, false)?;
    }
    let round = config.round.max(1);
    let mut passes = 0;
    // Per probe: whether its median moved by at most the tolerance in the last round.
    let mut stable = vec![false; probes.len()];
    let mut previous: Option<Vec<f64>> = None;
    while passes < config.max_runs.max(round) {
        for _ in 0..round {
            run_pass(&mut samples, true)?;
        }
        passes += round;
        let now: Vec<f64> = samples.iter().map(|s| median(s)).collect();
        if let Some(p) = &previous {
            for ((s, m), p) in stable.iter_mut().zip(&now).zip(p) {
                *s = (m - p).abs() <= config.tolerance * p.abs().max(f64::MIN_POSITIVE);
            }
            if stable.iter().all(|s| *s) {
                break;
            }
        }
        previous = Some(now);
    }
    Ok(samples
        .iter()
        .zip(stable)
        .map(|(runs, stable)| Measurement {
            median_ms: median(runs),
            spread_ms: quantile(runs, 0.75) - quantile(runs, 0.25),
            runs: runs.len(),
            stable,
        })
        .collect())
}

/// Wall-clock timing of joule's inference engine on a dedicated rayon pool, gated on a
/// calibration layer (a 16 -> 32 channel 3x3 CONV + ReLU on a 14x14 map).
pub struct WallClock {
    pool: rayon::ThreadPool,
    pub threads: usize,
    calibration: (Network, FeatureMap),
    /// Fastest calibration median seen (ms); `f64::INFINITY` until the first.
    reference: std::sync::Mutex<f64>,
    /// Time spent waiting for the reference speed (ms), and the sweeps that gave up waiting.
    waited: std::sync::Mutex<(f64, usize)>,
    /// The calibration time each gate started with (the machine's state when each sweep was
    /// due), since the last [`WallClock::take_states`].
    states: std::sync::Mutex<Vec<f64>>,
}

/// The calibration step of the gate: a 16 -> 32 channel 3x3 CONV + ReLU (on a 14x14 map).
pub(crate) fn calibration_ops() -> (joule_model::Op, joule_model::Op) {
    (
        joule_model::Op::Conv(joule_model::ops::Conv::new(32, 3, 1, 1)),
        joule_model::Op::Activation(joule_model::ops::Activation::Relu),
    )
}

impl WallClock {
    pub fn new(threads: usize) -> Result<WallClock, CompressError> {
        let threads = threads.max(1);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .map_err(|e| CompressError::config("threads", e.to_string()))?;
        let shape = joule_model::Shape::new(1, 16, 14, 14);
        let (conv, relu) = calibration_ops();
        let network = super::probe_network(&conv, &[relu], &[shape])?;
        Ok(WallClock {
            pool,
            threads,
            calibration: (network, super::probe_input(shape)),
            reference: std::sync::Mutex::new(f64::INFINITY),
            waited: std::sync::Mutex::new((0.0, 0)),
            states: std::sync::Mutex::new(Vec::new()),
        })
    }

    /// Starts from a known reference (a table's `calibration_ms`), so that networks are
    /// measured in the state the table was built in.
    pub fn use_reference(&self, reference_ms: Option<f64>) {
        if let Some(r) = reference_ms.filter(|r| r.is_finite() && *r > 0.0) {
            let mut current = self.reference.lock().expect("not poisoned");
            *current = current.min(r);
        }
    }

    /// Samples the calibration layer every 100 ms for `duration_ms` to find the machine's
    /// normal speed before a table is built (a process may start inside a slow phase).
    pub fn find_reference(&self, duration_ms: u64) -> Result<f64, CompressError> {
        let start = Instant::now();
        loop {
            let now = self.calibrate()?;
            let mut r = self.reference.lock().expect("not poisoned");
            *r = r.min(now);
            if start.elapsed().as_millis() as u64 >= duration_ms {
                return Ok(*r);
            }
            drop(r);
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }

    /// Milliseconds spent waiting for the reference speed so far, and the sweeps that ran
    /// without reaching it.
    pub fn waited(&self) -> (f64, usize) {
        *self.waited.lock().expect("not poisoned")
    }

    /// The median calibration time at the gates since the last call (the machine's state
    /// while a table or a network was measured), and forgets them; `None` without gates.
    pub fn take_states(&self) -> Option<f64> {
        let states = std::mem::take(&mut *self.states.lock().expect("not poisoned"));
        (!states.is_empty()).then(|| median(&states))
    }

    /// Median of a short burst of calibration runs.
    fn calibrate(&self) -> Result<f64, CompressError> {
        let (network, input) = &self.calibration;
        let probe = Probe {
            key: None,
            network,
            input,
        };
        for _ in 0..2 {
            self.time_ms(&probe)?;
        }
        let runs = (0..9)
            .map(|_| self.time_ms(&probe))
            .collect::<Result<Vec<f64>, _>>()?;
        Ok(median(&runs))
    }
}

impl LayerTimer for WallClock {
    fn settle(&self, config: &MeasureConfig) -> Result<(), CompressError> {
        if config.gate_tolerance <= 0.0 {
            return Ok(());
        }
        let start = Instant::now();
        let mut first = None;
        loop {
            let now = self.calibrate()?;
            // The state is the calibration when the sweep was due, before any wait: the one
            // the gate lets through is censored at the tolerance.
            let first = *first.get_or_insert(now);
            let reference = {
                let mut r = self.reference.lock().expect("not poisoned");
                *r = r.min(now);
                *r
            };
            let waited = start.elapsed().as_secs_f64() * 1e3;
            let normal = now <= reference * (1.0 + config.gate_tolerance);
            if normal || waited >= config.gate_wait_ms as f64 {
                self.states.lock().expect("not poisoned").push(first);
                let mut w = self.waited.lock().expect("not poisoned");
                w.0 += waited;
                w.1 += usize::from(!normal);
                return Ok(());
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    fn reference_ms(&self) -> Option<f64> {
        let r = *self.reference.lock().expect("not poisoned");
        r.is_finite().then_some(r)
    }

    fn time_chain_ms(&self, chain: &[Probe<'_>]) -> Result<Vec<f64>, CompressError> {
        // One hand-off to the pool for the whole chain, as a network is one call.
        self.pool
            .install(|| chain.iter().map(|p| self.time_ms(p)).collect())
    }

    fn time_ms(&self, probe: &Probe<'_>) -> Result<f64, CompressError> {
        // The output storage is kept between runs: inside a network a layer writes into a
        // reused buffer, so allocating and clearing a fresh output every run would time
        // work the network never does.
        thread_local! {
            static OUT: std::cell::RefCell<FeatureMap> = const {
                std::cell::RefCell::new(FeatureMap {
                    shape: joule_model::Shape { n: 1, c: 1, h: 1, w: 1 },
                    data: Vec::new(),
                })
            };
        }
        self.pool.install(|| {
            OUT.with_borrow_mut(|out| {
                let start = Instant::now();
                probe.network.forward_into(probe.input, out)?;
                let ms = start.elapsed().as_secs_f64() * 1e3;
                std::hint::black_box(&out.data);
                Ok(ms)
            })
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
            ..MeasureConfig::default()
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
            ..MeasureConfig::default()
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
