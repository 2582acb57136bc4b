//! A provider stream on its way to the client: forwarded as it arrives through its transform
//! (an observer, or a translation), bounded by the deployment's total timeout and by its idle
//! timeout between chunks, and ended with an error event (never a silent cut) if the provider
//! fails or stalls mid-way. Its access-log line is written when it ends — or
//! when the client disconnects, which drops this body and with it the provider connection.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame};
use tokio::time::{Instant, Sleep};
use tollgate_core::error::GatewayError;
use tollgate_translate::canonical::StreamTransform;
use tollgate_upstream::UpstreamBody;

use crate::access_log::{AccessRecord, Outcome};

pub(crate) struct ObservedStream {
    upstream: UpstreamBody,
    transform: Box<dyn StreamTransform>,
    /// Bytes ready for the client, in order.
    ready: VecDeque<Bytes>,
    /// The end of the whole exchange (the deployment's `timeout`).
    deadline: Instant,
    /// The longest silence allowed between chunks, and when the last one came.
    idle_timeout: Duration,
    last_data: Instant,
    /// Fires at the earlier of `deadline` and `last_data + idle_timeout` as of when it was
    /// set; re-armed only when it fires, not on every chunk.
    timer: Pin<Box<Sleep>>,
    record: AccessRecord,
    upstream_done: bool,
    /// Yields in a row that brought no new provider data (see `poll_frame`).
    empty_yields: u8,
    first_sent: bool,
}

impl ObservedStream {
    /// `first`: the provider's first chunk, already read.
    pub(crate) fn new(
        upstream: UpstreamBody,
        first: Option<Bytes>,
        mut transform: Box<dyn StreamTransform>,
        deadline: Instant,
        idle_timeout: Duration,
        record: AccessRecord,
    ) -> Self {
        let now = Instant::now();
        let mut ready = VecDeque::with_capacity(2);
        let first_result = match first {
            Some(first) => transform.on_bytes(first, &mut ready),
            None => Ok(()),
        };
        let mut stream = ObservedStream {
            upstream,
            transform,
            ready,
            deadline,
            idle_timeout,
            last_data: now,
            timer: Box::pin(tokio::time::sleep_until(deadline.min(now + idle_timeout))),
            record,
            upstream_done: false,
            empty_yields: 0,
            first_sent: false,
        };
        if let Err(err) = first_result {
            stream.fail(err);
        } else if stream.upstream.is_end_stream() {
            stream.finish();
        }
        stream
    }

    /// Ends the stream with an error event in the client's format.
    fn fail(&mut self, err: GatewayError) {
        self.transform.on_error(&err, &mut self.ready);
        self.record.fail_stream(&err);
        self.upstream_done = true;
    }

    fn finish(&mut self) {
        match self.transform.on_end(&mut self.ready) {
            Ok(()) => {
                self.record.outcome = Outcome::Completed;
                self.upstream_done = true;
            }
            Err(err) => self.fail(err),
        }
    }
}

impl ObservedStream {
    /// Everything ready, as one frame: events that arrived together leave in one write.
    fn take_ready(&mut self) -> Bytes {
        let frame = if self.ready.len() == 1 {
            self.ready.pop_front().expect("one frame")
        } else {
            let total = self.ready.iter().map(Bytes::len).sum();
            let mut joined = BytesMut::with_capacity(total);
            for bytes in self.ready.drain(..) {
                joined.extend_from_slice(&bytes);
            }
            joined.freeze()
        };
        // Counted for the estimate a stream cut short is charged by, when the provider's own
        // count never comes.
        self.record.events_sent += memchr::memmem::find_iter(&frame, b"data:").count() as u64;
        frame
    }

    fn ready_len(&self) -> usize {
        self.ready.iter().map(Bytes::len).sum()
    }

    /// Called when the timer fires: the timeout that has passed, if one has; otherwise the
    /// timer is moved to the next moment one could.
    fn timed_out(&mut self) -> Option<GatewayError> {
        let now = Instant::now();
        if now >= self.deadline {
            return Some(GatewayError::upstream_timeout(
                "The provider did not finish the stream within the deployment's timeout.",
            ));
        }
        let idle_until = self.last_data + self.idle_timeout;
        if now >= idle_until {
            return Some(GatewayError::upstream_timeout(format!(
                "The provider sent nothing for {}s in the middle of the stream.",
                self.idle_timeout.as_secs_f64()
            )));
        }
        self.timer.as_mut().reset(self.deadline.min(idle_until));
        None
    }

    /// The stream is over on the provider's side: the log line can be written.
    fn write_record(&mut self) {
        self.record.usage = self.transform.usage();
        self.record.write();
    }
}

/// Trips through the run queue to wait for the provider's next chunk before sending what is
/// ready (measured: hyper's client delivers a buffered chunk within two).
const MAX_EMPTY_YIELDS: u8 = 2;

/// Past this much ready data, it is sent even if the provider has more waiting.
const MAX_COALESCED_BYTES: usize = 64 * 1024;

impl Body for ObservedStream {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        loop {
            if this.upstream_done {
                this.write_record();
                if this.ready.is_empty() {
                    return Poll::Ready(None);
                }
                return Poll::Ready(Some(Ok(Frame::data(this.take_ready()))));
            }
            if this.ready_len() >= MAX_COALESCED_BYTES {
                return Poll::Ready(Some(Ok(Frame::data(this.take_ready()))));
            }
            // Read everything the provider has ready now; send it when it has no more.
            match Pin::new(&mut this.upstream).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        this.last_data = Instant::now();
                        if let Err(err) = this.transform.on_bytes(data, &mut this.ready) {
                            this.fail(err);
                            continue;
                        }
                    }
                    this.empty_yields = 0;
                    if this.upstream.is_end_stream() {
                        this.finish();
                    }
                }
                Poll::Ready(Some(Err(err))) => this.fail(err),
                Poll::Ready(None) => this.finish(),
                // hyper's client hands a response over one chunk per task wake-up, even when a
                // whole burst already sits in its buffer. So, once the first event is out (it
                // leaves with the response head at once), re-queue behind the other ready tasks
                // up to MAX_EMPTY_YIELDS times in a row and gather what arrives: one write per
                // burst instead of one per event. A real pause between events costs only those
                // trips through the run queue.
                Poll::Pending if !this.ready.is_empty() => {
                    if this.first_sent && this.empty_yields < MAX_EMPTY_YIELDS {
                        this.empty_yields += 1;
                        cx.waker().wake_by_ref();
                        return Poll::Pending;
                    }
                    this.first_sent = true;
                    this.empty_yields = 0;
                    return Poll::Ready(Some(Ok(Frame::data(this.take_ready()))));
                }
                Poll::Pending => {
                    while this.timer.as_mut().poll(cx).is_ready() {
                        if let Some(err) = this.timed_out() {
                            this.fail(err);
                            break;
                        }
                    }
                    if this.upstream_done {
                        continue;
                    }
                    return Poll::Pending;
                }
            }
        }
    }

    /// True once the last bytes are handed over, so the end of the response goes out with
    /// them rather than in a write of its own.
    fn is_end_stream(&self) -> bool {
        self.upstream_done && self.ready.is_empty()
    }
}

impl Drop for ObservedStream {
    fn drop(&mut self) {
        // A stream dropped before its end means the client went away; the record's own drop
        // writes the line as a disconnect. Usage seen so far is still recorded.
        self.record.usage = self.transform.usage();
    }
}
