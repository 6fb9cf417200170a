//! The worker pool as the engine wants it: the calling thread one of rayon's workers, and
//! the other workers kept awake through a pass.
//!
//! A pass splits each big layer in two (`rayon::join`, parallel loops); the other half runs
//! only once a second worker takes it. Asleep, a worker takes 15-50 us to wake on the
//! 2-core VM the benchmarks run on (2026-12-02, measured with a join of two 40 us spins),
//! longer than many of a batch-1 pass's layers: vgg-small at batch 1 ran no faster on two
//! threads than on one. onnxruntime's pool spins between its jobs, and its calling thread is
//! one of its workers. [`init`] makes the calling thread a worker (a pass it starts runs
//! there, not sent to a sleeping thread and waited for), and [`pass`] keeps the others
//! spinning on rayon's queues ([`rayon::yield_now`]) while a pass runs and for [`LINGER`]
//! after it, so that the next pass in a loop (a benchmark, a training epoch, a latency
//! table) finds them awake.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How long the workers stay awake after a pass: a loop's next pass comes sooner (a
/// training step's next batch, a benchmark's next call: microseconds), while a program
/// that does other work between passes (a test suite, a Python loop) wastes at most this
/// much of a core a pass.
pub const LINGER: Duration = Duration::from_millis(1);

/// Sizes rayon's global pool (`None`: `RAYON_NUM_THREADS`, else one thread a core) with
/// the calling thread its first worker: a pass this thread starts runs on it directly. Call
/// it from the thread that runs the engine, before anything else uses rayon: other threads'
/// parallel work runs on the other workers (with one thread, only when this one calls into
/// rayon). Errors where the pool is already built (rayon's message).
pub fn init(threads: Option<usize>) -> Result<(), String> {
    let from_env = || {
        let n = std::env::var("RAYON_NUM_THREADS").ok()?.parse().ok()?;
        (n > 0).then_some(n)
    };
    let cores = || std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let n = threads.or_else(from_env).unwrap_or_else(cores);
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .use_current_thread()
        .build_global()
        .map_err(|e| e.to_string())
}

/// Nanoseconds since [`epoch`] until which spinning workers stay awake.
static AWAKE_UNTIL: AtomicU64 = AtomicU64::new(0);

/// Spinners spawned and not yet returned.
static SPINNERS: AtomicUsize = AtomicUsize::new(0);

/// Passes running now: the workers spin through them however long they last.
static RUNNING: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// This thread runs a pass (a spinner here would hold it up) or a spinner already.
    static BUSY: Cell<bool> = const { Cell::new(false) };
}

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn now() -> u64 {
    epoch().elapsed().as_nanos() as u64
}

/// Runs `f` (a pass: inference, or a training step) with the pool's other workers kept
/// awake through it and [`LINGER`] after.
pub(crate) fn pass<R>(f: impl FnOnce() -> R) -> R {
    let threads = rayon::current_num_threads();
    if threads < 2 {
        return f();
    }
    let was = BUSY.with(|b| b.replace(true));
    /// Ends the pass for the spinners, however `f` returns (a panic too).
    struct Running;
    impl Drop for Running {
        fn drop(&mut self) {
            stay_awake();
            RUNNING.fetch_sub(1, Ordering::Relaxed);
        }
    }
    RUNNING.fetch_add(1, Ordering::Relaxed);
    let running = Running;
    stay_awake();
    // Spinners for the workers that have none: each takes one worker (a worker that
    // finds a second one, or is running a pass, returns it at once).
    while SPINNERS.load(Ordering::Relaxed) < threads - 1 {
        SPINNERS.fetch_add(1, Ordering::Relaxed);
        rayon::spawn(spin);
    }
    let result = f();
    drop(running);
    BUSY.with(|b| b.set(was));
    result
}

/// Workers spinning now (or with a spinner queued): none once [`LINGER`] has passed
/// since the last pass.
pub fn spinning() -> usize {
    SPINNERS.load(Ordering::Relaxed)
}

fn stay_awake() {
    AWAKE_UNTIL.fetch_max(now() + LINGER.as_nanos() as u64, Ordering::Relaxed);
}

/// A worker's spinning: runs whatever rayon has queued (a pass's other halves) while a
/// pass runs and until nothing has come for [`LINGER`] past the last one. (Only until
/// [`LINGER`] past a pass's start, as it was, the worker gave up 1 ms into resnet18's
/// 45 ms passes at the first gap between two layers, and slept and was woken some 14
/// times a pass: 28 context switches a pass against onnxruntime's 0.5.)
fn spin() {
    if !BUSY.with(|b| b.replace(true)) {
        let awake =
            || RUNNING.load(Ordering::Relaxed) > 0 || now() < AWAKE_UNTIL.load(Ordering::Relaxed);
        loop {
            match rayon::yield_now() {
                Some(rayon::Yield::Executed) => continue,
                Some(rayon::Yield::Idle) if awake() => std::hint::spin_loop(),
                _ => break,
            }
        }
        BUSY.with(|b| b.set(false));
    }
    SPINNERS.fetch_sub(1, Ordering::Relaxed);
}
