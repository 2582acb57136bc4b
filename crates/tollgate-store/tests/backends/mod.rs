//! The backends every store test runs against (see `tollgate_testkit::databases`), and the
//! actor their writes are logged under.

use tollgate_store::{Action, Actor, Change};
pub use tollgate_testkit::databases::all;

static TESTER: std::sync::LazyLock<Actor> = std::sync::LazyLock::new(|| Actor {
    changed_by: "tester".to_owned(),
    changed_by_api_key: None,
});

/// A change made by the tests.
#[allow(dead_code)] // not every test file writes
pub fn by_tester(action: Action) -> Change<'static> {
    TESTER.change(action)
}
