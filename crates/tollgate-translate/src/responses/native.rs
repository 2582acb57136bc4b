//! Responses API requests passed to a provider that has the API (OpenAI, Azure): the answer
//! is relayed as the provider wrote it; the gateway only reads the response id (to find the
//! provider again for later calls on it) and the usage.

use std::collections::VecDeque;

use bytes::Bytes;
use serde::Deserialize;
use tollgate_core::error::GatewayError;

use crate::canonical::{StreamTransform, TokenUsage};
use crate::sse::{EventFramer, event_data};

/// Called once with the response id the provider gave.
pub type OnId = Box<dyn FnOnce(&str) + Send>;

#[derive(Debug, Default, Deserialize)]
pub struct ResponseHead {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub usage: Option<ResponsesUsage>,
}

#[derive(Debug, Default, Clone, Copy, Deserialize)]
pub struct ResponsesUsage {
    #[serde(default)]
    pub input_tokens: u64,
    #[serde(default)]
    pub output_tokens: u64,
    #[serde(default)]
    pub input_tokens_details: Option<InputDetails>,
    #[serde(default)]
    pub output_tokens_details: Option<OutputDetails>,
}

#[derive(Debug, Default, Clone, Copy, Deserialize)]
pub struct InputDetails {
    #[serde(default)]
    pub cached_tokens: u64,
}

#[derive(Debug, Default, Clone, Copy, Deserialize)]
pub struct OutputDetails {
    #[serde(default)]
    pub reasoning_tokens: u64,
}

impl ResponsesUsage {
    pub fn token_usage(&self) -> TokenUsage {
        TokenUsage {
            input: self.input_tokens,
            output: self.output_tokens,
            cache_read: self.input_tokens_details.map_or(0, |d| d.cached_tokens),
            cache_write: 0,
            cache_write_1h: 0,
            reasoning: self.output_tokens_details.map_or(0, |d| d.reasoning_tokens),
        }
    }
}

#[derive(Deserialize)]
struct EventHead {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    response: Option<ResponseHead>,
}

/// Watches a native Responses stream: forwards every byte, reads the id from
/// `response.created` and the usage from the terminal event.
pub struct NativeResponsesObserver {
    events: EventFramer,
    usage: Option<TokenUsage>,
    on_id: Option<OnId>,
}

impl NativeResponsesObserver {
    pub fn new(on_id: Option<OnId>) -> Self {
        NativeResponsesObserver {
            events: EventFramer::default(),
            usage: None,
            on_id,
        }
    }

    fn inspect(&mut self, event: &[u8]) {
        // Only the events that carry the response object are parsed.
        if memchr::memmem::find(event, b"\"response\"").is_none() {
            return;
        }
        let Some(data) = event_data(event) else {
            return;
        };
        let Ok(head) = serde_json::from_slice::<EventHead>(&data) else {
            return;
        };
        let Some(response) = head.response else {
            return;
        };
        if head.kind == "response.created"
            && let (Some(id), Some(on_id)) = (&response.id, self.on_id.take())
        {
            on_id(id);
        }
        if let Some(usage) = response.usage {
            self.usage = Some(usage.token_usage());
        }
    }
}

impl StreamTransform for NativeResponsesObserver {
    fn on_bytes(&mut self, chunk: Bytes, out: &mut VecDeque<Bytes>) -> Result<(), GatewayError> {
        self.events.push(&chunk);
        while let Some(event) = self.events.next_event() {
            self.inspect(&event);
        }
        out.push_back(chunk);
        Ok(())
    }

    fn on_end(&mut self, _out: &mut VecDeque<Bytes>) -> Result<(), GatewayError> {
        if let Some(rest) = self.events.rest() {
            self.inspect(&rest);
        }
        Ok(())
    }

    fn on_error(&mut self, err: &GatewayError, out: &mut VecDeque<Bytes>) {
        let code = err.code.as_deref().unwrap_or(err.kind.as_str());
        let event = serde_json::json!({"type": "error", "code": code, "message": err.message, "param": err.param});
        out.push_back(Bytes::from(format!("event: error\ndata: {event}\n\n")));
    }

    fn usage(&self) -> Option<TokenUsage> {
        self.usage
    }
}
