//! Which thread of the runtime layout the caller is. The gateway runs one single-threaded
//! runtime per worker thread, plus a background runtime; connections (to providers, to Redis)
//! belong to the thread whose runtime drives them, so a request's I/O never changes threads.

use std::cell::Cell;

thread_local! {
    static CURRENT: Cell<usize> = const { Cell::new(0) };
}

/// Marks the calling thread as number `index` (0-based: the workers, then the background
/// runtime's). Threads never marked are number 0.
pub fn set_current(index: usize) {
    CURRENT.set(index);
}

/// The calling thread's number.
pub fn current() -> usize {
    CURRENT.get()
}
