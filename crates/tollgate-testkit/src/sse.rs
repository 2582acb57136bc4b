//! Streaming answers for the mock providers: pre-rendered events written one per frame, with
//! an optional pause between them, ending normally, stalling, or breaking the connection.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::StatusCode;
use http::header::{CONTENT_TYPE, HeaderValue};
use tokio::time::Sleep;

use crate::recorder::CancelGuard;

/// How a mock stream ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    /// After its last event, normally.
    Done,
    /// Never: the stream stalls after its events (the caller must go away).
    Stall,
    /// The connection breaks after the events.
    Break,
}

pub(crate) struct SseBody {
    events: VecDeque<Bytes>,
    delay: Duration,
    sleep: Option<Pin<Box<Sleep>>>,
    ending: Ending,
    break_now: bool,
    guard: CancelGuard,
}

impl SseBody {
    pub(crate) fn new(
        events: VecDeque<Bytes>,
        delay: Duration,
        ending: Ending,
        guard: CancelGuard,
    ) -> Self {
        SseBody {
            events,
            delay,
            sleep: None,
            ending,
            break_now: false,
            guard,
        }
    }

    pub(crate) fn into_response(self, content_type: &'static str) -> Response {
        response(StatusCode::OK, content_type, Body::new(self))
    }
}

impl http_body::Body for SseBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, std::io::Error>>> {
        if let Some(sleep) = self.sleep.as_mut() {
            if sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            self.sleep = None;
        }
        if let Some(event) = self.events.pop_front() {
            if !self.delay.is_zero() && !self.events.is_empty() {
                self.sleep = Some(Box::pin(tokio::time::sleep(self.delay)));
            }
            return Poll::Ready(Some(Ok(http_body::Frame::data(event))));
        }
        match self.ending {
            Ending::Done => {
                self.guard.finish();
                Poll::Ready(None)
            }
            // Never woken: only dropping the body (the caller going away) ends it.
            Ending::Stall => Poll::Pending,
            // Break only after the events were flushed, so the head and first events are out.
            Ending::Break if !self.break_now => {
                self.break_now = true;
                self.sleep = Some(Box::pin(tokio::time::sleep(Duration::from_millis(100))));
                self.poll_frame(cx)
            }
            Ending::Break => {
                self.guard.finish();
                Poll::Ready(Some(Err(std::io::Error::other(
                    "mock provider broke the stream",
                ))))
            }
        }
    }
}

pub(crate) fn response(status: StatusCode, content_type: &'static str, body: Body) -> Response {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

pub(crate) fn json_response(status: StatusCode, value: &serde_json::Value) -> Response {
    response(status, "application/json", Body::from(value.to_string()))
}
