//! The access log: one line per request saying who asked for what, which deployment served it,
//! how it ended, how long it took and how many tokens it used.
//!
//! Lines are formatted here directly (text or JSON, matching the tracing output around them)
//! rather than through tracing's field machinery, which cost more CPU than the rest of the
//! request path put together. `RUST_LOG` still decides whether they are written (target
//! `tollgate::access`).
//!
//! An inference request's line is written exactly once: when the response is complete, when a
//! stream ends, or — if the client goes away first — when the request is dropped.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};
use tollgate_core::calendar::civil_from_days;
use tollgate_core::endpoint::Endpoint;
use tollgate_core::error::{GatewayError, Origin};
use tollgate_policy::auth::Caller;
use tollgate_policy::budgets::Reservation;
use tollgate_policy::limits::{Admission, Quota};
use tollgate_router::{AttemptPlan, Lease};
use tollgate_translate::canonical::TokenUsage;
use tracing::Level;

use crate::app::Gateway;
use crate::logging::{self, LogFormat};

/// Routing headers: Tollgate's name, then LiteLLM's, so clients built on either work.
const MODEL_GROUP: [HeaderName; 2] = [
    HeaderName::from_static("x-tollgate-model-group"),
    HeaderName::from_static("x-litellm-model-group"),
];
const MODEL_ID: [HeaderName; 2] = [
    HeaderName::from_static("x-tollgate-model-id"),
    HeaderName::from_static("x-litellm-model-id"),
];
const API_BASE: [HeaderName; 2] = [
    HeaderName::from_static("x-tollgate-api-base"),
    HeaderName::from_static("x-litellm-model-api-base"),
];
const RETRIES: [HeaderName; 2] = [
    HeaderName::from_static("x-tollgate-attempted-retries"),
    HeaderName::from_static("x-litellm-attempted-retries"),
];
const FALLBACKS: [HeaderName; 2] = [
    HeaderName::from_static("x-tollgate-attempted-fallbacks"),
    HeaderName::from_static("x-litellm-attempted-fallbacks"),
];
const OVERHEAD: [HeaderName; 2] = [
    HeaderName::from_static("x-tollgate-overhead-duration-ms"),
    HeaderName::from_static("x-litellm-overhead-duration-ms"),
];

const RATE_LIMIT_REQUESTS: [HeaderName; 3] = [
    HeaderName::from_static("x-ratelimit-limit-requests"),
    HeaderName::from_static("x-ratelimit-remaining-requests"),
    HeaderName::from_static("x-ratelimit-reset-requests"),
];
const RATE_LIMIT_TOKENS: [HeaderName; 3] = [
    HeaderName::from_static("x-ratelimit-limit-tokens"),
    HeaderName::from_static("x-ratelimit-remaining-tokens"),
    HeaderName::from_static("x-ratelimit-reset-tokens"),
];

/// A reset time as OpenAI writes it: `42s`, `1m0s`.
fn reset_duration(after: Duration) -> String {
    let seconds = after.as_secs() + u64::from(after.subsec_nanos() > 0);
    if seconds >= 60 {
        format!("{}m{}s", seconds / 60, seconds % 60)
    } else {
        format!("{seconds}s")
    }
}

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

/// One access-log line. Absent fields are left out.
#[derive(Debug)]
pub(crate) struct AccessLine<'a> {
    pub request_id: &'a str,
    pub method: &'a str,
    pub path: &'a str,
    pub status: u16,
    pub duration: Duration,
    pub outcome: Option<&'a str>,
    pub model: Option<&'a str>,
    pub deployment: Option<&'a str>,
    pub provider: Option<&'a str>,
    pub api_base: Option<&'a str>,
    pub stream: Option<bool>,
    pub upstream: Option<Duration>,
    pub first_byte: Option<Duration>,
    pub prompt_tokens: Option<u64>,
    pub completion_tokens: Option<u64>,
    pub total_tokens: Option<u64>,
    pub retries: Option<u64>,
    pub fallbacks: Option<u64>,
    pub error_origin: Option<&'a str>,
    pub error: Option<&'a str>,
}

/// A field's value, as both output formats render it.
enum Value<'a> {
    /// Written bare in text when unambiguous, quoted otherwise.
    Text(&'a str),
    Number(u64),
    Bool(bool),
    /// Written as milliseconds with microsecond precision (`0.631`).
    Millis(Duration),
}

impl<'a> AccessLine<'a> {
    pub(crate) fn new(
        request_id: &'a str,
        method: &'a str,
        path: &'a str,
        status: u16,
        started: Instant,
    ) -> Self {
        AccessLine {
            request_id,
            method,
            path,
            status,
            duration: started.elapsed(),
            outcome: None,
            model: None,
            deployment: None,
            provider: None,
            api_base: None,
            stream: None,
            upstream: None,
            first_byte: None,
            prompt_tokens: None,
            completion_tokens: None,
            total_tokens: None,
            retries: None,
            fallbacks: None,
            error_origin: None,
            error: None,
        }
    }

    /// Writes the line if `RUST_LOG` lets `tollgate::access` events of `level` through.
    pub(crate) fn emit(&self, level: Level) {
        let enabled = if level == Level::WARN {
            tracing::enabled!(target: "tollgate::access", Level::WARN)
        } else {
            tracing::enabled!(target: "tollgate::access", Level::INFO)
        };
        if !enabled {
            return;
        }
        let mut out = String::with_capacity(512);
        match logging::format() {
            LogFormat::Text => self.write_text(level, &mut out),
            LogFormat::Json => self.write_json(level, &mut out),
        }
        out.push('\n');
        logging::write_line(out.as_bytes());
    }

    /// Every present field, in output order.
    fn fields(&self, mut visit: impl FnMut(&'static str, Value<'_>)) {
        visit("request_id", Value::Text(self.request_id));
        visit("method", Value::Text(self.method));
        visit("path", Value::Text(self.path));
        visit("status", Value::Number(u64::from(self.status)));
        let texts = [
            ("outcome", self.outcome),
            ("model", self.model),
            ("deployment", self.deployment),
            ("provider", self.provider),
            ("api_base", self.api_base),
        ];
        for (key, value) in texts {
            if let Some(value) = value {
                visit(key, Value::Text(value));
            }
        }
        if let Some(stream) = self.stream {
            visit("stream", Value::Bool(stream));
        }
        visit("duration_ms", Value::Millis(self.duration));
        for (key, value) in [
            ("upstream_ms", self.upstream),
            ("first_byte_ms", self.first_byte),
        ] {
            if let Some(value) = value {
                visit(key, Value::Millis(value));
            }
        }
        let counts = [
            ("prompt_tokens", self.prompt_tokens),
            ("completion_tokens", self.completion_tokens),
            ("total_tokens", self.total_tokens),
            ("retries", self.retries),
            ("fallbacks", self.fallbacks),
        ];
        for (key, value) in counts {
            if let Some(value) = value {
                visit(key, Value::Number(value));
            }
        }
        for (key, value) in [("error_origin", self.error_origin), ("error", self.error)] {
            if let Some(value) = value {
                visit(key, Value::Text(value));
            }
        }
    }

    fn write_text(&self, level: Level, out: &mut String) {
        write_timestamp(out);
        out.push_str(if level == Level::WARN {
            "  WARN"
        } else {
            "  INFO"
        });
        out.push_str(" tollgate::access:");
        self.fields(|key, value| {
            out.push(' ');
            out.push_str(key);
            out.push('=');
            match value {
                Value::Text(text) => logging::push_text_value(out, text),
                Value::Number(number) => out.push_str(itoa::Buffer::new().format(number)),
                Value::Bool(flag) => out.push_str(if flag { "true" } else { "false" }),
                Value::Millis(duration) => push_millis(out, duration),
            }
        });
    }

    /// The same shape as tracing's JSON lines: envelope first, then the fields, flat.
    fn write_json(&self, level: Level, out: &mut String) {
        out.push_str(r#"{"timestamp":""#);
        write_timestamp(out);
        out.push_str(r#"","level":""#);
        out.push_str(level.as_str());
        out.push_str(r#"","target":"tollgate::access""#);
        self.fields(|key, value| {
            out.push_str(",\"");
            out.push_str(key);
            out.push_str("\":");
            match value {
                Value::Text(text) => logging::push_json_string(out, text),
                Value::Number(number) => out.push_str(itoa::Buffer::new().format(number)),
                Value::Bool(flag) => out.push_str(if flag { "true" } else { "false" }),
                Value::Millis(duration) => push_millis(out, duration),
            }
        });
        out.push('}');
    }
}

/// `duration` as milliseconds with three decimals: `12.345`.
fn push_millis(out: &mut String, duration: Duration) {
    let micros = duration.as_micros() as u64;
    out.push_str(itoa::Buffer::new().format(micros / 1000));
    out.push('.');
    push_padded(out, micros % 1000, 3);
}

/// `value` in decimal, left-padded with zeros to `width` digits.
fn push_padded(out: &mut String, value: u64, width: usize) {
    let mut buffer = itoa::Buffer::new();
    let digits = buffer.format(value);
    for _ in digits.len()..width {
        out.push('0');
    }
    out.push_str(digits);
}

/// The inference request being served: filled in as the pipeline learns things, written once.
#[derive(Debug)]
pub(crate) struct AccessRecord {
    gateway: Arc<Gateway>,
    /// The request's `x-request-id`: the client's, or minted by the gateway.
    request_id: Arc<str>,
    /// The gateway's own id for the request when `request_id` is the client's, which need not
    /// be unique: the spend record is kept under this one, the client's beside it.
    call_id: Option<Arc<str>>,
    pub(crate) endpoint: Endpoint,
    pub(crate) started: Instant,
    /// The same moment as wall-clock milliseconds, for the spend record.
    pub(crate) started_ms: i64,
    /// Who asked, once authenticated: whom the spend is charged to.
    pub(crate) caller: Option<Caller>,
    /// The end user the request names (`user`).
    pub(crate) end_user: Option<String>,
    pub(crate) model: Option<String>,
    /// The deployment of the latest attempt, held (and counted in flight) until the request
    /// ends.
    pub(crate) lease: Option<Lease>,
    /// The request's place under its caller's rate limits, held until it ends.
    pub(crate) admission: Admission,
    /// The request's worst case, reserved under its budgets until it ends.
    pub(crate) reservation: Option<Reservation>,
    /// Where the caller's tightest limits stood, for `x-ratelimit-*` headers.
    pub(crate) quota: Option<Quota>,
    pub(crate) stream: bool,
    pub(crate) status: u16,
    pub(crate) outcome: Outcome,
    error: Option<(Origin, String)>,
    /// The error's code (`context_length_exceeded`) or type, for the spend record.
    error_class: Option<String>,
    pub(crate) usage: Option<TokenUsage>,
    /// `usage` is the gateway's estimate: the provider reported none.
    pub(crate) usage_estimated: bool,
    /// A streamed request's body, kept to estimate its prompt if the stream is cut short
    /// before the provider's usage arrives.
    pub(crate) request_body: Option<Bytes>,
    /// Stream events relayed to the client so far.
    pub(crate) events_sent: u64,
    /// The request's own `metadata` and tags, for its spend record.
    pub(crate) request_metadata: Option<serde_json::Map<String, serde_json::Value>>,
    pub(crate) request_tags: Vec<String>,
    /// The latest attempt: when it was sent, when its first byte (stream: first event) came,
    /// when its whole answer was in (non-streaming).
    pub(crate) upstream_started: Option<Instant>,
    pub(crate) first_byte: Option<Instant>,
    pub(crate) answered: Option<Instant>,
    /// Time spent waiting on providers (and between retries), over all attempts: the rest of
    /// the request's time is the gateway's overhead.
    pub(crate) provider_time: Duration,
    /// The request's duration as prices by the second bill it, fixed when first asked.
    pub(crate) priced_duration_ms: std::sync::OnceLock<u64>,
    /// The group of the latest attempt, and the retries and fallbacks so far.
    group_header: Option<HeaderValue>,
    pub(crate) retries: u32,
    pub(crate) fallbacks: u32,
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
            call_id: None,
            endpoint,
            started: Instant::now(),
            started_ms: tollgate_policy::keys::now_ms(),
            caller: None,
            end_user: None,
            model: None,
            lease: None,
            admission: Admission::default(),
            reservation: None,
            quota: None,
            stream: false,
            status: 0,
            outcome: Outcome::Pending,
            error: None,
            error_class: None,
            usage: None,
            usage_estimated: false,
            request_body: None,
            events_sent: 0,
            request_metadata: None,
            request_tags: Vec::new(),
            upstream_started: None,
            first_byte: None,
            answered: None,
            priced_duration_ms: std::sync::OnceLock::new(),
            provider_time: Duration::ZERO,
            group_header: None,
            retries: 0,
            fallbacks: 0,
            written: false,
        }
    }

    /// Marks `request_id` as the client's and gives the request an id of the gateway's own.
    pub(crate) fn client_chose_request_id(&mut self) {
        self.call_id = Some(Arc::from(tollgate_core::ids::new_request_id()));
    }

    /// The request's unique id: its spend record's, sent as `x-litellm-call-id`.
    pub(crate) fn call_id(&self) -> &str {
        self.call_id.as_deref().unwrap_or(&self.request_id)
    }

    /// The id the client gave the request, when it gave one.
    pub(crate) fn client_request_id(&self) -> Option<&str> {
        self.call_id.is_some().then_some(&*self.request_id)
    }

    pub(crate) fn gateway(&self) -> &Arc<Gateway> {
        &self.gateway
    }

    /// Accounts for an attempt just made under `plan`.
    pub(crate) fn note_attempt(&mut self, plan: &AttemptPlan<'_>) {
        if let Some(sent) = self.upstream_started {
            let until = self
                .answered
                .or(self.first_byte)
                .unwrap_or_else(Instant::now);
            self.provider_time += until.saturating_duration_since(sent);
        }
        self.group_header = Some(plan.group().name_header.clone());
        self.retries = plan.retries();
        self.fallbacks = plan.fallbacks();
    }

    /// Clears the previous attempt's timings before a new one.
    pub(crate) fn start_attempt(&mut self) {
        self.upstream_started = None;
        self.first_byte = None;
        self.answered = None;
    }

    /// The latest attempt's latency as latency-based routing measures it: time to the first
    /// event for streams, to the whole answer otherwise.
    pub(crate) fn upstream_latency(&self) -> Option<Duration> {
        let sent = self.upstream_started?;
        let until = if self.stream {
            self.first_byte?
        } else {
            self.answered?
        };
        Some(until.saturating_duration_since(sent))
    }

    /// Which group and deployment served the request, after how many retries and fallbacks,
    /// and the gateway's own share of the time, under Tollgate's and LiteLLM's header names.
    pub(crate) fn add_routing_headers(&self, headers: &mut HeaderMap) {
        let Some(lease) = &self.lease else {
            return;
        };
        let pairs = [
            (&MODEL_GROUP, self.group_header.clone()),
            (&MODEL_ID, Some(lease.id_header.clone())),
            (&API_BASE, Some(lease.api_base_header.clone())),
            (&RETRIES, Some(HeaderValue::from(self.retries))),
            (&FALLBACKS, Some(HeaderValue::from(self.fallbacks))),
            (&OVERHEAD, Some(self.overhead_header())),
        ];
        headers.reserve(pairs.len() * 2);
        for ([ours, litellm], value) in pairs {
            if let Some(value) = value {
                headers.insert(ours.clone(), value.clone());
                headers.insert(litellm.clone(), value);
            }
        }
    }

    /// OpenAI's `x-ratelimit-*` headers for the caller's tightest request and token limits.
    pub(crate) fn add_rate_limit_headers(&self, headers: &mut HeaderMap) {
        let Some(quota) = &self.quota else {
            return;
        };
        for (standing, [limit, remaining, reset]) in [
            (quota.requests, &RATE_LIMIT_REQUESTS),
            (quota.tokens, &RATE_LIMIT_TOKENS),
        ] {
            if let Some(standing) = standing {
                headers.insert(limit.clone(), HeaderValue::from(standing.limit));
                headers.insert(remaining.clone(), HeaderValue::from(standing.remaining));
                let reset_text = reset_duration(standing.resets_in);
                if let Ok(value) = HeaderValue::from_str(&reset_text) {
                    headers.insert(reset.clone(), value);
                }
            }
        }
    }

    fn overhead_header(&self) -> HeaderValue {
        let overhead = self.started.elapsed().saturating_sub(self.provider_time);
        let mut text = String::with_capacity(12);
        push_millis(&mut text, overhead);
        HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("0"))
    }

    pub(crate) fn fail(&mut self, err: &GatewayError) {
        self.status = err.status.as_u16();
        self.outcome = Outcome::Failed;
        self.note_error(err);
    }

    pub(crate) fn fail_stream(&mut self, err: &GatewayError) {
        self.outcome = Outcome::StreamFailed;
        self.note_error(err);
    }

    fn note_error(&mut self, err: &GatewayError) {
        self.error = Some((err.origin, err.message.to_string()));
        self.error_class = Some(
            err.code
                .as_deref()
                .unwrap_or_else(|| err.kind.as_str())
                .to_owned(),
        );
    }

    /// What kind of failure ended the request, if one did.
    pub(crate) fn error_class(&self) -> Option<String> {
        match self.outcome {
            Outcome::ClientDisconnected | Outcome::Pending => Some("client_disconnected".into()),
            _ => self.error_class.clone(),
        }
    }

    /// Writes the line now. Later calls (and the drop) do nothing.
    pub(crate) fn write(&mut self) {
        if std::mem::replace(&mut self.written, true) {
            return;
        }
        if self.usage.is_none()
            && self.first_byte.is_some()
            && let Some(body) = self.request_body.take()
        {
            // A stream cut short without the provider's count: charged by an estimate, once
            // the prompt is counted off this thread.
            crate::spend::charge_estimate(self, body);
        } else {
            let cost = self.cost();
            if let Some(reservation) = self.reservation.take() {
                crate::budgets::settle(&self.gateway, reservation, cost);
            }
            // The spend record first: it must be journaled before the client has the last byte.
            if let Some(ledger) = &self.gateway.spend
                && let Some(record) = self.spend_record(tollgate_policy::keys::now_ms())
            {
                ledger.append(record);
            }
        }
        let now = Instant::now();
        let deployment = self.lease.as_ref().map(|lease| &*lease.deployment);
        let mut line = AccessLine::new(
            &self.request_id,
            "POST",
            self.endpoint.path(),
            self.status,
            self.started,
        );
        line.outcome = Some(self.outcome.as_str());
        line.model = self.model.as_deref();
        line.deployment = deployment.map(|d| d.config.id.as_str());
        line.provider = deployment.map(|d| d.config.provider.prefix);
        line.api_base = deployment.map(|d| d.api_base_host.as_str());
        line.stream = Some(self.stream);
        line.upstream = self
            .upstream_started
            .map(|at| now.saturating_duration_since(at));
        line.first_byte = self
            .first_byte
            .map(|at| at.saturating_duration_since(self.started));
        if let Some(usage) = &self.usage {
            line.prompt_tokens = Some(usage.input);
            line.completion_tokens = Some(usage.output);
            line.total_tokens = Some(usage.total());
            if let Some(lease) = &self.lease {
                let now_ms = self.gateway.router.clock().now_ms();
                lease.state.record_tokens(now_ms, usage.total());
            }
        }
        std::mem::take(&mut self.admission).finish(self.usage.as_ref().map(|usage| usage.total()));
        line.retries = (self.retries > 0).then_some(u64::from(self.retries));
        line.fallbacks = (self.fallbacks > 0).then_some(u64::from(self.fallbacks));
        if let Some((origin, message)) = &self.error {
            line.error_origin = Some(origin_str(*origin));
            line.error = Some(message);
        }
        let failed_on_our_side =
            matches!(&self.error, Some((Origin::Upstream | Origin::Gateway, _)));
        line.emit(if failed_on_our_side {
            Level::WARN
        } else {
            Level::INFO
        });
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

fn origin_str(origin: Origin) -> &'static str {
    match origin {
        Origin::Client => "client",
        Origin::Upstream => "upstream",
        Origin::Gateway => "gateway",
    }
}

/// The current UTC time as RFC 3339 with microseconds, as tracing's own lines carry it. The
/// date-and-time part is formatted once per second per thread.
fn write_timestamp(out: &mut String) {
    thread_local! {
        static SECOND: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let seconds = now.as_secs();
    SECOND.with_borrow_mut(|(cached, text)| {
        if *cached != seconds {
            let (year, month, day) = civil_from_days((seconds / 86_400) as i64);
            let of_day = seconds % 86_400;
            text.clear();
            let _ = write!(
                text,
                "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.",
                of_day / 3600,
                of_day / 60 % 60,
                of_day % 60
            );
            *cached = seconds;
        }
        out.push_str(text);
    });
    push_padded(out, u64::from(now.subsec_micros()), 6);
    out.push('Z');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_milliseconds_with_three_decimals() {
        let mut out = String::new();
        push_millis(&mut out, Duration::from_micros(12_045));
        out.push(' ');
        push_millis(&mut out, Duration::from_micros(7));
        assert_eq!(out, "12.045 0.007");
    }

    #[test]
    fn json_lines_are_valid_json_with_every_field() {
        let mut line = AccessLine::new("id-1", "POST", "/v1/chat/completions", 502, Instant::now());
        line.model = Some("m \"quoted\"");
        line.error = Some("line one\nline two\u{1}");
        line.total_tokens = Some(42);
        line.stream = Some(true);
        let mut out = String::new();
        line.write_json(Level::WARN, &mut out);
        let parsed: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(parsed["level"], "WARN");
        assert_eq!(parsed["target"], "tollgate::access");
        assert_eq!(parsed["model"], "m \"quoted\"");
        assert_eq!(parsed["error"], "line one\nline two\u{1}");
        assert_eq!(parsed["total_tokens"], 42);
        assert_eq!(parsed["stream"], true);
        assert!(parsed["duration_ms"].is_f64());
        assert!(parsed["timestamp"].as_str().unwrap().ends_with('Z'));
    }

    #[test]
    fn timestamps_are_rfc3339_with_microseconds() {
        let mut out = String::new();
        write_timestamp(&mut out);
        assert_eq!(out.len(), "2026-11-21T14:29:11.200871Z".len(), "{out}");
        assert_eq!(&out[10..11], "T");
    }
}
