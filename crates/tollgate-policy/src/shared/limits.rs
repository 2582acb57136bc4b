//! Rate-limit windows and requests in flight in Redis: the same windows as one replica keeps
//! in memory (`crate::limits`), counted by every replica at once.

use std::sync::{Arc, LazyLock};

use redis::Script;

use super::{SharedCounters, wall_ms};
use crate::limits::{Limits, Scope, WINDOW_MS};

static ADMIT: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("limits_admit_v1.lua")));
static FINISH: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("limits_finish_v1.lua")));

/// One entity's window as Redis holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WindowState {
    pub opened_ms: i64,
    pub requests: u64,
    pub tokens: u64,
    pub in_flight: u64,
}

/// Redis's answer to a request asking in.
pub(crate) enum Admitted {
    /// Counted: every entity's window after counting it, in the order asked.
    Yes {
        windows: Vec<WindowState>,
        admission: SharedAdmission,
    },
    /// The entity at `index` has no room: its window as it stands.
    No { index: usize, window: WindowState },
}

impl SharedCounters {
    /// Counts a request under every `(scope, limits)` (none unlimited, none twice), or under
    /// none; `None` when Redis cannot say (the caller counts on its own).
    pub(crate) async fn admit(
        self: &Arc<Self>,
        limited: &[(&Scope<'_>, Limits)],
        request_id: &str,
    ) -> Option<Admitted> {
        let now = wall_ms();
        let mut invocation = ADMIT.prepare_invoke();
        let mut windows = Vec::with_capacity(limited.len());
        let mut in_flight = Vec::new();
        for (scope, _) in limited {
            let (kind, id) = (scope.kind.slug(), scope.id.as_ref());
            let window = self.key("limit.v1", kind, id);
            let flight = self.key("in-flight.v1", kind, id);
            invocation.key(&window).key(&flight);
            windows.push(window);
            in_flight.push(flight);
        }
        invocation
            .arg(now)
            .arg(self.lapses_at(now))
            .arg(request_id)
            .arg(WINDOW_MS);
        for (_, limits) in limited {
            let limit = |value: Option<u64>| value.map_or(-1, |v| v.min(i64::MAX as u64) as i64);
            invocation
                .arg(limit(limits.rpm))
                .arg(limit(limits.tpm))
                .arg(limit(limits.parallel));
        }
        let reply: Vec<i64> = self.run(&invocation).await?;
        let count = |value: i64| value.max(0) as u64;
        match reply.split_first() {
            Some((1, counted)) if counted.len() == 3 * limited.len() => {
                let states = counted
                    .chunks_exact(3)
                    .map(|state| WindowState {
                        opened_ms: state[0],
                        requests: count(state[1]),
                        tokens: count(state[2]),
                        in_flight: 0,
                    })
                    .collect();
                let in_flight = limited
                    .iter()
                    .zip(in_flight)
                    .filter(|((_, limits), _)| limits.parallel.is_some())
                    .map(|(_, key)| key)
                    .collect();
                // Tokens matter only where a tpm limit reads them.
                let windows = limited
                    .iter()
                    .zip(windows)
                    .filter(|((_, limits), _)| limits.tpm.is_some())
                    .map(|(_, key)| key)
                    .collect();
                Some(Admitted::Yes {
                    windows: states,
                    admission: SharedAdmission {
                        counters: self.clone(),
                        windows,
                        in_flight,
                        request_id: request_id.to_owned(),
                    },
                })
            }
            Some((0, [index, opened, requests, tokens, in_flight]))
                if (1..=limited.len() as i64).contains(index) =>
            {
                Some(Admitted::No {
                    index: *index as usize - 1,
                    window: WindowState {
                        opened_ms: *opened,
                        requests: count(*requests),
                        tokens: count(*tokens),
                        in_flight: count(*in_flight),
                    },
                })
            }
            _ => {
                self.failed(&format!("the admission script answered {reply:?}"));
                None
            }
        }
    }
}

/// A request's place in the shared windows, until it ends: then its tokens are counted and its
/// in-flight marks taken back, in one call.
#[derive(Debug)]
pub(crate) struct SharedAdmission {
    counters: Arc<SharedCounters>,
    /// The windows with a tpm limit.
    windows: Vec<String>,
    /// The sets it is marked in (entities with `max_parallel_requests`).
    in_flight: Vec<String>,
    request_id: String,
}

impl SharedAdmission {
    /// Ends the request, with the tokens it used when they are known.
    pub(crate) fn finish(mut self, tokens: Option<u64>) {
        self.end(tokens);
    }

    fn end(&mut self, tokens: Option<u64>) {
        let windows = match tokens {
            Some(tokens) if tokens > 0 => std::mem::take(&mut self.windows),
            _ => Vec::new(),
        };
        let in_flight = std::mem::take(&mut self.in_flight);
        if windows.is_empty() && in_flight.is_empty() {
            return;
        }
        let counters = self.counters.clone();
        let request_id = std::mem::take(&mut self.request_id);
        self.counters.in_background(async move {
            let mut invocation = FINISH.prepare_invoke();
            for key in windows.iter().chain(&in_flight) {
                invocation.key(key);
            }
            invocation
                .arg(wall_ms())
                .arg(WINDOW_MS)
                .arg(windows.len())
                .arg(tokens.unwrap_or(0))
                .arg(&request_id);
            // Should this fail, the marks lapse with their lease.
            let _: Option<i64> = counters.run(&invocation).await;
        });
    }
}

impl Drop for SharedAdmission {
    fn drop(&mut self) {
        self.end(None);
    }
}
