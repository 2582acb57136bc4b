//! Anthropic clients (Claude Code, the `anthropic` SDKs) served by any provider: an Anthropic
//! Messages request → canonical (OpenAI chat) request; canonical answers → Anthropic responses
//! and event streams, with the exact event sequence Anthropic's clients expect.

use std::borrow::Cow;

use bytes::{BufMut, Bytes, BytesMut};
use serde::Serialize;
use serde_json::value::RawValue;
use tollgate_core::error::GatewayError;
use tollgate_wire::anthropic::{Block, MessagesRequest};
use tollgate_wire::openai::{
    ChatMessage, ChatRequest, ChatTool, ContentPart, FilePart, FunctionCall, FunctionDefinition,
    ImageUrl, ThinkingBlock, ToolCall, ToolChoice,
};
use tollgate_wire::raw::TextOr;

use super::errors::error_body;
use crate::canonical::{Completion, FinishReason, StreamEncoder, StreamEvent, TokenUsage};
use crate::params::{ParamPolicy, ask_for_web_search};

/// Reads an Anthropic Messages request, checking what Anthropic itself requires.
pub fn decode_request(body: &[u8]) -> Result<MessagesRequest<'_>, GatewayError> {
    let request = decode_count_request(body)?;
    if request.max_tokens.is_none() {
        return Err(GatewayError::invalid_param(
            "max_tokens",
            "Missing required parameter: `max_tokens`.",
        )
        .with_code("missing_required_parameter"));
    }
    Ok(request)
}

/// Reads a token-count request: a Messages request that needs no `max_tokens`.
pub fn decode_count_request(body: &[u8]) -> Result<MessagesRequest<'_>, GatewayError> {
    serde_json::from_slice(body).map_err(|err| {
        GatewayError::invalid_request(format!(
            "The request body is not a valid Messages request: {err}."
        ))
    })
}

/// How a translated request asks for reasoning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReasoningSupport {
    /// The target takes Anthropic's `thinking` object as is (LiteLLM-style providers).
    Thinking,
    /// The target takes `reasoning_effort` (OpenAI reasoning models, Gemini).
    Effort,
    /// The target has no reasoning control: `thinking` is dropped.
    None,
}

/// The canonical request for an Anthropic client's request. Anthropic's own tools (server
/// tools such as `web_search_20250305`, and the client tools whose schema the model carries,
/// such as `bash_20250124`) have no counterpart elsewhere: refused naming the tool, or left
/// out under `drop_params` — but web search, which becomes the provider's own search where it
/// has one (`ParamPolicy::web_search`).
pub fn to_chat_request<'a>(
    request: &'a MessagesRequest<'a>,
    reasoning: ReasoningSupport,
    policy: &ParamPolicy,
) -> Result<ChatRequest<'a>, GatewayError> {
    let mut messages: Vec<ChatMessage<'a>> = Vec::with_capacity(request.messages.len() + 1);
    match &request.system {
        None => {}
        Some(TextOr::Text(text)) => messages.push(ChatMessage {
            role: "system".into(),
            content: Some(TextOr::Text(text.clone())),
            ..ChatMessage::default()
        }),
        Some(TextOr::List(blocks)) => {
            let parts: Vec<ContentPart<'a>> = blocks
                .iter()
                .filter(|block| block.kind == "text")
                // Claude Code's attribution block is for Anthropic's own billing, not a prompt.
                .filter(|block| {
                    !block
                        .text
                        .as_deref()
                        .unwrap_or_default()
                        .starts_with("x-anthropic-billing-header:")
                })
                .map(|block| ContentPart {
                    kind: "text".into(),
                    text: block.text.clone(),
                    cache_control: block.cache_control,
                    ..ContentPart::default()
                })
                .collect();
            if !parts.is_empty() {
                messages.push(ChatMessage {
                    role: "system".into(),
                    content: Some(TextOr::List(parts)),
                    ..ChatMessage::default()
                });
            }
        }
    }

    for message in &request.messages {
        match (message.role.as_ref(), &message.content) {
            (role @ ("user" | "assistant"), TextOr::Text(text)) => messages.push(ChatMessage {
                role: Cow::Borrowed(role),
                content: Some(TextOr::Text(text.clone())),
                ..ChatMessage::default()
            }),
            ("user", TextOr::List(blocks)) => user_message(blocks, &mut messages)?,
            ("assistant", TextOr::List(blocks)) => messages.push(assistant_message(blocks)),
            (other, _) => {
                return Err(GatewayError::invalid_param(
                    "messages",
                    format!("Unknown message role `{other}`."),
                ));
            }
        }
    }

    let mut tools: Vec<ChatTool<'a>> = Vec::new();
    let mut searches = false;
    for tool in request.tools.iter().flatten() {
        match tool.kind.as_deref() {
            None | Some("custom") => tools.push(ChatTool {
                kind: "function".into(),
                function: FunctionDefinition {
                    name: tool.name.clone(),
                    description: tool.description.clone(),
                    parameters: tool.input_schema,
                    strict: None,
                },
                cache_control: tool.cache_control,
            }),
            Some(search) if search.starts_with("web_search_") => {
                searches |= policy
                    .web_search_tool(&format!("Anthropic's tool `{search}` (`{}`)", tool.name))?;
            }
            Some(anthropics) => policy.unsupported_form(
                "tools",
                &format!("Anthropic's tool `{anthropics}` (`{}`)", tool.name),
            )?,
        }
    }
    let offered = |name: &str| tools.iter().any(|tool| tool.function.name == name);
    let (tool_choice, parallel_tool_calls) = match &request.tool_choice {
        None => (None, None),
        // Only Anthropic's tools were offered, and left out: nothing is left to choose.
        Some(_) if tools.is_empty() => (None, None),
        // The one tool chosen was left out: the model chooses among the rest.
        Some(choice) if choice.kind == "tool" && !choice.name.as_deref().is_some_and(offered) => (
            Some(ToolChoice::Mode("auto".into())),
            choice.disable_parallel_tool_use.map(|disable| !disable),
        ),
        Some(choice) => {
            let mapped = match choice.kind.as_ref() {
                "auto" => ToolChoice::Mode("auto".into()),
                "any" => ToolChoice::Mode("required".into()),
                "none" => ToolChoice::Mode("none".into()),
                "tool" => ToolChoice::Function(choice.name.clone().unwrap_or_default()),
                other => {
                    return Err(GatewayError::invalid_param(
                        "tool_choice",
                        format!("Unknown `tool_choice` type `{other}`."),
                    ));
                }
            };
            (
                Some(mapped),
                choice.disable_parallel_tool_use.map(|disable| !disable),
            )
        }
    };

    let (thinking, reasoning_effort) = match (&request.thinking, reasoning) {
        (None, _) | (_, ReasoningSupport::None) => (None, None),
        (Some(thinking), ReasoningSupport::Effort) => {
            let effort = match (thinking.kind.as_ref(), thinking.budget_tokens.unwrap_or(0)) {
                ("disabled", _) => None,
                ("adaptive", _) => Some("medium"),
                (_, budget) if budget >= 4096 => Some("high"),
                (_, budget) if budget >= 2048 => Some("medium"),
                _ => Some("low"),
            };
            (None, effort.map(Cow::Borrowed))
        }
        (Some(thinking), ReasoningSupport::Thinking) => {
            let raw = RawValue::from_string(
                serde_json::to_string(thinking).expect("thinking serialises"),
            )
            .expect("serialised JSON is valid");
            (Some(Cow::Owned(raw)), None)
        }
    };

    let mut chat = ChatRequest {
        model: request.model.clone(),
        messages,
        stream: request.stream,
        max_tokens: request.max_tokens,
        temperature: request.temperature,
        top_p: request.top_p,
        top_k: request.top_k,
        stop: request.stop_sequences.clone().map(TextOr::List),
        tools: Some(tools).filter(|tools| !tools.is_empty()),
        tool_choice,
        parallel_tool_calls,
        // Claude Code disables parallel tool use on its own: a provider without the control
        // drops the setting rather than failing the request
        // (`ParamPolicy::cannot_disable_parallel_tool_calls`).
        parallel_tool_calls_derived: true,
        reasoning_effort,
        thinking,
        user: request.metadata.as_ref().and_then(|m| m.user_id.clone()),
        ..ChatRequest::default()
    };
    if searches {
        ask_for_web_search(&mut chat);
    }
    Ok(chat)
}

fn user_message<'a>(
    blocks: &'a [Block<'a>],
    messages: &mut Vec<ChatMessage<'a>>,
) -> Result<(), GatewayError> {
    let mut parts: Vec<ContentPart<'a>> = Vec::new();
    for block in blocks {
        match block.kind.as_ref() {
            // Tool results become `tool` messages, ahead of the turn's other content.
            "tool_result" => {
                let content = match block.content.as_deref() {
                    None => TextOr::Text(Cow::Borrowed("")),
                    Some(TextOr::Text(text)) => TextOr::Text(text.clone()),
                    Some(TextOr::List(inner)) => TextOr::List(
                        inner
                            .iter()
                            .map(content_part)
                            .collect::<Result<Vec<_>, _>>()?,
                    ),
                };
                let content = if block.is_error == Some(true) {
                    match content {
                        TextOr::Text(text) => TextOr::Text(Cow::Owned(format!("Error: {text}"))),
                        other => other,
                    }
                } else {
                    content
                };
                messages.push(ChatMessage {
                    role: "tool".into(),
                    tool_call_id: block.tool_use_id.clone(),
                    content: Some(content),
                    cache_control: block.cache_control,
                    ..ChatMessage::default()
                });
            }
            _ => parts.push(content_part(block)?),
        }
    }
    if !parts.is_empty() {
        messages.push(ChatMessage {
            role: "user".into(),
            content: Some(TextOr::List(parts)),
            ..ChatMessage::default()
        });
    }
    Ok(())
}

fn content_part<'a>(block: &'a Block<'a>) -> Result<ContentPart<'a>, GatewayError> {
    match block.kind.as_ref() {
        "text" => Ok(ContentPart {
            kind: "text".into(),
            text: block.text.clone(),
            cache_control: block.cache_control,
            ..ContentPart::default()
        }),
        "image" | "document" => {
            let source = block.source.as_ref().ok_or_else(|| {
                GatewayError::invalid_param(
                    "messages",
                    format!("An `{}` block has no `source`.", block.kind),
                )
            })?;
            let url: Cow<'a, str> = match source.kind.as_ref() {
                "base64" => Cow::Owned(format!(
                    "data:{};base64,{}",
                    source
                        .media_type
                        .as_deref()
                        .unwrap_or("application/octet-stream"),
                    source.data.as_deref().unwrap_or_default()
                )),
                "url" => source.url.clone().unwrap_or_default(),
                other => {
                    return Err(GatewayError::invalid_param(
                        "messages",
                        format!("`{other}` sources can only be sent to Anthropic models."),
                    ));
                }
            };
            if block.kind == "document" {
                Ok(ContentPart {
                    kind: "file".into(),
                    file: Some(FilePart {
                        file_data: Some(url),
                        filename: block.title.clone(),
                        ..FilePart::default()
                    }),
                    cache_control: block.cache_control,
                    ..ContentPart::default()
                })
            } else {
                Ok(ContentPart {
                    kind: "image_url".into(),
                    image_url: Some(ImageUrl {
                        url,
                        detail: None,
                        format: None,
                    }),
                    cache_control: block.cache_control,
                    ..ContentPart::default()
                })
            }
        }
        other => Err(GatewayError::invalid_param(
            "messages",
            format!("Content blocks of type `{other}` can only be sent to Anthropic models."),
        )),
    }
}

fn assistant_message<'a>(blocks: &'a [Block<'a>]) -> ChatMessage<'a> {
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut thinking_blocks = Vec::new();
    let mut tool_calls = Vec::new();
    for block in blocks {
        match block.kind.as_ref() {
            "text" => text.push_str(block.text.as_deref().unwrap_or_default()),
            "thinking" => {
                reasoning.push_str(block.thinking.as_deref().unwrap_or_default());
                thinking_blocks.push(ThinkingBlock {
                    kind: "thinking".into(),
                    thinking: block.thinking.clone(),
                    signature: block.signature.clone(),
                    data: None,
                });
            }
            "redacted_thinking" => thinking_blocks.push(ThinkingBlock {
                kind: "redacted_thinking".into(),
                thinking: None,
                signature: None,
                data: block.data.clone(),
            }),
            "tool_use" => tool_calls.push(ToolCall {
                id: block.id.clone(),
                kind: Some("function".into()),
                function: FunctionCall {
                    name: block.name.clone().unwrap_or_default(),
                    arguments: Cow::Borrowed(block.input.map(|raw| raw.get()).unwrap_or("{}")),
                },
            }),
            _ => {}
        }
    }
    ChatMessage {
        role: "assistant".into(),
        content: (!text.is_empty()).then_some(TextOr::Text(Cow::Owned(text))),
        tool_calls: (!tool_calls.is_empty()).then_some(tool_calls),
        reasoning_content: (!reasoning.is_empty()).then_some(Cow::Owned(reasoning)),
        thinking_blocks: (!thinking_blocks.is_empty()).then_some(thinking_blocks),
        ..ChatMessage::default()
    }
}

pub fn stop_reason(reason: FinishReason) -> &'static str {
    match reason {
        FinishReason::Stop => "end_turn",
        FinishReason::Length => "max_tokens",
        FinishReason::ToolCalls => "tool_use",
        FinishReason::ContentFilter => "refusal",
    }
}

/// Anthropic's usage object: `input_tokens` excludes the cache reads and writes reported
/// beside it.
fn usage_json(usage: &TokenUsage) -> serde_json::Value {
    serde_json::json!({
        "input_tokens": usage.input.saturating_sub(usage.cache_read + usage.cache_write),
        "output_tokens": usage.output,
        "cache_creation_input_tokens": usage.cache_write,
        "cache_read_input_tokens": usage.cache_read,
    })
}

/// A message id in Anthropic's style for answers from other providers.
fn message_id(id: &str) -> String {
    if id.starts_with("msg_") {
        id.to_owned()
    } else {
        format!("msg_{id}")
    }
}

#[derive(Serialize)]
struct ResponseOut<'a> {
    id: String,
    #[serde(rename = "type")]
    kind: &'static str,
    role: &'static str,
    model: &'a str,
    content: Vec<serde_json::Value>,
    stop_reason: &'static str,
    stop_sequence: Option<()>,
    usage: serde_json::Value,
}

/// An Anthropic Messages response from a canonical answer. `model` is the name the client
/// asked for.
pub fn encode_response(completion: &Completion<'_>, model: &str) -> Result<Bytes, GatewayError> {
    let mut content = Vec::new();
    if completion.thinking_blocks.is_empty() {
        if let Some(reasoning) = completion.reasoning.as_deref().filter(|r| !r.is_empty()) {
            content.push(
                serde_json::json!({"type": "thinking", "thinking": reasoning, "signature": ""}),
            );
        }
    } else {
        for block in &completion.thinking_blocks {
            content.push(serde_json::to_value(block).expect("a thinking block serialises"));
        }
    }
    if let Some(text) = completion.text.as_deref().filter(|t| !t.is_empty()) {
        content.push(serde_json::json!({"type": "text", "text": text}));
    }
    for call in &completion.tool_calls {
        let input: serde_json::Value = serde_json::from_str(&call.arguments).map_err(|_| {
            GatewayError::upstream_unreachable(format!(
                "The provider's arguments for tool `{}` are not valid JSON.",
                call.name
            ))
        })?;
        content.push(serde_json::json!({"type": "tool_use", "id": call.id, "name": call.name, "input": input}));
    }
    let response = ResponseOut {
        id: message_id(&completion.id),
        kind: "message",
        role: "assistant",
        model,
        content,
        stop_reason: stop_reason(completion.finish_reason.unwrap_or(FinishReason::Stop)),
        stop_sequence: None,
        usage: usage_json(&completion.usage.unwrap_or_default()),
    };
    Ok(Bytes::from(
        serde_json::to_vec(&response).expect("a response serialises"),
    ))
}

/// The kind of the content block currently open in the stream.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Open {
    Text,
    Thinking,
    Tool(usize),
}

/// Canonical events → Anthropic's event stream: `message_start`, then each content block's
/// `content_block_start` / `_delta`s / `_stop`, then `message_delta` (stop reason and usage)
/// and `message_stop`. Blocks open and close as the kind of content changes.
pub struct AnthropicEncoder {
    model: String,
    started: bool,
    /// Index of the next content block.
    next_block: usize,
    open: Option<Open>,
    finish: Option<FinishReason>,
    usage: Option<TokenUsage>,
}

impl AnthropicEncoder {
    /// `model`: the name the client asked for.
    pub fn new(model: &str) -> Self {
        AnthropicEncoder {
            model: model.to_owned(),
            started: false,
            next_block: 0,
            open: None,
            finish: None,
            usage: None,
        }
    }

    fn write(out: &mut BytesMut, name: &str, parts: &[&[u8]]) {
        out.put_slice(b"event: ");
        out.put_slice(name.as_bytes());
        out.put_slice(b"\ndata: ");
        for part in parts {
            out.put_slice(part);
        }
        out.put_slice(b"\n\n");
    }

    fn start(&mut self, id: &str, out: &mut BytesMut) {
        if self.started {
            return;
        }
        self.started = true;
        let message = serde_json::json!({
            "type": "message_start",
            "message": {
                "id": message_id(id), "type": "message", "role": "assistant", "model": self.model,
                "content": [], "stop_reason": null, "stop_sequence": null,
                "usage": {"input_tokens": 0, "output_tokens": 0},
            }
        });
        Self::write(out, "message_start", &[message.to_string().as_bytes()]);
    }

    fn close_block(&mut self, out: &mut BytesMut) {
        if self.open.take().is_some() {
            let index = itoa::Buffer::new().format(self.next_block - 1).to_owned();
            Self::write(
                out,
                "content_block_stop",
                &[
                    b"{\"type\":\"content_block_stop\",\"index\":",
                    index.as_bytes(),
                    b"}",
                ],
            );
        }
    }

    /// Makes sure a block of `kind` is open (opening it with `start_block` JSON if not).
    fn ensure(&mut self, kind: Open, start_block: &[&[u8]], out: &mut BytesMut) {
        if self.open == Some(kind) {
            return;
        }
        self.start("tollgate", out);
        self.close_block(out);
        let index = itoa::Buffer::new().format(self.next_block).to_owned();
        self.next_block += 1;
        let mut parts: Vec<&[u8]> = vec![
            b"{\"type\":\"content_block_start\",\"index\":",
            index.as_bytes(),
            b",\"content_block\":",
        ];
        parts.extend_from_slice(start_block);
        parts.push(b"}");
        Self::write(out, "content_block_start", &parts);
        self.open = Some(kind);
    }

    /// A `content_block_delta` for the open block, written straight into `out` (no per-delta
    /// allocation).
    fn delta(&self, out: &mut BytesMut, delta: &[&[u8]]) {
        let mut index = itoa::Buffer::new();
        let index = index.format(self.next_block - 1).as_bytes();
        out.put_slice(
            b"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":",
        );
        out.put_slice(index);
        out.put_slice(b",\"delta\":");
        for part in delta {
            out.put_slice(part);
        }
        out.put_slice(b"}\n\n");
    }
}

impl StreamEncoder for AnthropicEncoder {
    fn event(&mut self, event: StreamEvent<'_>, out: &mut BytesMut) {
        match event {
            StreamEvent::Start { id, .. } => self.start(&id, out),
            StreamEvent::Text(text) => {
                self.ensure(Open::Text, &[b"{\"type\":\"text\",\"text\":\"\"}"], out);
                self.delta(
                    out,
                    &[
                        b"{\"type\":\"text_delta\",\"text\":",
                        text.as_literal().as_bytes(),
                        b"}",
                    ],
                );
            }
            StreamEvent::Reasoning(text) => {
                self.ensure(
                    Open::Thinking,
                    &[b"{\"type\":\"thinking\",\"thinking\":\"\"}"],
                    out,
                );
                self.delta(
                    out,
                    &[
                        b"{\"type\":\"thinking_delta\",\"thinking\":",
                        text.as_literal().as_bytes(),
                        b"}",
                    ],
                );
            }
            StreamEvent::ReasoningSignature(signature) => {
                self.ensure(
                    Open::Thinking,
                    &[b"{\"type\":\"thinking\",\"thinking\":\"\"}"],
                    out,
                );
                self.delta(
                    out,
                    &[
                        b"{\"type\":\"signature_delta\",\"signature\":",
                        signature.as_literal().as_bytes(),
                        b"}",
                    ],
                );
            }
            StreamEvent::RedactedReasoning(data) => {
                self.start("tollgate", out);
                self.close_block(out);
                let index = itoa::Buffer::new().format(self.next_block).to_owned();
                self.next_block += 1;
                Self::write(
                    out,
                    "content_block_start",
                    &[
                        b"{\"type\":\"content_block_start\",\"index\":",
                        index.as_bytes(),
                        b",\"content_block\":{\"type\":\"redacted_thinking\",\"data\":",
                        data.as_literal().as_bytes(),
                        b"}}",
                    ],
                );
                Self::write(
                    out,
                    "content_block_stop",
                    &[
                        b"{\"type\":\"content_block_stop\",\"index\":",
                        index.as_bytes(),
                        b"}",
                    ],
                );
            }
            StreamEvent::ToolCallStart { index, id, name } => {
                let id = serde_json::to_string(id.as_ref()).expect("a string serialises");
                let name = serde_json::to_string(name.as_ref()).expect("a string serialises");
                // A new call always opens a new block, even right after another call.
                self.open = self.open.filter(|open| *open != Open::Tool(index));
                self.ensure(
                    Open::Tool(index),
                    &[
                        b"{\"type\":\"tool_use\",\"id\":",
                        id.as_bytes(),
                        b",\"name\":",
                        name.as_bytes(),
                        b",\"input\":{}}",
                    ],
                    out,
                );
            }
            StreamEvent::ToolCallArguments { index, fragment } => {
                if self.open == Some(Open::Tool(index)) {
                    self.delta(
                        out,
                        &[
                            b"{\"type\":\"input_json_delta\",\"partial_json\":",
                            fragment.as_literal().as_bytes(),
                            b"}",
                        ],
                    );
                }
            }
            StreamEvent::Finish(reason) => self.finish = Some(reason),
            StreamEvent::Usage(usage) => self.usage = Some(usage),
        }
    }

    fn finish(&mut self, out: &mut BytesMut) {
        self.start("tollgate", out);
        self.close_block(out);
        let delta = serde_json::json!({
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason(self.finish.unwrap_or(FinishReason::Stop)), "stop_sequence": null},
            "usage": usage_json(&self.usage.unwrap_or_default()),
        });
        Self::write(out, "message_delta", &[delta.to_string().as_bytes()]);
        Self::write(out, "message_stop", &[b"{\"type\":\"message_stop\"}"]);
    }

    fn error(&mut self, err: &GatewayError, out: &mut BytesMut) {
        Self::write(out, "error", &[error_body(err).as_bytes()]);
    }
}
