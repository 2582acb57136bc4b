//! Counters that replicas share through Redis: rate-limit windows, requests in flight and
//! budget accounts. Every change is one Lua script, which Redis runs whole before any other
//! command, so replicas admitting requests at the same moment can never together pass a limit
//! or a budget — the guarantee the in-memory counters give within one replica.
//!
//! Redis is something the gateway can live without. A call that fails, or outlasts
//! `redis_timeout`, makes the replica count on its own in-memory counters for a second (logged
//! once per outage); a reservation or in-flight mark whose replica dies is a lease that
//! lapses by itself. Keys carry their layout's version (`…:budget.v1:…`), as the scripts'
//! files do, so a gateway that changes either never reads the other's.

pub(crate) mod budgets;
pub(crate) mod limits;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{FromRedisValue, ScriptInvocation};
use secrecy::ExposeSecret;
use tollgate_core::config::RedisSettings;

/// How long a replica counts on its own after Redis failed it, before asking again.
const REST_AFTER_FAILURE_MS: i64 = 1_000;

/// The shared Redis, and whether it is answering.
pub struct SharedCounters {
    connection: ConnectionManager,
    prefix: String,
    timeout: Duration,
    /// How long a reservation or an in-flight mark holds if its replica never takes it back.
    lease: Duration,
    /// Wall-clock ms before which Redis is not asked again, after a failure.
    resting_until_ms: AtomicI64,
    failing: AtomicBool,
    /// Where it is, password masked.
    shown: String,
}

impl std::fmt::Debug for SharedCounters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedCounters")
            .field("redis", &self.shown)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl SharedCounters {
    /// Prepares the connection (made on first use, and again whenever it breaks). Needs a
    /// Tokio runtime: the connection's task runs on the one this is called on.
    ///
    /// `lease`: how long a request's marks outlive a replica that died holding them; longer
    /// than any request may take.
    pub fn connect(settings: &RedisSettings, lease: Duration) -> Result<Arc<Self>, String> {
        let client = Self::client(settings)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(settings.timeout.max(Duration::from_secs(1))))
            .set_response_timeout(Some(settings.timeout))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(500));
        let connection = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|err| format!("{}: {err}", settings.source))?;
        Ok(Arc::new(SharedCounters {
            connection,
            prefix: settings.key_prefix.clone(),
            timeout: settings.timeout,
            lease,
            resting_until_ms: AtomicI64::new(0),
            failing: AtomicBool::new(false),
            shown: settings.shown.clone(),
        }))
    }

    /// Checks what the config says of Redis as the client reads it (nothing is connected).
    pub fn check(settings: &RedisSettings) -> Result<(), String> {
        Self::client(settings).map(drop)
    }

    fn client(settings: &RedisSettings) -> Result<redis::Client, String> {
        // The client's errors describe the URL's shape, never repeat its password.
        redis::Client::open(settings.url.expose_secret())
            .map_err(|err| format!("not a Redis address the client can use: {err}"))
    }

    /// Where Redis is, password masked.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// Whether Redis answers now (for readiness).
    pub async fn ping(&self) -> bool {
        let mut connection = self.connection.clone();
        let command = redis::cmd("PING");
        let ping = command.query_async::<String>(&mut connection);
        matches!(tokio::time::timeout(self.timeout, ping).await, Ok(Ok(_)))
    }

    /// A key of Tollgate's: `{prefix}:{space}:{kind}:{id}`.
    fn key(&self, space: &str, kind: &str, id: &str) -> String {
        format!("{}:{space}:{kind}:{id}", self.prefix)
    }

    /// When a mark made now lapses, should its replica never take it back.
    fn lapses_at(&self, now_ms: i64) -> i64 {
        now_ms.saturating_add(i64::try_from(self.lease.as_millis()).unwrap_or(i64::MAX / 2))
    }

    /// Runs a script; `None` when Redis is resting after a failure, fails, or does not answer
    /// within the timeout (the caller then counts on its own).
    async fn run<T: FromRedisValue>(&self, invocation: &ScriptInvocation<'_>) -> Option<T> {
        if wall_ms() < self.resting_until_ms.load(Ordering::Relaxed) {
            return None;
        }
        let mut connection = self.connection.clone();
        let call = invocation.invoke_async::<T>(&mut connection);
        match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(value)) => {
                if self.failing.swap(false, Ordering::Relaxed) {
                    tracing::info!(redis = %self.shown, "Redis answers again: rate limits and budgets are shared with the other replicas again");
                }
                Some(value)
            }
            Ok(Err(err)) => {
                self.failed(&err.to_string());
                None
            }
            Err(_) => {
                self.failed(&format!("no answer within {:?}", self.timeout));
                None
            }
        }
    }

    fn failed(&self, reason: &str) {
        self.resting_until_ms
            .store(wall_ms() + REST_AFTER_FAILURE_MS, Ordering::Relaxed);
        if !self.failing.swap(true, Ordering::Relaxed) {
            tracing::warn!(redis = %self.shown, %reason, "Redis failed: this replica counts rate limits and budgets on its own until it answers again");
        }
    }

    /// Runs `work` in the background (settling, releasing: nothing waits for them).
    pub(crate) fn in_background(work: impl Future<Output = ()> + Send + 'static) {
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(work);
            }
            Err(_) => tracing::warn!(
                "a shared counter could not be updated outside the runtime; its lease lapses instead"
            ),
        }
    }
}

/// Milliseconds since the Unix epoch: replicas share windows, so they share a clock.
pub(crate) fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as i64)
}
