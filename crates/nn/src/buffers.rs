//! Recycled `f32` buffers for training steps. A step allocates every node's output and
//! gradient afresh (tens of MB for vgg-small at batch 64); the allocator serves buffers that
//! large as fresh pages, which the kernel faults in and zeroes, and unmaps them when they
//! are freed, every step: a fifth of vgg-small's training time on the AVX2 machine (glibc's
//! thresholds raised by environment gave 20%). Buffers a step frees serve the next one from
//! this thread's pool instead.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};

/// Buffers smaller than this (128 KiB, glibc's initial mapping threshold) come cheaply from
/// the allocator's heap and are not kept.
const SMALL: usize = 32 * 1024;
/// At most this many buffers and bytes are kept per thread.
const KEPT: usize = 256;
const KEPT_BYTES: usize = 4 << 30;

thread_local! {
    static FREE: RefCell<Vec<Vec<f32>>> = const { RefCell::new(Vec::new()) };
}

/// Whether [`overwritten`] fills its buffers with NaN ([`poison_reused_buffers`]).
static POISON: AtomicBool = AtomicBool::new(false);

/// From now on, in the whole process, every buffer given out for a node's output (which the
/// node must write whole) comes filled with NaN, so that a kernel leaving any element
/// unwritten shows as NaN in a test instead of passing on the stale values of an earlier
/// step. For tests; it costs a fill per buffer.
#[doc(hidden)]
pub fn poison_reused_buffers() {
    POISON.store(true, Ordering::Relaxed);
}

/// `len` values for an output its node writes whole: the smallest kept buffer that holds
/// them, with whatever it held (zeroing every forward output was most of the 9% of
/// vgg-small's training time spent zeroing), else a new one.
pub(crate) fn overwritten(len: usize) -> Vec<f32> {
    let fill = if POISON.load(Ordering::Relaxed) {
        f32::NAN
    } else {
        0.0
    };
    let Some(mut v) = take(len) else {
        return vec![fill; len];
    };
    if fill.is_nan() {
        v.clear();
    }
    v.truncate(len);
    v.resize(len, fill);
    v
}

/// `len` zeros: the smallest kept buffer that holds them, else a new one.
pub(crate) fn zeroed(len: usize) -> Vec<f32> {
    match take(len) {
        Some(mut v) => {
            v.clear();
            v.resize(len, 0.0);
            v
        }
        None => vec![0.0; len],
    }
}

/// The smallest kept buffer of at least `len` values (none for small ones).
fn take(len: usize) -> Option<Vec<f32>> {
    if len < SMALL {
        return None;
    }
    FREE.with_borrow_mut(|free| {
        let best = free
            .iter()
            .enumerate()
            .filter(|(_, v)| v.capacity() >= len)
            .min_by_key(|(_, v)| v.capacity())
            .map(|(i, _)| i)?;
        Some(free.swap_remove(best))
    })
}

/// Keeps `v` for a later [`zeroed`] on this thread (while the pool has room).
pub(crate) fn recycle(v: Vec<f32>) {
    if v.capacity() < SMALL {
        return;
    }
    FREE.with_borrow_mut(|free| {
        let bytes: usize = free.iter().map(|v| v.capacity() * 4).sum();
        if free.len() < KEPT && bytes + v.capacity() * 4 <= KEPT_BYTES {
            free.push(v);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A recycled buffer comes back zeroed, at the asked length, from the same allocation;
    /// the smallest that fits is taken; small ones are not kept.
    #[test]
    fn recycled_buffers_come_back_zeroed_best_fit_first() {
        let mut big = zeroed(3 * SMALL);
        big.iter_mut().for_each(|v| *v = 7.0);
        let (big_at, big_cap) = (big.as_ptr(), big.capacity());
        let mid = vec![1.0f32; 2 * SMALL];
        let mid_at = mid.as_ptr();
        recycle(big);
        recycle(mid);
        let again = zeroed(SMALL + 1);
        assert_eq!(again.as_ptr(), mid_at, "the smaller fitting buffer first");
        assert_eq!(again.len(), SMALL + 1);
        assert!(again.iter().all(|&v| v == 0.0));
        let whole = zeroed(3 * SMALL);
        assert_eq!((whole.as_ptr(), whole.capacity()), (big_at, big_cap));
        assert!(whole.iter().all(|&v| v == 0.0));
        // Nothing left that fits: a new one.
        let fresh = zeroed(3 * SMALL);
        assert_ne!(fresh.as_ptr(), whole.as_ptr());
        recycle(vec![1.0; 10]);
        FREE.with_borrow(|free| assert!(free.iter().all(|v| v.capacity() >= SMALL)));
    }

    /// A buffer for an output comes back at the asked length from the same allocation,
    /// shorter or longer than it was, with no pass to zero what it held.
    #[test]
    fn recycled_output_buffers_keep_their_allocation_at_any_length() {
        let old = vec![7.0f32; 3 * SMALL];
        let (at, capacity) = (old.as_ptr(), old.capacity());
        recycle(old);
        let shorter = overwritten(2 * SMALL);
        assert_eq!((shorter.as_ptr(), shorter.len()), (at, 2 * SMALL));
        recycle(shorter);
        let longer = overwritten(capacity);
        assert_eq!((longer.as_ptr(), longer.len()), (at, capacity));
        // Past what it held: the tail is filled (zeros, or NaN when poisoned).
        assert!(longer[2 * SMALL..].iter().all(|v| *v == 0.0 || v.is_nan()));
        // Nothing kept: a new buffer.
        assert_eq!(overwritten(SMALL).len(), SMALL);
    }
}
