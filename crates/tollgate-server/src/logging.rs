//! Log output. Tracing events and access-log lines go to stdout through one buffered sink: a
//! request appends its line to a shared buffer (a memcpy under a lock never held across I/O),
//! and a background thread writes the buffer out 100 ms after its first line, or sooner once
//! it fills; with nothing to write it sleeps. That keeps the write syscall, and the cost of
//! formatting through `fmt`, off the request path, and an idle gateway idle.
//!
//! A tracing line logged while a request is served carries its `request_id`, as its access
//! line does: the id travels with the request's task (a task-local), so it costs nothing until
//! something logs.

use std::fmt::Write as _;
use std::future::Future;
use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::Duration;

use tracing::{Event, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// `2026-01-02T03:04:05.678901Z  INFO target: message key=value …`
    Text,
    /// One JSON object per line, fields at the top level.
    Json,
}

const FLUSH_INTERVAL: Duration = Duration::from_millis(100);
const FLUSH_AT_BYTES: usize = 64 * 1024;

struct Sink {
    buffer: Mutex<Vec<u8>>,
    /// Signalled when the buffer gets its first line, and when it fills.
    ready: Condvar,
}

static SINK: OnceLock<Sink> = OnceLock::new();
static FORMAT: OnceLock<LogFormat> = OnceLock::new();

/// Installs the log output for the process: `RUST_LOG` filters (default `info`), `format`
/// shapes the lines. Call once, at start-up.
pub fn init(format: LogFormat) {
    let _ = FORMAT.set(format);
    let sink = SINK.get_or_init(|| Sink {
        buffer: Mutex::new(Vec::with_capacity(FLUSH_AT_BYTES * 2)),
        ready: Condvar::new(),
    });
    std::thread::Builder::new()
        .name("tollgate-log".into())
        .spawn(move || flush_loop(sink))
        .expect("the log thread starts");

    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(SinkWriter);
    match format {
        LogFormat::Text => builder
            .with_ansi(false)
            .event_format(WithRequestId {
                inner: tracing_subscriber::fmt::format(),
                format,
            })
            .init(),
        LogFormat::Json => builder
            .json()
            .event_format(WithRequestId {
                inner: tracing_subscriber::fmt::format()
                    .json()
                    .flatten_event(true)
                    .with_current_span(false),
                format,
            })
            .init(),
    }
}

tokio::task_local! {
    static REQUEST_ID: Arc<str>;
}

/// Runs `serving` (the serving of request `id`) so that every tracing line it logs carries
/// `request_id`.
pub(crate) async fn for_request<F: Future>(id: Arc<str>, serving: F) -> F::Output {
    REQUEST_ID.scope(id, serving).await
}

/// The `inner` line, with `request_id` added when a request is being served: last in a text
/// line, the last field of a JSON one.
struct WithRequestId<F> {
    inner: F,
    format: LogFormat,
}

impl<S, N, F> FormatEvent<S, N> for WithRequestId<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let Ok(id) = REQUEST_ID.try_with(Arc::clone) else {
            return self.inner.format_event(ctx, writer, event);
        };
        let mut line = String::with_capacity(256);
        self.inner
            .format_event(ctx, Writer::new(&mut line), event)?;
        let mut end = line.trim_end_matches('\n').len();
        let mut field = String::with_capacity(id.len() + 16);
        match self.format {
            LogFormat::Text => {
                field.push_str(" request_id=");
                push_text_value(&mut field, &id);
            }
            LogFormat::Json => {
                end = line[..end].rfind('}').unwrap_or(end);
                field.push_str(",\"request_id\":");
                push_json_string(&mut field, &id);
            }
        }
        line.insert_str(end, &field);
        writer.write_str(&line)
    }
}

/// `text` as a text line's value: bare when it can be, else quoted and escaped.
pub(crate) fn push_text_value(out: &mut String, text: &str) {
    let bare = !text.is_empty()
        && !text
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b == b'"' || b == b'=' || b.is_ascii_control());
    if bare {
        out.push_str(text);
    } else {
        let _ = write!(out, "{text:?}");
    }
}

/// `text` as a JSON string.
pub(crate) fn push_json_string(out: &mut String, text: &str) {
    out.push('"');
    for ch in text.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Writes out whatever is buffered. Call before the process exits.
pub fn flush() {
    if let Some(sink) = SINK.get() {
        let pending = std::mem::take(&mut *sink.buffer.lock().unwrap_or_else(|e| e.into_inner()));
        write_out(&pending);
    }
}

/// The format access lines are written in, once logging is initialised.
pub(crate) fn format() -> LogFormat {
    FORMAT.get().copied().unwrap_or(LogFormat::Text)
}

/// Appends one complete line (ending in `\n`).
pub(crate) fn write_line(line: &[u8]) {
    let Some(sink) = SINK.get() else {
        return;
    };
    let mut buffer = sink.buffer.lock().unwrap_or_else(|e| e.into_inner());
    let was_empty = buffer.is_empty();
    buffer.extend_from_slice(line);
    if was_empty || buffer.len() >= FLUSH_AT_BYTES {
        sink.ready.notify_one();
    }
}

fn flush_loop(sink: &'static Sink) {
    let mut spare = Vec::with_capacity(FLUSH_AT_BYTES * 2);
    loop {
        {
            let buffer = sink.buffer.lock().unwrap_or_else(|e| e.into_inner());
            let buffer = sink
                .ready
                .wait_while(buffer, |b| b.is_empty())
                .unwrap_or_else(|e| e.into_inner());
            let (mut buffer, _) = sink
                .ready
                .wait_timeout_while(buffer, FLUSH_INTERVAL, |b| b.len() < FLUSH_AT_BYTES)
                .unwrap_or_else(|e| e.into_inner());
            std::mem::swap(&mut *buffer, &mut spare);
        }
        write_out(&spare);
        spare.clear();
    }
}

fn write_out(bytes: &[u8]) {
    if bytes.is_empty() {
        return;
    }
    let mut stdout = std::io::stdout().lock();
    // Nowhere left to report a failing stdout; the gateway keeps serving.
    let _ = stdout.write_all(bytes);
    let _ = stdout.flush();
}

/// tracing's writer: each event is formatted into a line and appended to the sink.
#[derive(Clone, Copy)]
struct SinkWriter;

struct LineBuffer(Vec<u8>);

impl Write for LineBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LineBuffer {
    fn drop(&mut self) {
        write_line(&self.0);
    }
}

impl<'a> MakeWriter<'a> for SinkWriter {
    type Writer = LineBuffer;

    fn make_writer(&'a self) -> Self::Writer {
        LineBuffer(Vec::with_capacity(256))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_values_are_quoted_only_when_needed() {
        for (text, written) in [
            ("gpt-4o", "gpt-4o"),
            ("my model", r#""my model""#),
            ("a=b", r#""a=b""#),
            ("", r#""""#),
        ] {
            let mut out = String::new();
            push_text_value(&mut out, text);
            assert_eq!(out, written);
        }
    }

    #[test]
    fn json_strings_are_escaped() {
        let mut out = String::new();
        push_json_string(&mut out, "a \"b\"\\\n\u{1}");
        assert_eq!(out, r#""a \"b\"\\\n\u0001""#);
        let parsed: String = serde_json::from_str(&out).unwrap();
        assert_eq!(parsed, "a \"b\"\\\n\u{1}");
    }
}
