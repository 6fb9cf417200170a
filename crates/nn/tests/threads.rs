//! The pool as `joule_nn::threads::init` builds it (the calling thread its first worker,
//! spinning workers through a pass): same bits as a pool of one thread, passes sent from
//! another thread still run, the workers spin through a long pass, and the spinning stops
//! after a pass. Its own process: the global pool is built once.

use joule_model::{zoo, Shape};
use joule_nn::{threads, FeatureMap, Network};
use std::time::{Duration, Instant};

#[test]
fn the_calling_thread_runs_passes_and_the_workers_stop_spinning() {
    threads::init(Some(2)).unwrap();
    assert_eq!(rayon::current_thread_index(), Some(0));
    assert_eq!(rayon::current_num_threads(), 2);
    // Built again: rayon's error, not a second pool.
    assert!(threads::init(Some(2)).is_err());

    let network = Network::new(zoo::build("vgg-small").unwrap(), 7).unwrap();
    let input = |n: usize| {
        let values = (0..n * 784)
            .map(|i| ((i * 37) % 101) as f32 / 101.0)
            .collect();
        FeatureMap::new(Shape::new(n, 1, 28, 28), values).unwrap()
    };
    let alone = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    for n in [1, 8] {
        let x = input(n);
        let reference = alone.install(|| network.forward(&x).unwrap()).data;
        // Passes back to back (the workers spinning between them), and passes from a
        // second thread (sent to the pool) at the same time.
        std::thread::scope(|s| {
            let other = s.spawn(|| {
                (0..20)
                    .map(|_| network.forward(&x).unwrap().data)
                    .collect::<Vec<_>>()
            });
            let mut spun = 0;
            for _ in 0..20 {
                assert_eq!(network.forward(&x).unwrap().data, reference, "batch {n}");
                spun += usize::from(threads::spinning() > 0);
            }
            assert!(spun > 0, "no worker spun after a pass");
            for y in other.join().unwrap() {
                assert_eq!(y, reference, "batch {n}, from another thread");
            }
        });
    }
    // A pass much longer than LINGER: the worker spins through all of it (it gave up at
    // the first gap between layers past LINGER, and slept through the rest).
    while threads::spinning() > 0 {
        std::thread::sleep(Duration::from_millis(1));
    }
    let x = input(256);
    let done = std::sync::atomic::AtomicBool::new(false);
    let (started, gave_up) = std::thread::scope(|s| {
        let watch = s.spawn(|| {
            let (mut started, mut gave_up) = (false, false);
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let spinning = threads::spinning() > 0;
                gave_up |= started && !spinning;
                started |= spinning;
                std::thread::sleep(Duration::from_micros(50));
            }
            (started, gave_up)
        });
        let start = Instant::now();
        network.forward(&x).unwrap();
        let took = start.elapsed();
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(
            took > 4 * threads::LINGER,
            "a pass of {took:?} is too short to tell"
        );
        watch.join().unwrap()
    });
    assert!(started, "no worker spun in the pass");
    assert!(
        !gave_up,
        "the worker stopped spinning in the middle of a pass"
    );
    // Spinning ends once the last pass is LINGER old.
    let start = Instant::now();
    while threads::spinning() > 0 {
        assert!(
            start.elapsed() < threads::LINGER + Duration::from_secs(2),
            "{} workers still spinning",
            threads::spinning()
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}
