//! The canonical form between formats. Requests are OpenAI chat requests (`ChatRequest`, with
//! LiteLLM's extensions for `cache_control` and thinking blocks). Answers are a `Completion`
//! or a sequence of `StreamEvent`s: every provider format decodes into them, every client
//! format encodes from them, so N client formats and M provider formats need N + M codecs,
//! not N × M.

use std::borrow::Cow;
use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};
use tollgate_core::error::GatewayError;
use tollgate_wire::openai::{ThinkingBlock, Usage};
use tollgate_wire::raw::JsonStr;

/// Why generation stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    Stop,
    Length,
    ToolCalls,
    ContentFilter,
}

impl FinishReason {
    pub fn openai(self) -> &'static str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
            FinishReason::ToolCalls => "tool_calls",
            FinishReason::ContentFilter => "content_filter",
        }
    }

    pub fn from_openai(reason: &str) -> FinishReason {
        match reason {
            "length" => FinishReason::Length,
            "tool_calls" | "function_call" => FinishReason::ToolCalls,
            "content_filter" => FinishReason::ContentFilter,
            _ => FinishReason::Stop,
        }
    }
}

pub use tollgate_pricing::TokenUsage;

/// OpenAI's `usage` object, the form every other usage is compared with.
pub trait OpenAiUsage {
    fn from_openai(usage: &Usage) -> Self;
    /// With cache reads and writes in `prompt_tokens_details`.
    fn to_openai_json(&self) -> serde_json::Value;
}

impl OpenAiUsage for TokenUsage {
    fn from_openai(usage: &Usage) -> TokenUsage {
        let details_cached = usage.prompt_tokens_details.and_then(|d| d.cached_tokens);
        TokenUsage {
            input: usage.prompt_tokens.unwrap_or(0),
            output: usage.completion_tokens.unwrap_or(0),
            cache_read: details_cached.unwrap_or(0),
            reasoning: usage
                .completion_tokens_details
                .and_then(|d| d.reasoning_tokens)
                .unwrap_or(0),
            ..TokenUsage::default()
        }
    }

    fn to_openai_json(&self) -> serde_json::Value {
        serde_json::json!({
            "prompt_tokens": self.input,
            "completion_tokens": self.output,
            "total_tokens": self.total(),
            "prompt_tokens_details": {
                "cached_tokens": self.cache_read,
                "cache_creation_tokens": self.cache_write,
            },
            "completion_tokens_details": {"reasoning_tokens": self.reasoning},
        })
    }
}

/// A whole answer (one choice: translation to non-OpenAI providers does not support `n > 1`).
#[derive(Debug, Default)]
pub struct Completion<'a> {
    pub id: Cow<'a, str>,
    pub model: Cow<'a, str>,
    pub created: u64,
    pub text: Option<Cow<'a, str>>,
    pub reasoning: Option<Cow<'a, str>>,
    /// Reasoning as the provider's signed blocks, to be sent back on the next turn.
    pub thinking_blocks: Vec<ThinkingBlock<'a>>,
    pub tool_calls: Vec<ToolCallOut<'a>>,
    pub refusal: Option<Cow<'a, str>>,
    pub finish_reason: Option<FinishReason>,
    pub usage: Option<TokenUsage>,
}

#[derive(Debug, Clone)]
pub struct ToolCallOut<'a> {
    pub id: Cow<'a, str>,
    pub name: Cow<'a, str>,
    /// The arguments as JSON text.
    pub arguments: Cow<'a, str>,
}

/// One piece of a streamed answer. Text travels as a JSON string literal, borrowed from the
/// provider's bytes where possible, so most events are written out without decoding.
#[derive(Debug)]
pub enum StreamEvent<'a> {
    Start {
        id: Cow<'a, str>,
        model: Cow<'a, str>,
    },
    Text(JsonStr<'a>),
    Reasoning(JsonStr<'a>),
    /// The signature closing a thinking block.
    ReasoningSignature(JsonStr<'a>),
    /// An encrypted thinking block, passed on as is.
    RedactedReasoning(JsonStr<'a>),
    /// A tool call begins. `index` counts tool calls from 0 within the answer.
    ToolCallStart {
        index: usize,
        id: Cow<'a, str>,
        name: Cow<'a, str>,
    },
    /// A fragment of a tool call's arguments (JSON text, itself a JSON string literal here).
    ToolCallArguments {
        index: usize,
        fragment: JsonStr<'a>,
    },
    Finish(FinishReason),
    /// Usage so far; the last one counts.
    Usage(TokenUsage),
}

/// Encodes canonical stream events into a client format.
pub trait StreamEncoder: Send {
    fn event(&mut self, event: StreamEvent<'_>, out: &mut BytesMut);
    /// The provider's stream ended normally.
    fn finish(&mut self, out: &mut BytesMut);
    /// The stream fails: an error event in the client's format ends it.
    fn error(&mut self, err: &GatewayError, out: &mut BytesMut);
}

/// Decodes a provider's stream into canonical events, handed to `encoder` as they complete.
pub trait StreamDecoder: Send {
    fn decode(
        &mut self,
        chunk: Bytes,
        encoder: &mut dyn StreamEncoder,
        out: &mut BytesMut,
    ) -> Result<(), GatewayError>;
    /// The provider's stream ended; releases anything held back.
    fn end(
        &mut self,
        encoder: &mut dyn StreamEncoder,
        out: &mut BytesMut,
    ) -> Result<(), GatewayError>;
}

/// What the server's stream relay drives: provider bytes in, client frames out, usage read on
/// the way. Either an observer (same format both sides) or a decoder-encoder pair.
pub trait StreamTransform: Send {
    fn on_bytes(&mut self, chunk: Bytes, out: &mut VecDeque<Bytes>) -> Result<(), GatewayError>;
    fn on_end(&mut self, out: &mut VecDeque<Bytes>) -> Result<(), GatewayError>;
    /// Appends the client-format error event that ends a failed stream.
    fn on_error(&mut self, err: &GatewayError, out: &mut VecDeque<Bytes>);
    fn usage(&self) -> Option<TokenUsage>;
}

/// A decoder feeding an encoder, writing into one reused buffer: each provider read becomes
/// at most one frame, split off the buffer without copying.
pub struct Translated {
    decoder: Box<dyn StreamDecoder>,
    encoder: UsageTap,
    buffer: BytesMut,
}

impl Translated {
    pub fn new(decoder: Box<dyn StreamDecoder>, encoder: Box<dyn StreamEncoder>) -> Self {
        Translated {
            decoder,
            encoder: UsageTap {
                inner: encoder,
                usage: None,
            },
            buffer: BytesMut::with_capacity(4096),
        }
    }

    fn flush(&mut self, out: &mut VecDeque<Bytes>) {
        if !self.buffer.is_empty() {
            out.push_back(self.buffer.split().freeze());
        }
    }
}

impl StreamTransform for Translated {
    fn on_bytes(&mut self, chunk: Bytes, out: &mut VecDeque<Bytes>) -> Result<(), GatewayError> {
        let result = self
            .decoder
            .decode(chunk, &mut self.encoder, &mut self.buffer);
        self.flush(out);
        result
    }

    fn on_end(&mut self, out: &mut VecDeque<Bytes>) -> Result<(), GatewayError> {
        let result = self.decoder.end(&mut self.encoder, &mut self.buffer);
        if result.is_ok() {
            self.encoder.finish(&mut self.buffer);
        }
        self.flush(out);
        result
    }

    fn on_error(&mut self, err: &GatewayError, out: &mut VecDeque<Bytes>) {
        self.encoder.error(err, &mut self.buffer);
        self.flush(out);
    }

    fn usage(&self) -> Option<TokenUsage> {
        self.encoder.usage
    }
}

/// Passes events to the client encoder, noting the usage on the way.
struct UsageTap {
    inner: Box<dyn StreamEncoder>,
    usage: Option<TokenUsage>,
}

impl StreamEncoder for UsageTap {
    fn event(&mut self, event: StreamEvent<'_>, out: &mut BytesMut) {
        if let StreamEvent::Usage(usage) = &event {
            self.usage = Some(*usage);
        }
        self.inner.event(event, out);
    }

    fn finish(&mut self, out: &mut BytesMut) {
        self.inner.finish(out);
    }

    fn error(&mut self, err: &GatewayError, out: &mut BytesMut) {
        self.inner.error(err, out);
    }
}
