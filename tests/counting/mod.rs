//! The counting global allocator of the tests that count allocations
//! (`draw_allocations`, `request_allocations`, `metrics_upkeep`): the system allocator,
//! keeping the allocations of each thread and of the whole process, and the bytes live
//! in the process. A test binary installs it with
//! `#[global_allocator] static ALLOCATOR: counting::Counting = counting::Counting;`.
#![allow(dead_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicIsize, AtomicU64, Ordering};

pub struct Counting;

static PROCESS_ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);

thread_local! {
    // A const-initialised `Cell` needs no allocation and no destructor, so the
    // allocator may use it.
    static THREAD_ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

/// Allocations made so far on the calling thread (the test harness's own threads and
/// a server's cannot add to it).
pub fn thread_allocations() -> usize {
    THREAD_ALLOCATIONS.with(Cell::get)
}

/// Allocations made so far by every thread.
pub fn process_allocations() -> u64 {
    PROCESS_ALLOCATIONS.load(Ordering::Relaxed)
}

/// Bytes allocated and not yet freed, by every thread (memory allocated on one
/// thread and freed on another counts where it is freed).
pub fn live_bytes() -> isize {
    LIVE_BYTES.load(Ordering::Relaxed)
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        THREAD_ALLOCATIONS.with(|count| count.set(count.get() + 1));
        PROCESS_ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        LIVE_BYTES.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's contract is passed on unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
}
