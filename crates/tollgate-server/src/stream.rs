//! A provider stream on its way to the client: forwarded as it arrives through the format's
//! observer, bounded by the deployment's total timeout, and ended with an error event (never a
//! silent cut) if the provider fails mid-way. Its access-log line is written when it ends — or
//! when the client disconnects, which drops this body and with it the provider connection.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame};
use tokio::time::{Instant, Sleep};
use tollgate_core::error::GatewayError;
use tollgate_translate::openai_stream::OpenAiStreamObserver;
use tollgate_upstream::UpstreamBody;

use crate::access_log::{AccessRecord, Outcome};

pub(crate) struct ObservedStream {
    upstream: UpstreamBody,
    observer: OpenAiStreamObserver,
    /// Bytes ready for the client, in order.
    ready: VecDeque<Bytes>,
    deadline: Pin<Box<Sleep>>,
    record: AccessRecord,
    upstream_done: bool,
}

impl ObservedStream {
    pub(crate) fn new(
        upstream: UpstreamBody,
        observer: OpenAiStreamObserver,
        deadline: Instant,
        record: AccessRecord,
    ) -> Self {
        ObservedStream {
            upstream,
            observer,
            ready: VecDeque::with_capacity(2),
            deadline: Box::pin(tokio::time::sleep_until(deadline)),
            record,
            upstream_done: false,
        }
    }

    /// Ends the stream with an error event in the client's format.
    fn fail(&mut self, err: GatewayError) {
        self.observer.on_end(&mut self.ready);
        let event = format!("data: {}\n\n", err.to_json());
        self.ready.push_back(Bytes::from(event));
        self.record.fail_stream(&err);
        self.upstream_done = true;
    }

    fn finish(&mut self) {
        self.observer.on_end(&mut self.ready);
        self.record.outcome = Outcome::Completed;
        self.upstream_done = true;
    }
}

impl Body for ObservedStream {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        loop {
            if let Some(bytes) = this.ready.pop_front() {
                return Poll::Ready(Some(Ok(Frame::data(bytes))));
            }
            if this.upstream_done {
                this.record.usage = this.observer.usage();
                this.record.write();
                return Poll::Ready(None);
            }
            match Pin::new(&mut this.upstream).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        this.observer.on_bytes(data, &mut this.ready);
                    }
                }
                Poll::Ready(Some(Err(err))) => this.fail(err),
                Poll::Ready(None) => this.finish(),
                Poll::Pending => {
                    if this.deadline.as_mut().poll(cx).is_ready() {
                        this.fail(GatewayError::upstream_timeout(
                            "The provider did not finish the stream within the deployment's timeout.",
                        ));
                        continue;
                    }
                    return Poll::Pending;
                }
            }
        }
    }
}

impl Drop for ObservedStream {
    fn drop(&mut self) {
        // A stream dropped before its end means the client went away; the record's own drop
        // writes the line as a disconnect. Usage seen so far is still recorded.
        self.record.usage = self.observer.usage();
    }
}
