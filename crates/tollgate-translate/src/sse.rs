//! Server-sent events: finding where each event ends in a byte stream, and reading its fields.
//!
//! The scanner is incremental: it remembers how far it has looked, so a partial event that
//! arrives over several reads is never re-scanned from its start.

use std::borrow::Cow;

use bytes::BytesMut;

/// Finds event boundaries (a blank line) across reads. Accepts `\n`, `\r\n` and `\r` line
/// endings, as the SSE specification does.
#[derive(Debug, Default, Clone)]
pub struct EventScanner {
    /// Where scanning resumes.
    pos: usize,
    /// Start of the line being scanned.
    line_start: usize,
}

impl EventScanner {
    /// The end (exclusive, after the blank line) of the next complete event in `data`, scanning
    /// from where the previous call stopped. `None` when `data` holds no further complete event.
    pub fn next_event_end(&mut self, data: &[u8]) -> Option<usize> {
        while self.pos < data.len() {
            let Some(offset) = memchr::memchr2(b'\n', b'\r', &data[self.pos..]) else {
                self.pos = data.len();
                return None;
            };
            let at = self.pos + offset;
            let terminator_len = if data[at] == b'\r' {
                match data.get(at + 1) {
                    Some(b'\n') => 2,
                    Some(_) => 1,
                    // A `\r` at the end may be the first half of `\r\n`: wait for more bytes.
                    None => {
                        self.pos = at;
                        return None;
                    }
                }
            } else {
                1
            };
            let line_was_empty = at == self.line_start;
            self.pos = at + terminator_len;
            self.line_start = self.pos;
            if line_was_empty {
                return Some(self.pos);
            }
        }
        None
    }

    /// Shifts positions after the first `consumed` bytes of the data were taken away.
    pub fn rebase(&mut self, consumed: usize) {
        self.pos -= consumed;
        self.line_start -= consumed;
    }

    pub fn reset(&mut self) {
        *self = EventScanner::default();
    }
}

/// Whole events out of a byte stream for decoders that read every event: bytes are pushed as
/// they arrive, complete events taken out one by one, and what is left when the stream ends.
#[derive(Debug, Default)]
pub struct EventFramer {
    pending: BytesMut,
    scanner: EventScanner,
}

impl EventFramer {
    pub fn push(&mut self, chunk: &[u8]) {
        self.pending.extend_from_slice(chunk);
    }

    /// The next complete event (its blank line included), if one has arrived.
    pub fn next_event(&mut self) -> Option<BytesMut> {
        let end = self.scanner.next_event_end(&self.pending)?;
        self.scanner.rebase(end);
        Some(self.pending.split_to(end))
    }

    /// At the end of the stream: an unterminated last event, if there is one.
    pub fn rest(&mut self) -> Option<BytesMut> {
        if self.pending.is_empty() {
            return None;
        }
        self.scanner.reset();
        Some(self.pending.split())
    }
}

/// The `data` of one event: its `data:` lines joined by `\n`, without the optional space after
/// the colon. Borrowed when the event has a single `data:` line, which is the common case.
pub fn event_data(event: &[u8]) -> Option<Cow<'_, [u8]>> {
    let mut joined: Option<Cow<'_, [u8]>> = None;
    for line in lines(event) {
        let Some(value) = line.strip_prefix(b"data") else {
            continue;
        };
        let value = match value {
            [] => value,
            [b':', b' ', rest @ ..] => rest,
            [b':', rest @ ..] => rest,
            _ => continue, // a field merely starting with "data", e.g. "database:"
        };
        joined = Some(match joined {
            None => Cow::Borrowed(value),
            Some(previous) => {
                let mut owned = previous.into_owned();
                owned.push(b'\n');
                owned.extend_from_slice(value);
                Cow::Owned(owned)
            }
        });
    }
    joined
}

/// The value of the `event:` field, if the event has one.
pub fn event_name(event: &[u8]) -> Option<&[u8]> {
    lines(event).find_map(|line| {
        let value = line.strip_prefix(b"event:")?;
        Some(value.strip_prefix(b" ").unwrap_or(value))
    })
}

fn lines(event: &[u8]) -> impl Iterator<Item = &[u8]> {
    event
        .split(|&byte| byte == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
        .filter(|line| !line.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(input: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut scanner = EventScanner::default();
        let mut buffer = Vec::new();
        let mut found = Vec::new();
        for chunk in input {
            buffer.extend_from_slice(chunk);
            while let Some(end) = scanner.next_event_end(&buffer) {
                found.push(buffer[..end].to_vec());
                buffer.drain(..end);
                scanner.rebase(end);
            }
        }
        found
    }

    #[test]
    fn splits_events_on_blank_lines() {
        let found = events(&[b"data: a\n\ndata: b\n\n"]);
        assert_eq!(
            found,
            vec![b"data: a\n\n".to_vec(), b"data: b\n\n".to_vec()]
        );
    }

    #[test]
    fn an_event_split_across_reads_is_found_once_complete() {
        let found = events(&[b"data: {\"a\"", b":1}\n", b"\ndata: [DONE]\n", b"\n"]);
        assert_eq!(
            found,
            vec![
                b"data: {\"a\":1}\n\n".to_vec(),
                b"data: [DONE]\n\n".to_vec()
            ]
        );
    }

    #[test]
    fn accepts_crlf_and_cr_line_endings() {
        let found = events(&[b"data: a\r\n\r", b"\ndata: b\r\rdata: c\n\r\n"]);
        assert_eq!(
            found,
            vec![
                b"data: a\r\n\r\n".to_vec(),
                b"data: b\r\r".to_vec(),
                b"data: c\n\r\n".to_vec()
            ]
        );
    }

    #[test]
    fn reads_data_and_event_fields() {
        let event = b"event: message_start\ndata: {\"x\":1}\n\n";
        assert_eq!(event_name(event), Some(&b"message_start"[..]));
        assert_eq!(event_data(event).as_deref(), Some(&b"{\"x\":1}"[..]));
        let multi = b"data: line one\ndata:line two\n\n";
        assert_eq!(
            event_data(multi).as_deref(),
            Some(&b"line one\nline two"[..])
        );
        assert_eq!(event_data(b": keep-alive comment\n\n"), None);
    }
}
