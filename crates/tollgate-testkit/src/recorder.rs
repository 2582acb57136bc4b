//! What a mock provider saw: every request, and the requests its caller abandoned.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::request::Parts;
use http::{HeaderMap, Method};
use serde_json::Value;
use tokio::sync::Notify;

/// A request as the mock received it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: Method,
    /// Path and query, e.g. `/openai/deployments/d/chat/completions?api-version=2024-10-21`.
    pub path: String,
    pub headers: HeaderMap,
    /// The body as JSON (`Null` if it was not JSON).
    pub body: Value,
    pub raw_body: Bytes,
    /// HTTP/1.1 or HTTP/2, as negotiated.
    pub version: http::Version,
    /// The caller's address: requests on one connection share it.
    pub peer: Option<SocketAddr>,
}

#[derive(Debug, Default)]
pub struct Recorder {
    requests: Mutex<Vec<RecordedRequest>>,
    cancelled: AtomicUsize,
    pub(crate) changed: Notify,
}

impl Recorder {
    pub(crate) fn record(&self, parts: &Parts, raw_body: Bytes) -> Value {
        let body: Value = serde_json::from_slice(&raw_body).unwrap_or(Value::Null);
        let peer = parts
            .extensions
            .get::<axum::extract::ConnectInfo<SocketAddr>>()
            .map(|info| info.0);
        self.requests.lock().expect("lock").push(RecordedRequest {
            method: parts.method.clone(),
            path: parts
                .uri
                .path_and_query()
                .map(|p| p.to_string())
                .unwrap_or_default(),
            headers: parts.headers.clone(),
            body: body.clone(),
            raw_body,
            version: parts.version,
            peer,
        });
        self.changed.notify_waiters();
        body
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.requests.lock().expect("lock").clone()
    }

    pub fn cancelled(&self) -> usize {
        self.cancelled.load(Ordering::SeqCst)
    }
}

/// Counts the request as cancelled if dropped before `finish`.
pub(crate) struct CancelGuard {
    recorder: Arc<Recorder>,
    armed: bool,
}

impl CancelGuard {
    pub(crate) fn new(recorder: Arc<Recorder>) -> Self {
        CancelGuard {
            recorder,
            armed: true,
        }
    }

    /// A guard that never counts (benchmark mode).
    pub(crate) fn disarmed(recorder: Arc<Recorder>) -> Self {
        CancelGuard {
            recorder,
            armed: false,
        }
    }

    pub(crate) fn finish(&mut self) {
        self.armed = false;
    }
}

impl Drop for CancelGuard {
    fn drop(&mut self) {
        if self.armed {
            self.recorder.cancelled.fetch_add(1, Ordering::SeqCst);
            self.recorder.changed.notify_waiters();
        }
    }
}
