//! Log output. Tracing events and access-log lines go to stdout through one buffered sink: a
//! request appends its line to a shared buffer (a memcpy under a lock never held across I/O),
//! and a background thread writes the buffer out 100 ms after its first line, or sooner once
//! it fills; with nothing to write it sleeps. That keeps the write syscall, and the cost of
//! formatting through `fmt`, off the request path, and an idle gateway idle.

use std::io::Write;
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::Duration;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

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
        LogFormat::Text => builder.with_ansi(false).init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .init(),
    }
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
