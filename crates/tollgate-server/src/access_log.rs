//! The access-log line of an inference request: who asked for what, which deployment served
//! it, how it ended, how long it took and how many tokens it used.
//!
//! The record is written exactly once: when the response is complete, when a stream ends, or
//! — if the client goes away first — when the request is dropped.

use std::sync::Arc;
use std::time::Instant;

use tollgate_core::endpoint::Endpoint;
use tollgate_core::error::{GatewayError, Origin};
use tollgate_upstream::Deployment;
use tollgate_wire::openai::Usage;

use crate::app::Gateway;

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Still running (never written as such unless dropped).
    Pending,
    Completed,
    /// Answered with an error before any response byte.
    Failed,
    /// A stream that had started ended with an error event.
    StreamFailed,
    /// The client disconnected before the end.
    ClientDisconnected,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Pending | Outcome::ClientDisconnected => "client_disconnected",
            Outcome::Completed => "completed",
            Outcome::Failed => "failed",
            Outcome::StreamFailed => "stream_failed",
        }
    }
}

#[derive(Debug)]
pub(crate) struct AccessRecord {
    gateway: Arc<Gateway>,
    request_id: Arc<str>,
    endpoint: Endpoint,
    started: Instant,
    pub(crate) model: Option<String>,
    pub(crate) deployment: Option<Arc<Deployment>>,
    pub(crate) stream: bool,
    pub(crate) status: u16,
    pub(crate) outcome: Outcome,
    error: Option<(Origin, String)>,
    pub(crate) usage: Option<Usage>,
    pub(crate) upstream_started: Option<Instant>,
    pub(crate) first_byte: Option<Instant>,
    written: bool,
}

impl AccessRecord {
    pub(crate) fn start(gateway: Arc<Gateway>, request_id: Arc<str>, endpoint: Endpoint) -> Self {
        gateway
            .in_flight_counter()
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        AccessRecord {
            gateway,
            request_id,
            endpoint,
            started: Instant::now(),
            model: None,
            deployment: None,
            stream: false,
            status: 0,
            outcome: Outcome::Pending,
            error: None,
            usage: None,
            upstream_started: None,
            first_byte: None,
            written: false,
        }
    }

    pub(crate) fn fail(&mut self, err: &GatewayError) {
        self.status = err.status.as_u16();
        self.outcome = Outcome::Failed;
        self.error = Some((err.origin, err.message.to_string()));
    }

    pub(crate) fn fail_stream(&mut self, err: &GatewayError) {
        self.outcome = Outcome::StreamFailed;
        self.error = Some((err.origin, err.message.to_string()));
    }

    /// Writes the line now. Later calls (and the drop) do nothing.
    pub(crate) fn write(&mut self) {
        if std::mem::replace(&mut self.written, true) {
            return;
        }
        // Rounded to the microsecond so lines read `0.631`, not `0.6309990000000001`.
        let millis = |from: Instant, to: Instant| {
            (to.saturating_duration_since(from).as_secs_f64() * 1e6).round() / 1e3
        };
        let now = Instant::now();
        let deployment = self.deployment.as_deref();
        let usage = self.usage.unwrap_or_default();
        let upstream_ms = self.upstream_started.map(|at| millis(at, now));
        let first_byte_ms = self.first_byte.map(|at| millis(self.started, at));
        let (origin, error) = match &self.error {
            Some((origin, message)) => (Some(origin_str(*origin)), Some(message.as_str())),
            None => (None, None),
        };
        macro_rules! access_event {
            ($level:expr) => {
                tracing::event!(
                    target: "tollgate::access",
                    $level,
                    request_id = %self.request_id,
                    method = %"POST",
                    path = endpoint_path(self.endpoint),
                    status = self.status,
                    outcome = self.outcome.as_str(),
                    model = self.model.as_deref(),
                    deployment = deployment.map(|d| d.config.id.as_str()),
                    provider = deployment.map(|d| d.config.provider.prefix),
                    api_base = deployment.map(|d| d.api_base_host.as_str()),
                    stream = self.stream,
                    duration_ms = millis(self.started, now),
                    upstream_ms,
                    first_byte_ms,
                    prompt_tokens = usage.prompt_tokens,
                    completion_tokens = usage.completion_tokens,
                    total_tokens = usage.total_tokens,
                    error_origin = origin,
                    error,
                )
            };
        }
        let failed_on_our_side =
            matches!(&self.error, Some((Origin::Upstream | Origin::Gateway, _)));
        if failed_on_our_side {
            access_event!(tracing::Level::WARN);
        } else {
            access_event!(tracing::Level::INFO);
        }
    }
}

impl Drop for AccessRecord {
    fn drop(&mut self) {
        if !self.written {
            if self.outcome == Outcome::Pending {
                self.outcome = Outcome::ClientDisconnected;
                if self.status == 0 {
                    // 499: nginx's "client closed request", the convention log readers know.
                    self.status = 499;
                }
            }
            self.write();
        }
        self.gateway
            .in_flight_counter()
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

fn endpoint_path(endpoint: Endpoint) -> &'static str {
    match endpoint {
        Endpoint::ChatCompletions => "/v1/chat/completions",
        Endpoint::Completions => "/v1/completions",
        Endpoint::Embeddings => "/v1/embeddings",
    }
}

fn origin_str(origin: Origin) -> &'static str {
    match origin {
        Origin::Client => "client",
        Origin::Upstream => "upstream",
        Origin::Gateway => "gateway",
    }
}
