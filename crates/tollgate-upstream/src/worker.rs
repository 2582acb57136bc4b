//! Which worker thread the caller is. The gateway runs one single-threaded runtime per worker
//! thread; upstream connections belong to the worker whose runtime drives them.

use std::cell::Cell;

thread_local! {
    static CURRENT: Cell<usize> = const { Cell::new(0) };
}

/// Marks the calling thread as worker `index` (0-based). Threads never marked are worker 0.
pub fn set_current(index: usize) {
    CURRENT.set(index);
}

pub(crate) fn current() -> usize {
    CURRENT.get()
}
