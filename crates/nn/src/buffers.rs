//! Recycled `f32` buffers for training steps. A step allocates every node's output and
//! gradient afresh (tens of MB for vgg-small at batch 64); the allocator serves buffers that
//! large as fresh pages, which the kernel faults in and zeroes, and unmaps them when they
//! are freed, every step: a fifth of vgg-small's training time on the AVX2 machine (glibc's
//! thresholds raised by environment gave 20%). Buffers a step frees serve the next one from
//! this thread's pool instead.

use std::cell::RefCell;

/// Buffers smaller than this (128 KiB, glibc's initial mapping threshold) come cheaply from
/// the allocator's heap and are not kept.
const SMALL: usize = 32 * 1024;
/// At most this many buffers and bytes are kept per thread.
const KEPT: usize = 256;
const KEPT_BYTES: usize = 4 << 30;

thread_local! {
    static FREE: RefCell<Vec<Vec<f32>>> = const { RefCell::new(Vec::new()) };
}

/// `len` zeros: the smallest kept buffer that holds them, else a new one.
pub(crate) fn zeroed(len: usize) -> Vec<f32> {
    if len < SMALL {
        return vec![0.0; len];
    }
    let kept = FREE.with_borrow_mut(|free| {
        let best = free
            .iter()
            .enumerate()
            .filter(|(_, v)| v.capacity() >= len)
            .min_by_key(|(_, v)| v.capacity())
            .map(|(i, _)| i)?;
        Some(free.swap_remove(best))
    });
    match kept {
        Some(mut v) => {
            v.clear();
            v.resize(len, 0.0);
            v
        }
        None => vec![0.0; len],
    }
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
}
