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
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{FromRedisValue, ScriptInvocation};
use secrecy::ExposeSecret;
use tokio::sync::Notify;
use tollgate_core::config::RedisSettings;
use tollgate_core::worker;

/// How long a replica counts on its own after Redis failed it, before asking again.
const REST_AFTER_FAILURE_MS: i64 = 1_000;

/// The shared Redis, and whether it is answering.
pub struct SharedCounters {
    /// One per thread that calls Redis (the workers, then the background runtime's), each
    /// made and driven by that thread's runtime, so a request's Redis calls never change
    /// threads.
    connections: Vec<ConnectionManager>,
    prefix: String,
    timeout: Duration,
    /// How long a reservation or an in-flight mark holds if its replica never takes it back.
    lease: Duration,
    /// Wall-clock ms before which Redis is not asked again, after a failure.
    resting_until_ms: AtomicI64,
    failing: AtomicBool,
    /// Where it is, password masked.
    shown: String,
    /// Settlements and releases still on their way to Redis.
    pending: Arc<Pending>,
}

#[derive(Debug, Default)]
struct Pending {
    count: AtomicUsize,
    none_left: Notify,
}

/// One piece of background work, counted while it lives.
pub(crate) struct PendingWork(Arc<Pending>);

impl PendingWork {
    fn new(pending: &Arc<Pending>) -> Self {
        pending.count.fetch_add(1, Ordering::AcqRel);
        PendingWork(pending.clone())
    }
}

impl Drop for PendingWork {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.none_left.notify_waiters();
        }
    }
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
    /// than any request may take. `threads`: how many threads will call it (see
    /// `tollgate_core::worker`); each gets a connection of its own, made on its first call.
    pub fn connect(
        settings: &RedisSettings,
        lease: Duration,
        threads: usize,
    ) -> Result<Arc<Self>, String> {
        let client = Self::client(settings)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(settings.timeout.max(Duration::from_secs(1))))
            .set_response_timeout(Some(settings.timeout))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(500));
        let connections = (0..threads.max(1))
            .map(|_| ConnectionManager::new_lazy_with_config(client.clone(), config.clone()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|err| format!("{}: {err}", settings.source))?;
        Ok(Arc::new(SharedCounters {
            connections,
            prefix: settings.key_prefix.clone(),
            timeout: settings.timeout,
            lease,
            resting_until_ms: AtomicI64::new(0),
            failing: AtomicBool::new(false),
            shown: settings.shown.clone(),
            pending: Arc::default(),
        }))
    }

    /// The calling thread's connection.
    fn connection(&self) -> ConnectionManager {
        self.connections[worker::current() % self.connections.len()].clone()
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
        let mut connection = self.connection();
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
        let mut connection = self.connection();
        self.within(invocation.invoke_async::<T>(&mut connection))
            .await
    }

    /// Waits for `call` unless Redis is resting after a failure; `None` when it is, or when
    /// the call fails or outlasts the timeout (then Redis rests a moment).
    async fn within<T>(&self, call: impl Future<Output = redis::RedisResult<T>>) -> Option<T> {
        if wall_ms() < self.resting_until_ms.load(Ordering::Relaxed) {
            return None;
        }
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

    /// Runs `work` in the background (releasing: nothing waits for it), counted until done.
    pub(crate) fn in_background(&self, work: impl Future<Output = ()> + Send + 'static) {
        let counted = self.pending_work();
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    work.await;
                    drop(counted);
                });
            }
            Err(_) => tracing::warn!(
                "a shared counter could not be updated outside the runtime; its lease lapses instead"
            ),
        }
    }

    /// Counts a piece of background work until the value returned is dropped.
    pub(crate) fn pending_work(&self) -> PendingWork {
        PendingWork::new(&self.pending)
    }

    /// Waits (at most `within`) for the settlements and releases under way to reach Redis: a
    /// worker about to stop calls it, so what its last requests hold is not left to lapse.
    pub async fn finish_pending(&self, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let none_left = self.pending.none_left.notified();
            if self.pending.count.load(Ordering::Acquire) == 0 {
                return;
            }
            if tokio::time::timeout_at(deadline, none_left).await.is_err() {
                tracing::warn!(
                    pending = self.pending.count.load(Ordering::Acquire),
                    "stopping before every settlement reached Redis; their reservations lapse with their leases"
                );
                return;
            }
        }
    }
}

/// Milliseconds since the Unix epoch: replicas share windows, so they share a clock.
pub(crate) fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as i64)
}
