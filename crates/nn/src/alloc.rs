//! A global allocator for programs that run the engine: every allocation of [`FROM`] bytes
//! or more starts on a 64-byte boundary (a cache line, an AVX-512 vector).
//!
//! glibc serves a large buffer from its own mapping, 16 bytes past the page's start, so
//! each of the engine's activations, filters and scratch buffers was 16 bytes off a
//! cache line: every 64-byte load of a filter vector and half the 32-byte stores of a
//! block of outputs touched two lines. onnxruntime aligns its buffers to 64 bytes. With
//! this allocator (one thread, alternating processes, 2026-12-03): resnet18 at batch 16
//! took 0.93 of the time (median of 5 rounds), vgg-small at batch 64 about 0.97 (fastest
//! run). The values computed do not change.
//!
//! The library cannot choose a program's allocator; its binaries do (the `joule` CLI, the
//! Python module, the benchmarks), with
//! `#[global_allocator] static ALLOC: CacheAligned = CacheAligned;`.

use std::alloc::{GlobalAlloc, Layout, System};

/// Allocations from this many bytes get [`ALIGN`]; smaller ones keep their own alignment
/// (their waste would not pay).
pub const FROM: usize = 4096;

/// The alignment of allocations of [`FROM`] bytes or more.
pub const ALIGN: usize = 64;

/// [`System`] with allocations of [`FROM`] bytes or more aligned to [`ALIGN`] bytes.
#[derive(Clone, Copy, Debug, Default)]
pub struct CacheAligned;

/// The layout `layout` is served with: the same for an allocation and its release, as it
/// depends on the size and alignment alone.
fn served(layout: Layout) -> Layout {
    if layout.size() >= FROM && layout.align() < ALIGN {
        // A size too close to isize::MAX for the wider alignment keeps the caller's.
        Layout::from_size_align(layout.size(), ALIGN).unwrap_or(layout)
    } else {
        layout
    }
}

// SAFETY: every block is allocated and released by `System` with the layout `served` gives
// for the caller's layout, so `System`'s contract holds; `realloc` moves the contents where
// the served alignment changes with the size.
unsafe impl GlobalAlloc for CacheAligned {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        System.alloc(served(layout))
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        System.alloc_zeroed(served(layout))
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, served(layout))
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let old = served(layout);
        let new = served(Layout::from_size_align_unchecked(new_size, layout.align()));
        if old.align() == new.align() {
            return System.realloc(ptr, old, new_size);
        }
        let moved = System.alloc(new);
        if !moved.is_null() {
            std::ptr::copy_nonoverlapping(ptr, moved, layout.size().min(new_size));
            System.dealloc(ptr, old);
        }
        moved
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Large blocks start on 64-byte boundaries, small ones keep their alignment, and
    /// growing or shrinking across [`FROM`] keeps the contents.
    #[test]
    fn large_blocks_are_aligned_and_keep_their_contents_when_resized() {
        let a = CacheAligned;
        unsafe {
            for size in [FROM, FROM + 4, 1 << 20, 3 << 20] {
                let layout = Layout::from_size_align(size, 4).unwrap();
                let blocks: Vec<*mut u8> = (0..4).map(|_| a.alloc(layout)).collect();
                for &p in &blocks {
                    assert!(!p.is_null());
                    assert_eq!(p as usize % ALIGN, 0, "{size} bytes at {p:?}");
                }
                let z = a.alloc_zeroed(layout);
                assert_eq!(z as usize % ALIGN, 0);
                assert!(std::slice::from_raw_parts(z, size).iter().all(|b| *b == 0));
                a.dealloc(z, layout);
                blocks.into_iter().for_each(|p| a.dealloc(p, layout));
            }
            // A small block keeps the alignment it asked for (no more is promised).
            let small = Layout::from_size_align(100, 8).unwrap();
            let p = a.alloc(small);
            assert_eq!(p as usize % 8, 0);
            a.dealloc(p, small);
            // Grown from small to large and back: the values come along.
            let layout = Layout::from_size_align(400, 4).unwrap();
            let mut p = a.alloc(layout);
            for i in 0..400 {
                *p.add(i) = i as u8;
            }
            p = a.realloc(p, layout, 1 << 16);
            assert_eq!(p as usize % ALIGN, 0);
            let grown = Layout::from_size_align(1 << 16, 4).unwrap();
            assert!((0..400).all(|i| *p.add(i) == i as u8));
            p = a.realloc(p, grown, 300);
            assert!((0..300).all(|i| *p.add(i) == i as u8));
            a.dealloc(p, Layout::from_size_align(300, 4).unwrap());
        }
    }
}
