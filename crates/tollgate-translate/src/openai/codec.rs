//! OpenAI chat format ⇄ canonical form: the encoders that answer OpenAI clients from any
//! provider, and the decoders that read OpenAI-compatible providers for other client formats.

use std::borrow::Cow;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::{BufMut, Bytes, BytesMut};
use serde::Serialize;
use tollgate_core::error::GatewayError;
use tollgate_wire::openai::{
    ChatChunk, ChatCompletion, ChatRequest, StreamOptionsOut, ThinkingBlock,
};
use tollgate_wire::raw::{JsonStr, TextOr};

use crate::canonical::{
    Completion, FinishReason, OpenAiUsage, StreamDecoder, StreamEncoder, StreamEvent, TokenUsage,
    ToolCallOut,
};
use crate::sse::{EventFramer, event_data};

/// The request for an OpenAI-compatible provider, from the canonical form (when the client
/// spoke another format). `inject_usage` asks for usage on streams. The canonical form's
/// extensions that OpenAI's API refuses (`cache_control`, `thinking_blocks`,
/// `reasoning_content`, `thinking`) are left out.
pub fn encode_request(
    request: &mut ChatRequest<'_>,
    upstream_model: &str,
    inject_usage: bool,
) -> Result<Bytes, GatewayError> {
    request.model = Cow::Owned(upstream_model.to_owned());
    if request.is_stream() && inject_usage {
        request.stream_options = Some(StreamOptionsOut {
            include_usage: true,
        });
    }
    request.thinking = None;
    for message in &mut request.messages {
        message.cache_control = None;
        message.thinking_blocks = None;
        message.reasoning_content = None;
        if let Some(TextOr::List(parts)) = &mut message.content {
            for part in parts {
                part.cache_control = None;
            }
        }
    }
    for tool in request.tools.iter_mut().flatten() {
        tool.cache_control = None;
    }
    serde_json::to_vec(request).map(Bytes::from).map_err(|err| {
        GatewayError::internal(format!("could not encode the provider request: {err}"))
    })
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

// ----- answering OpenAI clients ---------------------------------------------------------------

#[derive(Serialize)]
struct CompletionOut<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: [ChoiceOut<'a>; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<serde_json::Value>,
}

#[derive(Serialize)]
struct ChoiceOut<'a> {
    index: u32,
    message: MessageOut<'a>,
    logprobs: Option<()>,
    finish_reason: &'static str,
}

#[derive(Serialize)]
struct MessageOut<'a> {
    role: &'static str,
    content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_content: Option<&'a str>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    thinking_blocks: &'a [ThinkingBlock<'a>],
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<ToolCallJson<'a>>,
    refusal: Option<&'a str>,
}

#[derive(Serialize)]
struct ToolCallJson<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    function: FunctionJson<'a>,
}

#[derive(Serialize)]
struct FunctionJson<'a> {
    name: &'a str,
    arguments: &'a str,
}

/// A `chat.completion` body for an OpenAI client.
pub fn encode_completion(completion: &Completion<'_>) -> Bytes {
    let body = CompletionOut {
        id: &completion.id,
        object: "chat.completion",
        created: if completion.created == 0 {
            now()
        } else {
            completion.created
        },
        model: &completion.model,
        choices: [ChoiceOut {
            index: 0,
            message: MessageOut {
                role: "assistant",
                content: completion.text.as_deref(),
                reasoning_content: completion.reasoning.as_deref(),
                thinking_blocks: &completion.thinking_blocks,
                tool_calls: completion
                    .tool_calls
                    .iter()
                    .map(|call| ToolCallJson {
                        id: &call.id,
                        kind: "function",
                        function: FunctionJson {
                            name: &call.name,
                            arguments: &call.arguments,
                        },
                    })
                    .collect(),
                refusal: completion.refusal.as_deref(),
            },
            logprobs: None,
            finish_reason: completion
                .finish_reason
                .unwrap_or(FinishReason::Stop)
                .openai(),
        }],
        usage: completion.usage.map(|usage| usage.to_openai_json()),
    };
    Bytes::from(serde_json::to_vec(&body).expect("a completion serialises"))
}

/// Canonical events to `chat.completion.chunk` events.
pub struct ChunkEncoder {
    /// `data: {"id":…,"object":…,"created":…,"model":…,"choices":[{"index":0,"delta":`
    prefix: Vec<u8>,
    /// The client asked for the usage chunk.
    include_usage: bool,
    usage: Option<TokenUsage>,
    finished: bool,
}

impl ChunkEncoder {
    pub fn new(include_usage: bool) -> Self {
        let mut encoder = ChunkEncoder {
            prefix: Vec::new(),
            include_usage,
            usage: None,
            finished: false,
        };
        encoder.set_identity("chatcmpl-tollgate", "");
        encoder
    }

    fn set_identity(&mut self, id: &str, model: &str) {
        self.prefix.clear();
        self.prefix.extend_from_slice(b"data: {\"id\":");
        serde_json::to_writer(&mut self.prefix, id).expect("writes to a Vec");
        self.prefix
            .extend_from_slice(b",\"object\":\"chat.completion.chunk\",\"created\":");
        self.prefix
            .extend_from_slice(itoa::Buffer::new().format(now()).as_bytes());
        self.prefix.extend_from_slice(b",\"model\":");
        serde_json::to_writer(&mut self.prefix, model).expect("writes to a Vec");
        self.prefix
            .extend_from_slice(b",\"choices\":[{\"index\":0,\"delta\":");
    }

    /// One chunk: `delta` is a JSON object's text; `finish` the finish reason, if any.
    fn chunk(&self, out: &mut BytesMut, delta: &[&[u8]], finish: Option<&str>) {
        out.put_slice(&self.prefix);
        for part in delta {
            out.put_slice(part);
        }
        out.put_slice(b",\"logprobs\":null,\"finish_reason\":");
        match finish {
            Some(reason) => {
                out.put_u8(b'"');
                out.put_slice(reason.as_bytes());
                out.put_u8(b'"');
            }
            None => out.put_slice(b"null"),
        }
        out.put_slice(b"}]}\n\n");
    }
}

impl StreamEncoder for ChunkEncoder {
    fn event(&mut self, event: StreamEvent<'_>, out: &mut BytesMut) {
        match event {
            StreamEvent::Start { id, model } => {
                self.set_identity(&id, &model);
                self.chunk(out, &[b"{\"role\":\"assistant\",\"content\":\"\"}"], None);
            }
            StreamEvent::Text(text) => {
                self.chunk(out, &[b"{\"content\":", text.as_literal().as_bytes(), b"}"], None);
            }
            StreamEvent::Reasoning(text) => {
                self.chunk(out, &[b"{\"reasoning_content\":", text.as_literal().as_bytes(), b"}"], None);
            }
            StreamEvent::ReasoningSignature(signature) => self.chunk(
                out,
                &[
                    b"{\"thinking_blocks\":[{\"type\":\"thinking\",\"thinking\":\"\",\"signature\":",
                    signature.as_literal().as_bytes(),
                    b"}]}",
                ],
                None,
            ),
            StreamEvent::RedactedReasoning(data) => self.chunk(
                out,
                &[b"{\"thinking_blocks\":[{\"type\":\"redacted_thinking\",\"data\":", data.as_literal().as_bytes(), b"}]}"],
                None,
            ),
            StreamEvent::ToolCallStart { index, id, name } => {
                let mut head = Vec::with_capacity(96);
                head.extend_from_slice(b"{\"tool_calls\":[{\"index\":");
                head.extend_from_slice(itoa::Buffer::new().format(index).as_bytes());
                head.extend_from_slice(b",\"id\":");
                serde_json::to_writer(&mut head, id.as_ref()).expect("writes to a Vec");
                head.extend_from_slice(b",\"type\":\"function\",\"function\":{\"name\":");
                serde_json::to_writer(&mut head, name.as_ref()).expect("writes to a Vec");
                head.extend_from_slice(b",\"arguments\":\"\"}}]}");
                self.chunk(out, &[&head], None);
            }
            StreamEvent::ToolCallArguments { index, fragment } => {
                self.chunk(
                    out,
                    &[
                        b"{\"tool_calls\":[{\"index\":",
                        itoa::Buffer::new().format(index).as_bytes(),
                        b",\"function\":{\"arguments\":",
                        fragment.as_literal().as_bytes(),
                        b"}}]}",
                    ],
                    None,
                );
            }
            StreamEvent::Finish(reason) => {
                if !self.finished {
                    self.finished = true;
                    self.chunk(out, &[b"{}"], Some(reason.openai()));
                }
            }
            StreamEvent::Usage(usage) => self.usage = Some(usage),
        }
    }

    fn finish(&mut self, out: &mut BytesMut) {
        if !self.finished {
            self.finished = true;
            self.chunk(out, &[b"{}"], Some(FinishReason::Stop.openai()));
        }
        if let (true, Some(usage)) = (self.include_usage, self.usage) {
            // The usage chunk: the choice-less chunk OpenAI sends last when asked.
            let head_end = self.prefix.len() - b"[{\"index\":0,\"delta\":".len();
            out.put_slice(&self.prefix[..head_end]);
            out.put_slice(b"[],\"usage\":");
            out.put_slice(usage.to_openai_json().to_string().as_bytes());
            out.put_slice(b"}\n\n");
        }
        out.put_slice(b"data: [DONE]\n\n");
    }

    fn error(&mut self, err: &GatewayError, out: &mut BytesMut) {
        out.put_slice(b"data: ");
        out.put_slice(err.to_json().as_bytes());
        out.put_slice(b"\n\n");
    }
}

// ----- reading OpenAI-compatible providers ----------------------------------------------------

/// A `chat.completion` body to the canonical form.
pub fn decode_completion(body: &[u8]) -> Result<Completion<'_>, GatewayError> {
    let parsed: ChatCompletion<'_> = serde_json::from_slice(body).map_err(|err| {
        GatewayError::upstream_unreachable(format!(
            "The provider's response is not a chat completion: {err}."
        ))
    })?;
    let choice = parsed.choices.into_iter().next();
    let (message, finish_reason) = match choice {
        Some(choice) => (choice.message, choice.finish_reason),
        None => (Default::default(), None),
    };
    Ok(Completion {
        id: parsed.id,
        model: parsed.model,
        created: parsed.created,
        text: message.content,
        reasoning: message.reasoning_content,
        thinking_blocks: message.thinking_blocks.unwrap_or_default(),
        tool_calls: message
            .tool_calls
            .unwrap_or_default()
            .into_iter()
            .map(|call| ToolCallOut {
                id: call.id.unwrap_or(Cow::Borrowed("")),
                name: call.function.name,
                arguments: call.function.arguments,
            })
            .collect(),
        refusal: message.refusal,
        finish_reason: finish_reason.map(|reason| FinishReason::from_openai(&reason)),
        usage: parsed.usage.as_ref().map(TokenUsage::from_openai),
    })
}

/// `chat.completion.chunk` events to canonical events.
#[derive(Default)]
pub struct ChunkDecoder {
    events: EventFramer,
    started: bool,
}

impl ChunkDecoder {
    fn event(
        &mut self,
        event: &[u8],
        encoder: &mut dyn StreamEncoder,
        out: &mut BytesMut,
    ) -> Result<(), GatewayError> {
        let Some(data) = event_data(event) else {
            return Ok(());
        };
        if data.trim_ascii() == b"[DONE]" {
            return Ok(());
        }
        let chunk: ChatChunk<'_> = serde_json::from_slice(&data).map_err(|err| {
            GatewayError::upstream_unreachable(format!(
                "The provider sent an unreadable stream event: {err}."
            ))
        })?;
        if let Some(error) = chunk.error {
            let body = format!("{{\"error\":{}}}", error.get());
            return Err(crate::openai::errors::upstream_error(
                http::StatusCode::BAD_GATEWAY,
                body.as_bytes(),
            ));
        }
        if !self.started {
            self.started = true;
            encoder.event(
                StreamEvent::Start {
                    id: chunk.id.clone(),
                    model: chunk.model.clone(),
                },
                out,
            );
        }
        for choice in chunk.choices.iter().filter(|choice| choice.index == 0) {
            if let Some(delta) = &choice.delta {
                if let Some(text) = delta
                    .content
                    .and_then(JsonStr::from_raw)
                    .filter(|t| !t.is_empty())
                {
                    encoder.event(StreamEvent::Text(text), out);
                }
                if let Some(text) = delta
                    .reasoning_content
                    .and_then(JsonStr::from_raw)
                    .filter(|t| !t.is_empty())
                {
                    encoder.event(StreamEvent::Reasoning(text), out);
                }
                for call in delta.tool_calls.iter().flatten() {
                    let index = call.index as usize;
                    let function = call.function.as_ref();
                    if let Some(id) = &call.id {
                        let name = function.and_then(|f| f.name.clone()).unwrap_or_default();
                        encoder.event(
                            StreamEvent::ToolCallStart {
                                index,
                                id: id.clone(),
                                name,
                            },
                            out,
                        );
                    }
                    if let Some(fragment) = function
                        .and_then(|f| f.arguments)
                        .and_then(JsonStr::from_raw)
                        .filter(|t| !t.is_empty())
                    {
                        encoder.event(StreamEvent::ToolCallArguments { index, fragment }, out);
                    }
                }
            }
            if let Some(reason) = &choice.finish_reason {
                encoder.event(StreamEvent::Finish(FinishReason::from_openai(reason)), out);
            }
        }
        if let Some(usage) = &chunk.usage {
            encoder.event(StreamEvent::Usage(TokenUsage::from_openai(usage)), out);
        }
        Ok(())
    }
}

impl StreamDecoder for ChunkDecoder {
    fn decode(
        &mut self,
        chunk: Bytes,
        encoder: &mut dyn StreamEncoder,
        out: &mut BytesMut,
    ) -> Result<(), GatewayError> {
        self.events.push(&chunk);
        while let Some(event) = self.events.next_event() {
            self.event(&event, encoder, out)?;
        }
        Ok(())
    }

    fn end(
        &mut self,
        encoder: &mut dyn StreamEncoder,
        out: &mut BytesMut,
    ) -> Result<(), GatewayError> {
        if let Some(rest) = self.events.rest() {
            self.event(&rest, encoder, out)?;
        }
        Ok(())
    }
}
