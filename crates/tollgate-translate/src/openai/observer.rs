//! Watches an OpenAI-format SSE stream on its way to the client: reads the usage, and hides the
//! usage-only chunk the gateway asked for on the client's behalf. Events are forwarded as the
//! provider wrote them, never re-encoded; bytes are copied only when an event straddles reads.

use std::collections::VecDeque;
use std::sync::LazyLock;

use bytes::{Bytes, BytesMut};
use memchr::memmem::Finder;
use tollgate_core::error::GatewayError;
use tollgate_wire::openai::{StreamChunkHead, Usage};

use crate::canonical::{OpenAiUsage, StreamTransform, TokenUsage};
use crate::sse::{EventScanner, event_data};

static USAGE_KEY: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"usage\""));

/// The state of one OpenAI-format stream passing through.
#[derive(Debug)]
pub struct OpenAiStreamObserver {
    /// The start of an event whose end has not arrived yet.
    pending: BytesMut,
    scanner: EventScanner,
    hide_usage_chunk: bool,
    usage: Option<Usage>,
    saw_done: bool,
}

/// What to do with one event.
enum Verdict {
    Forward,
    Hide,
}

impl OpenAiStreamObserver {
    /// `hide_usage_chunk`: the client did not ask for usage, so the usage-only chunk (empty
    /// `choices`) that the gateway's injected `include_usage` produces must not reach it.
    pub fn new(hide_usage_chunk: bool) -> Self {
        OpenAiStreamObserver {
            pending: BytesMut::new(),
            scanner: EventScanner::default(),
            hide_usage_chunk,
            usage: None,
            saw_done: false,
        }
    }

    /// Feeds bytes read from the provider; appends what the client should receive to `out`.
    /// Complete events are forwarded at once; an incomplete one waits for its end.
    pub fn on_bytes(&mut self, chunk: Bytes, out: &mut VecDeque<Bytes>) {
        let data = if self.pending.is_empty() {
            chunk
        } else {
            self.pending.extend_from_slice(&chunk);
            self.pending.split().freeze()
        };

        let mut forward_from = 0;
        let mut event_start = 0;
        while let Some(event_end) = self.scanner.next_event_end(&data) {
            if let Verdict::Hide = self.inspect(&data[event_start..event_end]) {
                if event_start > forward_from {
                    out.push_back(data.slice(forward_from..event_start));
                }
                forward_from = event_end;
            }
            event_start = event_end;
        }
        if event_start > forward_from {
            out.push_back(data.slice(forward_from..event_start));
        }
        if event_start < data.len() {
            self.pending.extend_from_slice(&data[event_start..]);
        }
        self.scanner.rebase(event_start);
    }

    /// The provider's stream ended: releases an unterminated last event, if any.
    pub fn on_end(&mut self, out: &mut VecDeque<Bytes>) {
        if self.pending.is_empty() {
            return;
        }
        let rest = self.pending.split().freeze();
        self.scanner.reset();
        if let Verdict::Forward = self.inspect(&rest) {
            out.push_back(rest);
        }
    }

    /// The last usage the provider reported, if it reported any.
    pub fn reported_usage(&self) -> Option<Usage> {
        self.usage
    }

    /// Whether the provider sent `data: [DONE]`, i.e. the stream completed normally.
    pub fn saw_done(&self) -> bool {
        self.saw_done
    }

    fn inspect(&mut self, event: &[u8]) -> Verdict {
        if !carries_usage(event) {
            if !self.saw_done && is_done(event) {
                self.saw_done = true;
            }
            return Verdict::Forward;
        }
        let Some(data) = event_data(event) else {
            return Verdict::Forward;
        };
        let Ok(chunk) = serde_json::from_slice::<StreamChunkHead<'_>>(&data) else {
            return Verdict::Forward;
        };
        let Some(usage) = chunk.usage else {
            return Verdict::Forward;
        };
        self.usage = Some(usage);
        let no_choices = chunk
            .choices
            .value()
            .is_none_or(|raw| is_empty_array(raw.get()));
        if self.hide_usage_chunk && no_choices {
            Verdict::Hide
        } else {
            Verdict::Forward
        }
    }
}

/// Cheap pre-check: the event has a `"usage"` key whose value is not `null`. Only such events
/// are parsed; the rest are forwarded after this scan alone.
impl StreamTransform for OpenAiStreamObserver {
    fn on_bytes(&mut self, chunk: Bytes, out: &mut VecDeque<Bytes>) -> Result<(), GatewayError> {
        OpenAiStreamObserver::on_bytes(self, chunk, out);
        Ok(())
    }

    fn on_end(&mut self, out: &mut VecDeque<Bytes>) -> Result<(), GatewayError> {
        OpenAiStreamObserver::on_end(self, out);
        Ok(())
    }

    fn on_error(&mut self, err: &GatewayError, out: &mut VecDeque<Bytes>) {
        out.push_back(Bytes::from(format!("data: {}\n\n", err.to_json())));
    }

    fn usage(&self) -> Option<TokenUsage> {
        self.usage.as_ref().map(TokenUsage::from_openai)
    }
}

fn carries_usage(event: &[u8]) -> bool {
    USAGE_KEY.find_iter(event).any(|at| {
        let rest = &event[at + b"\"usage\"".len()..];
        let rest = trim_start(rest);
        match rest.strip_prefix(b":") {
            Some(value) => !trim_start(value).starts_with(b"null"),
            None => false,
        }
    })
}

fn is_empty_array(json: &str) -> bool {
    json.strip_prefix('[')
        .and_then(|inner| inner.strip_suffix(']'))
        .is_some_and(|inner| inner.trim().is_empty())
}

/// `data: [DONE]`. Only short events can be it, so content events skip the field parsing.
fn is_done(event: &[u8]) -> bool {
    event.len() <= 32 && event_data(event).is_some_and(|data| data.trim_ascii() == b"[DONE]")
}

fn trim_start(bytes: &[u8]) -> &[u8] {
    let skip = bytes.iter().take_while(|b| b.is_ascii_whitespace()).count();
    &bytes[skip..]
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONTENT: &str = "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"usage\"}}],\"usage\":null}\n\n";
    const USAGE: &str = "data: {\"id\":\"c1\",\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":3,\"total_tokens\":12}}\n\n";
    const DONE: &str = "data: [DONE]\n\n";

    fn run(hide: bool, reads: &[&str]) -> (String, OpenAiStreamObserver) {
        let mut observer = OpenAiStreamObserver::new(hide);
        let mut out = VecDeque::new();
        for read in reads {
            observer.on_bytes(Bytes::copy_from_slice(read.as_bytes()), &mut out);
        }
        observer.on_end(&mut out);
        let text: Vec<u8> = out.iter().flat_map(|b| b.iter().copied()).collect();
        (String::from_utf8(text).unwrap(), observer)
    }

    fn expected_usage() -> Option<Usage> {
        Some(Usage {
            prompt_tokens: Some(9),
            completion_tokens: Some(3),
            total_tokens: Some(12),
            ..Usage::default()
        })
    }

    #[test]
    fn hides_the_usage_chunk_but_records_its_usage() {
        let all = format!("{CONTENT}{USAGE}{DONE}");
        let (text, observer) = run(true, &[&all]);
        assert_eq!(text, format!("{CONTENT}{DONE}"));
        assert_eq!(observer.reported_usage(), expected_usage());
        assert!(observer.saw_done());
    }

    #[test]
    fn forwards_the_usage_chunk_when_the_client_asked_for_it() {
        let all = format!("{CONTENT}{USAGE}{DONE}");
        let (text, observer) = run(false, &[&all]);
        assert_eq!(text, all);
        assert_eq!(observer.reported_usage(), expected_usage());
    }

    #[test]
    fn handles_events_split_at_every_byte() {
        let all = format!("{CONTENT}{USAGE}{DONE}");
        let reads: Vec<String> = all.chars().map(String::from).collect();
        let reads: Vec<&str> = reads.iter().map(String::as_str).collect();
        let (text, observer) = run(true, &reads);
        assert_eq!(text, format!("{CONTENT}{DONE}"));
        assert_eq!(observer.reported_usage(), expected_usage());
    }

    #[test]
    fn never_hides_a_chunk_that_carries_content_with_its_usage() {
        let with_content = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"x\"}}],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":1,\"total_tokens\":2}}\n\n";
        let (text, observer) = run(true, &[with_content, DONE]);
        assert_eq!(text, format!("{with_content}{DONE}"));
        assert_eq!(observer.reported_usage().unwrap().total_tokens, Some(2));
    }

    #[test]
    fn releases_an_unterminated_last_event() {
        let (text, observer) = run(true, &[CONTENT, "data: [DONE]"]);
        assert_eq!(text, format!("{CONTENT}data: [DONE]"));
        assert!(observer.saw_done());
    }

    #[test]
    fn forwards_complete_events_without_copying() {
        let mut observer = OpenAiStreamObserver::new(true);
        let mut out = VecDeque::new();
        let read = Bytes::from(format!("{CONTENT}{CONTENT}"));
        observer.on_bytes(read.clone(), &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].as_ptr(), read.as_ptr());
    }
}
