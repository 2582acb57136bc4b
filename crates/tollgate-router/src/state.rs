//! What the router knows about a deployment right now: requests in flight, whether it is
//! cooling down, its failures and usage this minute, its recent latency. Plain atomics, so
//! reading and updating them never blocks a request; counts that race at a minute's edge are
//! off by a request, which routing tolerates.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tollgate_core::config::RoutingSettings;
use tollgate_core::error::{FailureClass, GatewayError};

/// Milliseconds on the router's own clock (since it started), so instants fit in an atomic.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    epoch: Instant,
}

impl Clock {
    pub fn new() -> Self {
        Clock {
            epoch: Instant::now(),
        }
    }

    /// Milliseconds since the epoch, starting at 1 so 0 can mean "never".
    pub fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64 + 1
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

pub(crate) const MINUTE_MS: u64 = 60_000;
/// Weight of a new latency sample in the moving average.
const LATENCY_SMOOTHING: f64 = 0.3;

/// A count that restarts every minute: the minute in the high half, the count in the low.
#[derive(Debug, Default)]
struct MinuteCounter(AtomicU64);

impl MinuteCounter {
    /// Adds `amount` to this minute's count and returns the new count.
    fn add(&self, now_ms: u64, amount: u64) -> u64 {
        let minute = now_ms / MINUTE_MS;
        let mut total = 0;
        let _ = self
            .0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |packed| {
                let count = if packed >> 32 == minute {
                    packed & u64::from(u32::MAX)
                } else {
                    0
                };
                total = (count + amount).min(u64::from(u32::MAX));
                Some((minute << 32) | total)
            });
        total
    }

    /// Adds one to this minute's count unless it has reached `limit`; whether it did.
    fn try_add_one(&self, now_ms: u64, limit: u64) -> bool {
        let minute = now_ms / MINUTE_MS;
        self.0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |packed| {
                let count = if packed >> 32 == minute {
                    packed & u64::from(u32::MAX)
                } else {
                    0
                };
                (count < limit).then_some((minute << 32) | (count + 1))
            })
            .is_ok()
    }

    fn get(&self, now_ms: u64) -> u64 {
        let packed = self.0.load(Ordering::Relaxed);
        if packed >> 32 == now_ms / MINUTE_MS {
            packed & u64::from(u32::MAX)
        } else {
            0
        }
    }
}

/// A deployment's live state.
#[derive(Debug, Default)]
pub struct DeploymentState {
    in_flight: AtomicU32,
    /// Until when (router clock, ms) the deployment is left out; 0 when it is not.
    cooling_until: AtomicU64,
    failures: MinuteCounter,
    requests: MinuteCounter,
    tokens: MinuteCounter,
    /// Moving average of latency in microseconds (`f64` bits); 0 before the first sample.
    latency: AtomicU64,
}

/// Whether a failure took the deployment out of rotation, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cooldown {
    None,
    For(Duration),
}

impl DeploymentState {
    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Relaxed)
    }

    pub(crate) fn start_request(&self, now_ms: u64) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.requests.add(now_ms, 1);
    }

    /// Starts a request unless the deployment has used its `rpm` requests or `tpm` tokens
    /// this minute; the request count is checked and taken in one step, so concurrent
    /// requests never overshoot it.
    pub(crate) fn try_start_request(
        &self,
        now_ms: u64,
        rpm: Option<u64>,
        tpm: Option<u64>,
    ) -> bool {
        if tpm.is_some_and(|tpm| self.tokens.get(now_ms) >= tpm) {
            return false;
        }
        let counted = match rpm {
            Some(rpm) => self.requests.try_add_one(now_ms, rpm),
            None => {
                self.requests.add(now_ms, 1);
                true
            }
        };
        if counted {
            self.in_flight.fetch_add(1, Ordering::Relaxed);
        }
        counted
    }

    pub(crate) fn end_request(&self) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    pub fn is_cooling(&self, now_ms: u64) -> bool {
        self.cooling_until.load(Ordering::Relaxed) > now_ms
    }

    /// How long until the cooldown ends (zero when not cooling).
    pub fn cooldown_left(&self, now_ms: u64) -> Duration {
        Duration::from_millis(
            self.cooling_until
                .load(Ordering::Relaxed)
                .saturating_sub(now_ms),
        )
    }

    pub fn requests_this_minute(&self, now_ms: u64) -> u64 {
        self.requests.get(now_ms)
    }

    pub fn tokens_this_minute(&self, now_ms: u64) -> u64 {
        self.tokens.get(now_ms)
    }

    /// Recent latency in seconds; `None` before the first sample.
    pub fn latency(&self) -> Option<f64> {
        let micros = f64::from_bits(self.latency.load(Ordering::Relaxed));
        (micros > 0.0).then_some(micros / 1e6)
    }

    /// A completed request: its latency (time to first token for streams) joins the average.
    pub fn record_latency(&self, latency: Duration) {
        let sample = (latency.as_secs_f64() * 1e6).max(1.0);
        let _ = self
            .latency
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                let current = f64::from_bits(bits);
                let next = if current > 0.0 {
                    current + LATENCY_SMOOTHING * (sample - current)
                } else {
                    sample
                };
                Some(next.to_bits())
            });
    }

    /// Tokens a request used, for usage-based routing.
    pub fn record_tokens(&self, now_ms: u64, tokens: u64) {
        if tokens > 0 {
            self.tokens.add(now_ms, tokens);
        }
    }

    /// Counts a failure and cools the deployment down when LiteLLM's rules say so: only
    /// failures a healthy deployment would not have (429, 401/403, 404, timeouts, 5xx) count;
    /// a group's only deployment is never cooled (there would be nothing left to serve); a 429
    /// cools at once; otherwise more than `allowed_fails` in a minute does. The cooldown lasts
    /// the provider's `retry-after` when it sent one, else `cooldown_time`.
    pub(crate) fn record_failure(
        &self,
        err: &GatewayError,
        settings: &RoutingSettings,
        cooldown_time: Duration,
        group_size: usize,
        now_ms: u64,
    ) -> Cooldown {
        let Some(class) = err.failure_class() else {
            return Cooldown::None;
        };
        if !counts_against_deployment(class) {
            return Cooldown::None;
        }
        let failures = self.failures.add(now_ms, 1);
        if group_size < 2 || cooldown_time.is_zero() {
            return Cooldown::None;
        }
        let cool = class == FailureClass::RateLimit
            || failures > u64::from(settings.allowed_fails_for(class));
        if !cool {
            return Cooldown::None;
        }
        let duration = err
            .retry_after
            .filter(|after| !after.is_zero())
            .unwrap_or(cooldown_time);
        let until = now_ms + duration.as_millis() as u64;
        self.cooling_until.fetch_max(until, Ordering::Relaxed);
        Cooldown::For(duration)
    }
}

impl DeploymentState {
    /// A failed health probe: failures that say something about the deployment cool it down
    /// at once (for the provider's `retry-after`, else `cooldown_time`), except a group's only
    /// deployment.
    pub(crate) fn record_failed_probe(
        &self,
        err: &GatewayError,
        cooldown_time: Duration,
        group_size: usize,
        now_ms: u64,
    ) -> Cooldown {
        let counts = err.failure_class().is_some_and(counts_against_deployment);
        if !counts || group_size < 2 || cooldown_time.is_zero() {
            return Cooldown::None;
        }
        let duration = err
            .retry_after
            .filter(|after| !after.is_zero())
            .unwrap_or(cooldown_time);
        self.cooling_until
            .fetch_max(now_ms + duration.as_millis() as u64, Ordering::Relaxed);
        Cooldown::For(duration)
    }
}

/// The failures that say something about the deployment rather than the request.
fn counts_against_deployment(class: FailureClass) -> bool {
    matches!(
        class,
        FailureClass::RateLimit
            | FailureClass::Authentication
            | FailureClass::NotFound
            | FailureClass::Timeout
            | FailureClass::InternalServer
    )
}

#[cfg(test)]
mod tests {
    use http::StatusCode;

    use super::*;

    fn failure(status: u16) -> GatewayError {
        GatewayError::upstream_status(StatusCode::from_u16(status).unwrap(), "failed")
    }

    #[test]
    fn a_rate_limit_cools_at_once_for_its_retry_after() {
        let state = DeploymentState::default();
        let settings = RoutingSettings::default();
        let err = failure(429).with_retry_after(Duration::from_secs(7));
        let cooldown = state.record_failure(&err, &settings, Duration::from_secs(5), 2, 1000);
        assert_eq!(cooldown, Cooldown::For(Duration::from_secs(7)));
        assert!(state.is_cooling(7999));
        assert!(!state.is_cooling(8000));
    }

    #[test]
    fn server_errors_cool_after_more_than_allowed_fails_in_a_minute() {
        let state = DeploymentState::default();
        let settings = RoutingSettings::default();
        let five = Duration::from_secs(5);
        for _ in 0..3 {
            assert_eq!(
                state.record_failure(&failure(500), &settings, five, 3, 10),
                Cooldown::None
            );
        }
        assert_eq!(
            state.record_failure(&failure(503), &settings, five, 3, 20),
            Cooldown::For(five)
        );
        // A new minute starts a new count.
        let fresh = DeploymentState::default();
        for minute in 0..5 {
            let cooldown = fresh.record_failure(&failure(500), &settings, five, 3, minute * 60_000);
            assert_eq!(cooldown, Cooldown::None);
        }
    }

    #[test]
    fn bad_requests_and_single_deployment_groups_never_cool() {
        let state = DeploymentState::default();
        let settings = RoutingSettings::default();
        let five = Duration::from_secs(5);
        for _ in 0..10 {
            assert_eq!(
                state.record_failure(&failure(400), &settings, five, 2, 10),
                Cooldown::None
            );
            assert_eq!(
                state.record_failure(&failure(429), &settings, five, 1, 10),
                Cooldown::None
            );
        }
        assert!(!state.is_cooling(11));
    }

    #[test]
    fn latency_is_a_moving_average() {
        let state = DeploymentState::default();
        assert_eq!(state.latency(), None);
        state.record_latency(Duration::from_millis(100));
        state.record_latency(Duration::from_millis(200));
        let latency = state.latency().unwrap();
        assert!((latency - 0.13).abs() < 1e-6, "{latency}");
    }
}
