//! Fault injection for routing tests: any mock provider can be told to fail its next
//! requests, or all of them from now on, in the ways real providers fail: an error status
//! (with `retry-after`), no answer before a timeout, a stream that stalls or is cut half-way,
//! a body that is not JSON. Faults sit in front of the mock's own handler, so a healthy
//! request is answered by the mock as usual.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderValue, StatusCode};
use http_body::Frame;
use serde_json::json;

use crate::recorder::Recorder;

/// One way to fail a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// Answer `status` with an OpenAI-style error body, and `retry-after` (seconds) when set.
    Status {
        status: u16,
        retry_after: Option<Duration>,
    },
    /// Wait this long before answering at all (a timeout before the headers).
    Delay(Duration),
    /// A 200 event stream that sends one chunk, then nothing.
    StallMidStream,
    /// A 200 event stream that sends one chunk, then drops the connection.
    ResetMidStream,
    /// A 200 whose JSON body is cut short.
    MalformedJson,
}

impl Fault {
    pub fn status(status: u16) -> Fault {
        Fault::Status {
            status,
            retry_after: None,
        }
    }

    pub fn rate_limited(retry_after: Duration) -> Fault {
        Fault::Status {
            status: 429,
            retry_after: Some(retry_after),
        }
    }
}

/// The faults a mock will inject: queued ones first (one request each), then the standing one.
#[derive(Debug, Default)]
pub struct Faults {
    /// Whether any fault was ever set: until then requests skip the locks (benchmark mode).
    armed: AtomicBool,
    queued: Mutex<VecDeque<Fault>>,
    standing: Mutex<Option<Fault>>,
}

impl Faults {
    fn next(&self) -> Option<Fault> {
        if !self.armed.load(Ordering::Relaxed) {
            return None;
        }
        let queued = self.queued.lock().expect("faults lock").pop_front();
        queued.or_else(|| self.standing.lock().expect("faults lock").clone())
    }

    /// Fails the next request (after any already queued) with `fault`.
    pub fn push(&self, fault: Fault) {
        self.armed.store(true, Ordering::Relaxed);
        self.queued.lock().expect("faults lock").push_back(fault);
    }

    /// Fails every request from now on with `fault`.
    pub fn fail_all(&self, fault: Fault) {
        self.armed.store(true, Ordering::Relaxed);
        *self.standing.lock().expect("faults lock") = Some(fault);
    }

    /// Back to answering normally.
    pub fn heal(&self) {
        self.queued.lock().expect("faults lock").clear();
        *self.standing.lock().expect("faults lock") = None;
    }
}

/// Middleware: applies the next fault, or passes the request to the mock. A request answered
/// by a fault is recorded like any other.
pub(crate) async fn inject(
    State((faults, recorder)): State<(Arc<Faults>, Arc<Recorder>)>,
    request: Request,
    next: Next,
) -> Response {
    match faults.next() {
        None => next.run(request).await,
        Some(Fault::Delay(delay)) => {
            tokio::time::sleep(delay).await;
            next.run(request).await
        }
        Some(fault) => {
            let (parts, body) = request.into_parts();
            let body = axum::body::to_bytes(body, usize::MAX)
                .await
                .unwrap_or_default();
            recorder.record(&parts, body);
            fault_response(fault)
        }
    }
}

fn fault_response(fault: Fault) -> Response {
    let mut response = match fault {
        Fault::Status {
            status,
            retry_after,
        } => {
            let body = json!({"error": {
                "message": format!("Injected fault: HTTP {status}."),
                "type": if status == 429 { "rate_limit_exceeded" } else { "server_error" },
                "param": null,
                "code": null,
            }});
            let mut response = Response::new(Body::from(body.to_string()));
            *response.status_mut() = StatusCode::from_u16(status).expect("a valid status");
            if let Some(after) = retry_after {
                let seconds = after.as_secs_f64().ceil() as u64;
                response
                    .headers_mut()
                    .insert("retry-after", HeaderValue::from(seconds));
                response.headers_mut().insert(
                    "retry-after-ms",
                    HeaderValue::from(after.as_millis() as u64),
                );
            }
            response
        }
        Fault::MalformedJson => Response::new(Body::from(r#"{"id":"chatcmpl-cut","choices":[{"#)),
        Fault::StallMidStream | Fault::ResetMidStream => {
            let first = Bytes::from(format!("data: {}\n\n", first_chunk()));
            let body = FaultBody {
                first: Some(first),
                cut: matches!(fault, Fault::ResetMidStream)
                    .then(|| Box::pin(tokio::time::sleep(Duration::from_millis(100)))),
            };
            let mut response = Response::new(Body::new(body));
            response.headers_mut().insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("text/event-stream"),
            );
            return response;
        }
        Fault::Delay(_) => unreachable!("delays pass the request on"),
    };
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn first_chunk() -> serde_json::Value {
    json!({
        "id": "chatcmpl-fault",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": "fault",
        "choices": [{"index": 0, "delta": {"role": "assistant", "content": "partial "}, "finish_reason": null}],
    })
}

/// One chunk, then either (a moment later, so the chunk is surely out) an I/O error that
/// cuts the connection, or nothing, forever.
struct FaultBody {
    first: Option<Bytes>,
    cut: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl http_body::Body for FaultBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        if let Some(first) = self.first.take() {
            return Poll::Ready(Some(Ok(Frame::data(first))));
        }
        let Some(cut) = self.cut.as_mut() else {
            return Poll::Pending;
        };
        match cut.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(std::io::Error::other("injected reset")))),
            Poll::Pending => Poll::Pending,
        }
    }
}
