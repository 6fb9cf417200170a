//! The pool as `joule_nn::threads::init` builds it (the calling thread its first worker,
//! spinning workers through a pass): same bits as a pool of one thread, passes sent from
//! another thread still run, and the spinning stops after a pass. Its own process: the
//! global pool is built once.

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
