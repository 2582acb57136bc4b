//! Watches an Anthropic stream passing through unchanged (Anthropic client, Anthropic
//! provider): every read is forwarded as it arrives; only `message_start` and
//! `message_delta` events are parsed, for the usage.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};
use tollgate_core::error::GatewayError;
use tollgate_wire::anthropic::{StreamEvent, Usage};

use super::errors::error_body;
use super::outbound::token_usage;
use crate::canonical::{StreamTransform, TokenUsage};
use crate::sse::{EventScanner, event_data, event_name};

#[derive(Debug, Default)]
pub struct AnthropicStreamObserver {
    /// The start of an event whose end has not arrived yet (a copy; the bytes themselves were
    /// already forwarded).
    pending: BytesMut,
    scanner: EventScanner,
    usage: Option<Usage>,
}

impl AnthropicStreamObserver {
    fn inspect(&mut self, event: &[u8]) {
        let interesting = matches!(
            event_name(event),
            Some(b"message_start") | Some(b"message_delta") | None
        );
        if !interesting {
            return;
        }
        let Some(data) = event_data(event) else {
            return;
        };
        let Ok(parsed) = serde_json::from_slice::<StreamEvent<'_>>(&data) else {
            return;
        };
        match parsed.kind.as_ref() {
            "message_start" => self.usage = parsed.message.map(|m| m.usage),
            "message_delta" => {
                if let Some(delta) = parsed.usage {
                    let usage = self.usage.get_or_insert_with(Usage::default);
                    // Cumulative figures: the latest replace the earlier ones.
                    usage.output_tokens = delta.output_tokens;
                    if delta.input_tokens > 0 {
                        usage.input_tokens = delta.input_tokens;
                    }
                    if delta.cache_read_input_tokens.is_some() {
                        usage.cache_read_input_tokens = delta.cache_read_input_tokens;
                    }
                    if delta.cache_creation_input_tokens.is_some() {
                        usage.cache_creation_input_tokens = delta.cache_creation_input_tokens;
                    }
                    if delta.cache_creation.is_some() {
                        usage.cache_creation = delta.cache_creation;
                    }
                }
            }
            _ => {}
        }
    }

    fn scan(&mut self, data: &[u8]) -> usize {
        let mut start = 0;
        while let Some(end) = self.scanner.next_event_end(data) {
            self.inspect(&data[start..end]);
            start = end;
        }
        start
    }
}

impl StreamTransform for AnthropicStreamObserver {
    fn on_bytes(&mut self, chunk: Bytes, out: &mut VecDeque<Bytes>) -> Result<(), GatewayError> {
        if self.pending.is_empty() {
            let consumed = self.scan(&chunk);
            self.pending.extend_from_slice(&chunk[consumed..]);
            self.scanner.rebase(consumed);
        } else {
            self.pending.extend_from_slice(&chunk);
            let data = self.pending.split();
            let consumed = self.scan(&data);
            self.pending.extend_from_slice(&data[consumed..]);
            self.scanner.rebase(consumed);
        }
        out.push_back(chunk);
        Ok(())
    }

    fn on_end(&mut self, _out: &mut VecDeque<Bytes>) -> Result<(), GatewayError> {
        if !self.pending.is_empty() {
            let rest = self.pending.split();
            self.inspect(&rest);
        }
        Ok(())
    }

    fn on_error(&mut self, err: &GatewayError, out: &mut VecDeque<Bytes>) {
        out.push_back(Bytes::from(format!(
            "event: error\ndata: {}\n\n",
            error_body(err)
        )));
    }

    fn usage(&self) -> Option<TokenUsage> {
        self.usage.as_ref().map(token_usage)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwards_bytes_untouched_and_reads_usage_across_split_reads() {
        let stream = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude\",\"usage\":{\"input_tokens\":10,\"cache_read_input_tokens\":5,\"output_tokens\":1}}}\n\n\
event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"hi\"}}\n\n\
event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":7}}\n\n\
event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
        let mut observer = AnthropicStreamObserver::default();
        let mut out = VecDeque::new();
        for piece in stream.as_bytes().chunks(13) {
            observer
                .on_bytes(Bytes::copy_from_slice(piece), &mut out)
                .unwrap();
        }
        observer.on_end(&mut out).unwrap();
        let forwarded: Vec<u8> = out.iter().flat_map(|b| b.iter().copied()).collect();
        assert_eq!(forwarded, stream.as_bytes());
        assert_eq!(
            observer.usage(),
            Some(TokenUsage {
                input: 15,
                output: 7,
                cache_read: 5,
                ..TokenUsage::default()
            })
        );
    }
}
