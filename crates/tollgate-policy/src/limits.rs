//! Rate limits of keys, users, teams, team members and end users: requests and tokens per
//! minute (`rpm_limit`, `tpm_limit`) and requests in flight (`max_parallel_requests`).
//!
//! Each limited entity has a window that opens with its first request and lasts a minute;
//! requests are counted when admitted, tokens when the response reports them (so `tpm_limit`
//! refuses requests once a minute's tokens have reached it). A request is admitted against
//! every limit that applies to it at once: the windows involved are locked together (in one
//! global order, so never in a deadlock), all checked, then all counted — concurrent requests
//! never overshoot a limit, and a request refused by one limit uses none of the others.
//! Locks are held for a few comparisons, never across an await.
//!
//! With a shared Redis (`crate::shared`), the windows are Redis's and every replica counts in
//! them; these in-memory ones stand in while Redis cannot answer.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use http::StatusCode;
use tollgate_core::error::{ErrorKind, GatewayError, Origin};

use crate::shared::SharedCounters;
use crate::shared::limits::{Admitted, SharedAdmission, WindowState};

pub(crate) const WINDOW_MS: u64 = 60_000;

/// A request's limits from one entity; `None`: unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    pub rpm: Option<u64>,
    pub tpm: Option<u64>,
    pub parallel: Option<u64>,
}

impl Limits {
    /// From stored fields (never negative: the management API refuses that).
    pub fn of(rpm: Option<i64>, tpm: Option<i64>, parallel: Option<i64>) -> Self {
        let limit = |value: Option<i64>| value.map(|v| v.max(0) as u64);
        Limits {
            rpm: limit(rpm),
            tpm: limit(tpm),
            parallel: limit(parallel),
        }
    }

    pub fn is_unlimited(&self) -> bool {
        *self == Limits::default()
    }
}

/// What a limit belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScopeKind {
    Key,
    User,
    Team,
    TeamMember,
    EndUser,
}

impl ScopeKind {
    const COUNT: usize = 5;

    fn as_str(self) -> &'static str {
        match self {
            ScopeKind::Key => "key",
            ScopeKind::User => "user",
            ScopeKind::Team => "team",
            ScopeKind::TeamMember => "team member",
            ScopeKind::EndUser => "end user",
        }
    }

    /// Its name in shared counters' keys.
    pub(crate) fn slug(self) -> &'static str {
        match self {
            ScopeKind::Key => "key",
            ScopeKind::User => "user",
            ScopeKind::Team => "team",
            ScopeKind::TeamMember => "team_member",
            ScopeKind::EndUser => "end_user",
        }
    }
}

/// One limited entity: its kind and id (a key's is its token).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scope<'a> {
    pub kind: ScopeKind,
    /// Borrowed from the records the request was checked against, where it can be.
    pub id: Cow<'a, str>,
    /// How messages name it (a key's masked form rather than its token).
    pub label: Cow<'a, str>,
}

impl fmt::Display for Scope<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} `{}`", self.kind.as_str(), self.label)
    }
}

type SharedWindow = Arc<Mutex<Window>>;

#[derive(Debug, Default)]
struct Window {
    /// When the current minute opened (limiter clock, ms); `None` before the first request.
    opened_ms: Option<u64>,
    requests: u64,
    tokens: u64,
    in_flight: u64,
}

impl Window {
    /// A window as Redis holds it, on the wall clock.
    fn shared(state: WindowState) -> Window {
        Window {
            opened_ms: Some(state.opened_ms.max(0) as u64),
            requests: state.requests,
            tokens: state.tokens,
            in_flight: state.in_flight,
        }
    }

    /// Where `limits` stand in this window (the request counted), tightened into `quota`.
    fn tighten(&self, limits: &Limits, now_ms: u64, quota: &mut Quota) {
        let resets_in = self.resets_in(now_ms);
        if let Some(rpm) = limits.rpm {
            Quota::tighten(
                &mut quota.requests,
                Standing {
                    limit: rpm,
                    remaining: rpm.saturating_sub(self.requests),
                    resets_in,
                },
            );
        }
        if let Some(tpm) = limits.tpm {
            Quota::tighten(
                &mut quota.tokens,
                Standing {
                    limit: tpm,
                    remaining: tpm.saturating_sub(self.tokens),
                    resets_in,
                },
            );
        }
    }

    /// Opens a new minute if the last one has ended.
    fn roll(&mut self, now_ms: u64) {
        if self
            .opened_ms
            .is_none_or(|opened| now_ms >= opened + WINDOW_MS)
        {
            self.opened_ms = Some(now_ms);
            self.requests = 0;
            self.tokens = 0;
        }
    }

    fn resets_in(&self, now_ms: u64) -> Duration {
        let opened = self.opened_ms.unwrap_or(now_ms);
        Duration::from_millis((opened + WINDOW_MS).saturating_sub(now_ms))
    }
}

/// One limit's standing, for `x-ratelimit-*` headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    pub limit: u64,
    pub remaining: u64,
    pub resets_in: Duration,
}

/// The tightest request and token limits a request was admitted (or refused) under.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Quota {
    pub requests: Option<Standing>,
    pub tokens: Option<Standing>,
}

impl Quota {
    fn tighten(slot: &mut Option<Standing>, candidate: Standing) {
        if slot.is_none_or(|current| candidate.remaining < current.remaining) {
            *slot = Some(candidate);
        }
    }
}

/// A request over a limit: the 429 and where the limits stood.
#[derive(Debug)]
pub struct Refusal {
    pub error: GatewayError,
    pub quota: Quota,
}

/// Every limited entity's window.
#[derive(Debug)]
pub struct RateLimiter {
    /// One map per kind of scope, so a lookup needs only the id, borrowed.
    windows: [RwLock<HashMap<String, SharedWindow>>; ScopeKind::COUNT],
    epoch: std::time::Instant,
    /// The windows every replica counts in, when there is a shared Redis.
    shared: Option<Arc<SharedCounters>>,
}

impl Default for RateLimiter {
    fn default() -> Self {
        RateLimiter {
            windows: Default::default(),
            epoch: std::time::Instant::now(),
            shared: None,
        }
    }
}

impl RateLimiter {
    /// Counts in `shared`'s windows, with every other replica using it.
    pub fn shared(self, shared: Arc<SharedCounters>) -> Self {
        RateLimiter {
            shared: Some(shared),
            ..self
        }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn window(&self, scope: &Scope<'_>) -> Arc<Mutex<Window>> {
        let windows = &self.windows[scope.kind as usize];
        if let Some(window) = windows
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(scope.id.as_ref())
        {
            return window.clone();
        }
        windows
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .entry(scope.id.clone().into_owned())
            .or_default()
            .clone()
    }

    /// Admits a request under every `(scope, limits)` that applies to it (unlimited ones are
    /// skipped), or refuses it naming the first limit it is over. `request_id` marks it in
    /// the shared in-flight counts.
    pub async fn admit(
        &self,
        checks: &[(Scope<'_>, Limits)],
        request_id: &str,
    ) -> Result<Admission, Box<Refusal>> {
        let mut limited: Vec<(&Scope<'_>, Limits)> = Vec::with_capacity(checks.len());
        for (scope, limits) in checks {
            if !limits.is_unlimited() && !limited.iter().any(|(seen, _)| *seen == scope) {
                limited.push((scope, *limits));
            }
        }
        if limited.is_empty() {
            return Ok(Admission::default());
        }
        if let Some(shared) = &self.shared
            && let Some(admitted) = shared.admit(&limited, request_id).await
        {
            return Self::admitted_by_redis(&limited, admitted);
        }
        self.admit_here(&limited)
    }

    fn admitted_by_redis(
        limited: &[(&Scope<'_>, Limits)],
        admitted: Admitted,
    ) -> Result<Admission, Box<Refusal>> {
        let now = crate::shared::wall_ms().max(0) as u64;
        let mut quota = Quota::default();
        match admitted {
            Admitted::Yes { windows, admission } => {
                for ((_, limits), state) in limited.iter().zip(windows) {
                    Window::shared(state).tighten(limits, now, &mut quota);
                }
                Ok(Admission {
                    windows: Vec::new(),
                    epoch: None,
                    shared: Some(admission),
                    quota: Some(quota),
                })
            }
            Admitted::No { index, window } => {
                let (scope, limits) = &limited[index];
                let window = Window::shared(window);
                // Redis refuses exactly where `over_limit` does; should they ever disagree,
                // the request is still refused, as Redis decided.
                let refusal =
                    over_limit(scope, limits, &window, now, &mut quota).unwrap_or_else(|| {
                        let limit = limits.rpm.or(limits.tpm).or(limits.parallel).unwrap_or(0);
                        refusal(scope, "its limit", limit, Duration::from_secs(1), quota)
                    });
                Err(Box::new(refusal))
            }
        }
    }

    /// Admits in this replica's own windows.
    fn admit_here(&self, limited: &[(&Scope<'_>, Limits)]) -> Result<Admission, Box<Refusal>> {
        let limited: Vec<(&Scope<'_>, Limits, Arc<Mutex<Window>>)> = limited
            .iter()
            .map(|(scope, limits)| (*scope, *limits, self.window(scope)))
            .collect();
        let now = self.now_ms();
        // One global lock order (by address) for whichever windows a request needs.
        let mut order: Vec<usize> = (0..limited.len()).collect();
        order.sort_by_key(|&i| Arc::as_ptr(&limited[i].2) as usize);
        order.dedup_by_key(|i| Arc::as_ptr(&limited[*i].2) as usize);
        let mut guards: Vec<Option<MutexGuard<'_, Window>>> =
            (0..limited.len()).map(|_| None).collect();
        for &i in &order {
            let mut guard = limited[i]
                .2
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            guard.roll(now);
            guards[i] = Some(guard);
        }

        let mut quota = Quota::default();
        for (i, (scope, limits, _)) in limited.iter().enumerate() {
            let Some(window) = guards[i].as_deref() else {
                continue;
            };
            if let Some(refusal) = over_limit(scope, limits, window, now, &mut quota) {
                return Err(Box::new(refusal));
            }
        }
        for (i, (_, limits, _)) in limited.iter().enumerate() {
            let Some(window) = guards[i].as_deref_mut() else {
                continue;
            };
            window.requests += 1;
            window.in_flight += 1;
            window.tighten(limits, now, &mut quota);
        }
        drop(guards);
        let mut windows: Vec<Arc<Mutex<Window>>> = Vec::with_capacity(order.len());
        for &i in &order {
            windows.push(limited[i].2.clone());
        }
        Ok(Admission {
            windows,
            epoch: Some(self.epoch),
            shared: None,
            quota: Some(quota),
        })
    }
}

/// The refusal for a request `window` has no room for, if any.
fn over_limit(
    scope: &Scope<'_>,
    limits: &Limits,
    window: &Window,
    now: u64,
    quota: &mut Quota,
) -> Option<Refusal> {
    let resets_in = window.resets_in(now);
    let (what, limit, retry_after) =
        if let Some(rpm) = limits.rpm.filter(|&rpm| window.requests >= rpm) {
            quota.requests = Some(Standing {
                limit: rpm,
                remaining: 0,
                resets_in,
            });
            ("rpm_limit", rpm, resets_in)
        } else if let Some(tpm) = limits.tpm.filter(|&tpm| window.tokens >= tpm) {
            quota.tokens = Some(Standing {
                limit: tpm,
                remaining: 0,
                resets_in,
            });
            ("tpm_limit", tpm, resets_in)
        } else if let Some(parallel) = limits.parallel.filter(|&max| window.in_flight >= max) {
            ("max_parallel_requests", parallel, Duration::from_secs(1))
        } else {
            return None;
        };
    Some(refusal(scope, what, limit, retry_after, *quota))
}

fn refusal(
    scope: &Scope<'_>,
    what: &str,
    limit: u64,
    retry_after: Duration,
    quota: Quota,
) -> Refusal {
    let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
    let error = GatewayError::new(
        StatusCode::TOO_MANY_REQUESTS,
        Origin::Client,
        ErrorKind::RateLimit,
        format!(
            "Rate limit exceeded for {scope}: {what} is {limit}. Try again in {} s.",
            seconds.max(1)
        ),
    )
    .with_code("rate_limit_exceeded")
    .with_retry_after(retry_after.max(Duration::from_millis(1)));
    Refusal { error, quota }
}

/// A request's place under its limits: counted in flight until dropped; its tokens are
/// added when known.
#[derive(Debug, Default)]
pub struct Admission {
    windows: Vec<Arc<Mutex<Window>>>,
    epoch: Option<std::time::Instant>,
    /// Its place in the shared windows instead, when Redis admitted it.
    shared: Option<SharedAdmission>,
    /// Where the tightest limits stood once the request was counted (`None`: no limits).
    pub quota: Option<Quota>,
}

impl Admission {
    /// Ends the request's place: the tokens it used (when known) count against its
    /// `tpm_limit`s, and it is no longer in flight.
    pub fn finish(mut self, tokens: Option<u64>) {
        if let Some(shared) = self.shared.take() {
            shared.finish(tokens);
        }
        if let (Some(tokens), Some(epoch)) = (tokens, self.epoch) {
            let now = epoch.elapsed().as_millis() as u64;
            for window in &self.windows {
                let mut window = window
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                window.roll(now);
                window.tokens = window.tokens.saturating_add(tokens);
            }
        }
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        for window in &self.windows {
            let mut window = window
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            window.in_flight = window.in_flight.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(kind: ScopeKind, id: &str) -> Scope<'_> {
        Scope {
            kind,
            id: id.into(),
            label: id.into(),
        }
    }

    /// Admits in this replica's windows (no Redis: `admit` never waits).
    fn admit(
        limiter: &RateLimiter,
        checks: &[(Scope<'_>, Limits)],
    ) -> Result<Admission, Box<Refusal>> {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(limiter.admit(checks, "request-id"))
    }

    fn rpm(n: u64) -> Limits {
        Limits {
            rpm: Some(n),
            ..Limits::default()
        }
    }

    #[test]
    fn rpm_admits_exactly_the_limit_under_concurrency() {
        let limiter = Arc::new(RateLimiter::default());
        let checks = Arc::new(vec![
            (scope(ScopeKind::Key, "k"), rpm(60)),
            (scope(ScopeKind::Team, "t"), rpm(1000)),
        ]);
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (limiter, checks) = (limiter.clone(), checks.clone());
                std::thread::spawn(move || {
                    (0..25).filter(|_| admit(&limiter, &checks).is_ok()).count()
                })
            })
            .collect();
        let admitted: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(admitted, 60);
        // Refused requests took nothing from the team's limit.
        let team = limiter.window(&scope(ScopeKind::Team, "t"));
        assert_eq!(team.lock().unwrap().requests, 60);
    }

    #[test]
    fn the_refusal_names_the_limit_and_says_when_to_retry() {
        let limiter = RateLimiter::default();
        let checks = [(scope(ScopeKind::EndUser, "alice"), rpm(1))];
        let first = admit(&limiter, &checks).unwrap();
        let standing = first.quota.unwrap().requests.unwrap();
        assert_eq!((standing.limit, standing.remaining), (1, 0));
        let refused = admit(&limiter, &checks).unwrap_err();
        assert_eq!(refused.error.status, StatusCode::TOO_MANY_REQUESTS);
        assert!(
            refused
                .error
                .message
                .contains("end user `alice`: rpm_limit is 1"),
            "{}",
            refused.error.message
        );
        let after = refused.error.retry_after.unwrap();
        assert!(after > Duration::from_secs(58) && after <= Duration::from_secs(60));
    }

    #[test]
    fn parallel_requests_are_released_when_the_admission_drops() {
        let limiter = RateLimiter::default();
        let checks = [(
            scope(ScopeKind::Key, "k"),
            Limits {
                parallel: Some(2),
                ..Limits::default()
            },
        )];
        let a = admit(&limiter, &checks).unwrap();
        let _b = admit(&limiter, &checks).unwrap();
        assert!(admit(&limiter, &checks).is_err());
        drop(a);
        assert!(admit(&limiter, &checks).is_ok());
    }

    #[test]
    fn tokens_count_against_tpm_once_reported() {
        let limiter = RateLimiter::default();
        let checks = [(
            scope(ScopeKind::User, "u"),
            Limits {
                tpm: Some(100),
                ..Limits::default()
            },
        )];
        let admission = admit(&limiter, &checks).unwrap();
        admission.finish(Some(60));
        let second = admit(&limiter, &checks).unwrap();
        assert_eq!(second.quota.unwrap().tokens.unwrap().remaining, 40);
        second.finish(Some(40));
        let refused = admit(&limiter, &checks).unwrap_err();
        assert!(refused.error.message.contains("tpm_limit is 100"));
        assert_eq!(refused.quota.tokens.unwrap().remaining, 0);
    }

    #[test]
    fn unlimited_requests_hold_nothing() {
        let limiter = RateLimiter::default();
        let admission =
            admit(&limiter, &[(scope(ScopeKind::Key, "k"), Limits::default())]).unwrap();
        assert!(admission.quota.is_none());
        assert!(
            limiter
                .windows
                .iter()
                .all(|kind| kind.read().unwrap().is_empty())
        );
    }
}
