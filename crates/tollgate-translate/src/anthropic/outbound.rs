//! Canonical (OpenAI chat) request → Anthropic Messages request; Anthropic answers → canonical.
//!
//! Choices made where the formats differ (also in docs/providers.md):
//! - `system`/`developer` messages become the `system` blocks, in order.
//! - consecutive `user` and `tool` messages form one user turn, tool results first as
//!   `tool_result` blocks; consecutive assistant messages form one assistant turn, with its
//!   `thinking_blocks` first, as Anthropic requires.
//! - `response_format` (json_object / json_schema) is served by a forced tool named
//!   `json_tool_call` whose input is the answer; the tool call is turned back into `content`.
//!   With thinking on (which forbids forced tools) the schema goes into the system prompt.
//! - `reasoning_effort` low / medium / high become thinking budgets of 1024 / 2048 / 4096.
//! - `max_tokens` is required by Anthropic: absent, the deployment's maximum output (else 4096)
//!   is sent, plus the thinking budget when thinking is on.

use std::borrow::Cow;

use bytes::{Bytes, BytesMut};
use serde_json::value::RawValue;
use tollgate_core::error::GatewayError;
use tollgate_wire::anthropic::{
    Block, Content, Message, MessagesRequest, MessagesResponse, Metadata, Source,
    StreamEvent as Event, System, Thinking, Tool, ToolChoice as AnthropicToolChoice, Usage,
};
use tollgate_wire::openai::{ChatMessage, ChatRequest, ContentPart, ThinkingBlock, ToolChoice};
use tollgate_wire::raw::{JsonStr, TextOr};

use crate::canonical::{
    Completion, FinishReason, StreamDecoder, StreamEncoder, StreamEvent, TokenUsage, ToolCallOut,
};
use crate::params::ParamPolicy;
use crate::sse::{EventFramer, event_data};

/// The name of the forced tool that carries a `response_format` answer.
pub const JSON_TOOL_NAME: &str = "json_tool_call";

/// Output tokens requested when neither the client nor the deployment says.
pub const DEFAULT_MAX_TOKENS: u64 = 4096;

/// Where the request goes: Anthropic itself, or Anthropic models on Vertex AI or Bedrock,
/// which want the same body with small differences.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    Anthropic,
    Vertex,
    Bedrock,
}

/// How a request was translated, for reading its answer.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// The answer arrives as a call of the `json_tool_call` tool.
    pub json_tool: bool,
}

/// Per-deployment facts the translation needs.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub model: &'a str,
    pub flavor: Flavor,
    /// The deployment's maximum output tokens, when its `model_info` says.
    pub max_output_tokens: Option<u64>,
}

static EMPTY_OBJECT_SCHEMA: &str = r#"{"type":"object","properties":{}}"#;
static ANY_OBJECT_SCHEMA: &str = r#"{"type":"object","additionalProperties":true}"#;

pub fn encode_request(
    request: &ChatRequest<'_>,
    target: Target<'_>,
    policy: &ParamPolicy,
) -> Result<(Bytes, Plan), GatewayError> {
    for (param, present) in [
        ("n", request.n.is_some_and(|n| n > 1)),
        ("seed", request.seed.is_some()),
        ("presence_penalty", request.presence_penalty.is_some()),
        ("frequency_penalty", request.frequency_penalty.is_some()),
        ("logit_bias", request.logit_bias.is_some()),
        ("logprobs", request.logprobs == Some(true)),
        ("top_logprobs", request.top_logprobs.is_some()),
    ] {
        if present {
            policy.unsupported(param)?;
        }
    }
    for param in request.openai_only.keys() {
        policy.unsupported(param)?;
    }

    // Tool-call arguments are JSON text; Anthropic wants the object. Parse them all first so
    // the blocks below can borrow them.
    let arguments: Vec<Box<RawValue>> = request
        .messages
        .iter()
        .flat_map(|message| message.tool_calls.iter().flatten())
        .map(|call| {
            let text = if call.function.arguments.trim().is_empty() {
                "{}"
            } else {
                call.function.arguments.as_ref()
            };
            RawValue::from_string(text.to_owned()).map_err(|_| {
                GatewayError::invalid_param(
                    "messages",
                    format!(
                        "The arguments of tool call `{}` are not valid JSON.",
                        call.function.name
                    ),
                )
            })
        })
        .collect::<Result<_, _>>()?;
    let mut arguments = arguments.iter();

    let thinking = thinking_config(request)?;
    let mut system: Vec<Block<'_>> = Vec::new();
    let mut messages: Vec<Message<'_>> = Vec::new();
    for message in &request.messages {
        match message.role.as_ref() {
            "system" | "developer" => text_blocks(message, &mut system),
            "user" => {
                let blocks = user_blocks(message)?;
                push_turn(&mut messages, "user", blocks);
            }
            "tool" | "function" => {
                let block = tool_result_block(message);
                push_turn(&mut messages, "user", vec![block]);
            }
            "assistant" => {
                let blocks = assistant_blocks(message, &mut arguments);
                push_turn(&mut messages, "assistant", blocks);
            }
            other => {
                return Err(GatewayError::invalid_param(
                    "messages",
                    format!("Unknown message role `{other}`."),
                ));
            }
        }
    }
    // Anthropic rejects a trailing space at the end of an assistant prefill.
    if let Some(last) = messages.last_mut().filter(|m| m.role == "assistant")
        && let TextOr::List(blocks) = &mut last.content
        && let Some(text) = blocks.last_mut().and_then(|b| b.text.as_mut())
    {
        let trimmed = text.trim_end().len();
        if trimmed != text.len() {
            *text = Cow::Owned(text[..trimmed].to_owned());
        }
    }

    let mut plan = Plan::default();
    let mut tools: Vec<Tool<'_>> = request
        .tools
        .iter()
        .flatten()
        .map(|tool| Tool {
            name: tool.function.name.clone(),
            description: tool.function.description.clone(),
            input_schema: Some(
                tool.function
                    .parameters
                    .unwrap_or_else(|| raw_static(EMPTY_OBJECT_SCHEMA)),
            ),
            kind: None,
            cache_control: tool.cache_control,
        })
        .collect();
    let mut tool_choice = match &request.tool_choice {
        None => None,
        Some(ToolChoice::Mode(mode)) => Some(match mode.as_ref() {
            "auto" => AnthropicToolChoice {
                kind: "auto".into(),
                name: None,
                disable_parallel_tool_use: None,
            },
            "required" => AnthropicToolChoice {
                kind: "any".into(),
                name: None,
                disable_parallel_tool_use: None,
            },
            "none" => AnthropicToolChoice {
                kind: "none".into(),
                name: None,
                disable_parallel_tool_use: None,
            },
            other => {
                return Err(GatewayError::invalid_param(
                    "tool_choice",
                    format!(
                        "`tool_choice` must be auto, none, required or a named function, got `{other}`."
                    ),
                ));
            }
        }),
        Some(ToolChoice::Function(name)) => Some(AnthropicToolChoice {
            kind: "tool".into(),
            name: Some(name.clone()),
            disable_parallel_tool_use: None,
        }),
    };
    if request.parallel_tool_calls == Some(false) {
        match &mut tool_choice {
            Some(choice) if choice.kind != "none" => choice.disable_parallel_tool_use = Some(true),
            Some(_) => {}
            None => {
                tool_choice = Some(AnthropicToolChoice {
                    kind: "auto".into(),
                    name: None,
                    disable_parallel_tool_use: Some(true),
                })
            }
        }
    }

    if let Some(format) = &request.response_format {
        let schema = match format.kind.as_ref() {
            "text" => None,
            "json_object" => Some(raw_static(ANY_OBJECT_SCHEMA)),
            "json_schema" => Some(
                format
                    .json_schema
                    .as_ref()
                    .and_then(|schema| schema.schema)
                    .unwrap_or_else(|| raw_static(ANY_OBJECT_SCHEMA)),
            ),
            other => {
                return Err(GatewayError::invalid_param(
                    "response_format",
                    format!("Unknown `response_format` type `{other}`."),
                ));
            }
        };
        if let Some(schema) = schema {
            if thinking.is_some() {
                // Forced tools are refused with thinking on: ask in the prompt instead.
                system.push(Block {
                    kind: "text".into(),
                    text: Some(Cow::Owned(format!(
                        "Answer with a single JSON value, and nothing else, that conforms to this JSON Schema: {}",
                        schema.get()
                    ))),
                    ..Block::default()
                });
            } else {
                plan.json_tool = true;
                tools.push(Tool {
                    name: JSON_TOOL_NAME.into(),
                    description: Some("Respond with the answer as this tool's input.".into()),
                    input_schema: Some(schema),
                    kind: None,
                    cache_control: None,
                });
                tool_choice = Some(AnthropicToolChoice {
                    kind: "tool".into(),
                    name: Some(JSON_TOOL_NAME.into()),
                    disable_parallel_tool_use: None,
                });
            }
        }
    }
    // Anthropic refuses tool blocks in the history when no tools are declared.
    let history_has_tools = messages.iter().any(|m| match &m.content {
        TextOr::List(blocks) => blocks
            .iter()
            .any(|b| b.kind == "tool_use" || b.kind == "tool_result"),
        TextOr::Text(_) => false,
    });
    if history_has_tools && tools.is_empty() {
        tools.push(Tool {
            name: "tollgate_no_tools".into(),
            description: Some(
                "Not callable; declared because the conversation contains tool calls.".into(),
            ),
            input_schema: Some(raw_static(EMPTY_OBJECT_SCHEMA)),
            kind: None,
            cache_control: None,
        });
        tool_choice = Some(AnthropicToolChoice {
            kind: "none".into(),
            name: None,
            disable_parallel_tool_use: None,
        });
    }

    let budget = thinking.as_ref().and_then(|t| t.budget_tokens).unwrap_or(0);
    let max_tokens = match (
        request.max_output_tokens(),
        budget,
        target.max_output_tokens,
    ) {
        (Some(max), _, _) => max,
        (None, 0, model_max) => model_max.unwrap_or(DEFAULT_MAX_TOKENS),
        // The thinking budget counts toward max_tokens: leave room for the answer.
        (None, budget, Some(model_max)) => (budget + DEFAULT_MAX_TOKENS).min(model_max),
        (None, budget, None) => budget + DEFAULT_MAX_TOKENS,
    };

    let body = MessagesRequest {
        model: match target.flavor {
            Flavor::Anthropic => Cow::Borrowed(target.model),
            Flavor::Vertex | Flavor::Bedrock => Cow::Borrowed(""),
        },
        anthropic_version: super::platform::api_version(target.flavor).map(Cow::Borrowed),
        anthropic_beta: None,
        messages,
        max_tokens: Some(max_tokens),
        system: (!system.is_empty()).then_some(System::List(system)),
        stop_sequences: match &request.stop {
            None => None,
            Some(TextOr::Text(stop)) => Some(vec![stop.clone()]),
            Some(TextOr::List(stops)) => Some(
                stops
                    .iter()
                    .filter(|s| !s.trim().is_empty())
                    .cloned()
                    .collect(),
            ),
        },
        temperature: request.temperature,
        top_p: request.top_p,
        top_k: request.top_k,
        stream: match target.flavor {
            Flavor::Bedrock => None,
            _ => request.stream.filter(|stream| *stream),
        },
        tools: (!tools.is_empty()).then_some(tools),
        tool_choice,
        thinking,
        metadata: request.user.as_ref().map(|user| Metadata {
            user_id: Some(user.clone()),
        }),
        output_config: None,
        service_tier: None,
        extra: request.extra.clone(),
    };
    let bytes = serde_json::to_vec(&body).map_err(|err| {
        GatewayError::internal(format!("could not encode the Anthropic request: {err}"))
    })?;
    Ok((Bytes::from(bytes), plan))
}

fn raw_static(json: &'static str) -> &'static RawValue {
    serde_json::from_str(json).expect("a valid static schema")
}

/// `thinking`, from the client's own `thinking` or from `reasoning_effort`.
fn thinking_config<'a>(request: &'a ChatRequest<'a>) -> Result<Option<Thinking<'a>>, GatewayError> {
    if let Some(raw) = &request.thinking {
        let thinking: Thinking<'a> = serde_json::from_str(raw.get()).map_err(|err| {
            GatewayError::invalid_param("thinking", format!("`thinking` is not valid: {err}."))
        })?;
        return Ok((thinking.kind != "disabled").then_some(thinking));
    }
    let budget = match request.reasoning_effort.as_deref() {
        None | Some("none") => return Ok(None),
        Some("minimal") | Some("low") => 1024,
        Some("medium") => 2048,
        Some("high") => 4096,
        Some("xhigh") => 8192,
        Some(other) => {
            return Err(GatewayError::invalid_param(
                "reasoning_effort",
                format!(
                    "`reasoning_effort` must be none, minimal, low, medium or high, got `{other}`."
                ),
            ));
        }
    };
    Ok(Some(Thinking {
        kind: "enabled".into(),
        budget_tokens: Some(budget),
    }))
}

/// Appends a message to the conversation, merging it into the previous turn when that has the
/// same role (and putting tool results before other user content, as Anthropic expects).
fn push_turn<'a>(messages: &mut Vec<Message<'a>>, role: &'static str, mut blocks: Vec<Block<'a>>) {
    if blocks.is_empty() {
        return;
    }
    if let Some(last) = messages.last_mut()
        && last.role == role
        && let TextOr::List(existing) = &mut last.content
    {
        if blocks.iter().all(|b| b.kind == "tool_result") {
            let results = existing
                .iter()
                .take_while(|b| b.kind == "tool_result")
                .count();
            existing.splice(results..results, blocks);
        } else {
            existing.append(&mut blocks);
        }
        return;
    }
    messages.push(Message {
        role: role.into(),
        content: TextOr::List(blocks),
    });
}

fn text_blocks<'a>(message: &'a ChatMessage<'a>, into: &mut Vec<Block<'a>>) {
    let start = into.len();
    match &message.content {
        Some(TextOr::Text(text)) if !text.is_empty() => into.push(text_block(text.clone(), None)),
        Some(TextOr::List(parts)) => {
            for part in parts.iter().filter(|p| p.kind == "text") {
                if let Some(text) = part.text.as_ref().filter(|t| !t.is_empty()) {
                    into.push(text_block(text.clone(), part.cache_control));
                }
            }
        }
        _ => {}
    }
    if let (Some(cache), Some(last)) = (message.cache_control, into[start..].last_mut()) {
        last.cache_control = Some(cache);
    }
}

fn text_block<'a>(text: Cow<'a, str>, cache_control: Option<&'a RawValue>) -> Block<'a> {
    Block {
        kind: "text".into(),
        text: Some(text),
        cache_control,
        ..Block::default()
    }
}

fn user_blocks<'a>(message: &'a ChatMessage<'a>) -> Result<Vec<Block<'a>>, GatewayError> {
    let mut blocks = Vec::new();
    match &message.content {
        None => {}
        Some(TextOr::Text(text)) => blocks.push(text_block(text.clone(), None)),
        Some(TextOr::List(parts)) => {
            for part in parts {
                if let Some(block) = part_block(part)? {
                    blocks.push(block);
                }
            }
        }
    }
    if let (Some(cache), Some(last)) = (message.cache_control, blocks.last_mut()) {
        last.cache_control = Some(cache);
    }
    Ok(blocks)
}

fn part_block<'a>(part: &'a ContentPart<'a>) -> Result<Option<Block<'a>>, GatewayError> {
    match part.kind.as_ref() {
        "text" => Ok(part
            .text
            .as_ref()
            .filter(|t| !t.is_empty())
            .map(|text| text_block(text.clone(), part.cache_control))),
        "image_url" => {
            let Some(image) = &part.image_url else {
                return Err(GatewayError::invalid_param(
                    "messages",
                    "An `image_url` part has no `image_url`.",
                ));
            };
            let source = media_source(&image.url, image.format.as_deref())?;
            let kind = if source.media_type.as_deref() == Some("application/pdf") {
                "document"
            } else {
                "image"
            };
            Ok(Some(Block {
                kind: kind.into(),
                source: Some(source),
                cache_control: part.cache_control,
                ..Block::default()
            }))
        }
        "file" => {
            let Some(file) = &part.file else {
                return Err(GatewayError::invalid_param(
                    "messages",
                    "A `file` part has no `file`.",
                ));
            };
            let source = match (&file.file_data, &file.file_id) {
                (Some(data), _) => media_source(data, file.format.as_deref())?,
                (None, Some(id)) => Source {
                    kind: "file".into(),
                    file_id: Some(id.clone()),
                    ..Source::default()
                },
                (None, None) => {
                    return Err(GatewayError::invalid_param(
                        "messages",
                        "A `file` part needs `file_data` or `file_id`.",
                    ));
                }
            };
            Ok(Some(Block {
                kind: "document".into(),
                source: Some(source),
                title: file.filename.clone(),
                cache_control: part.cache_control,
                ..Block::default()
            }))
        }
        other => Err(GatewayError::invalid_param(
            "messages",
            format!("Content parts of type `{other}` cannot be sent to Anthropic."),
        )),
    }
}

/// An image or document source: `data:` URLs inline as base64, http(s) URLs by reference
/// (Anthropic fetches them itself).
fn media_source<'a>(
    url: &'a Cow<'a, str>,
    stated_type: Option<&'a str>,
) -> Result<Source<'a>, GatewayError> {
    if let Some(rest) = url.strip_prefix("data:") {
        let (meta, data) = rest.split_once(',').ok_or_else(|| {
            GatewayError::invalid_param("messages", "A `data:` URL has no `,` before its data.")
        })?;
        let media_type = meta.strip_suffix(";base64").ok_or_else(|| {
            GatewayError::invalid_param("messages", "Only base64 `data:` URLs are supported.")
        })?;
        return Ok(Source {
            kind: "base64".into(),
            media_type: Some(Cow::Borrowed(stated_type.unwrap_or(media_type))),
            data: Some(Cow::Borrowed(data)),
            ..Source::default()
        });
    }
    if url.starts_with("https://") || url.starts_with("http://") {
        return Ok(Source {
            kind: "url".into(),
            url: Some(Cow::Borrowed(url.as_ref())),
            ..Source::default()
        });
    }
    Err(GatewayError::invalid_param(
        "messages",
        "Image URLs must be `data:`, `http://` or `https://` URLs.",
    ))
}

fn tool_result_block<'a>(message: &'a ChatMessage<'a>) -> Block<'a> {
    let content = match &message.content {
        None => None,
        Some(TextOr::Text(text)) => Some(Box::new(Content::Text(text.clone()))),
        Some(TextOr::List(parts)) => Some(Box::new(Content::List(
            parts
                .iter()
                .filter_map(|part| part_block(part).ok().flatten())
                .collect(),
        ))),
    };
    Block {
        kind: "tool_result".into(),
        tool_use_id: Some(
            message
                .tool_call_id
                .clone()
                .or_else(|| message.name.clone())
                .unwrap_or_default(),
        ),
        content,
        cache_control: message.cache_control,
        ..Block::default()
    }
}

fn assistant_blocks<'a>(
    message: &'a ChatMessage<'a>,
    arguments: &mut std::slice::Iter<'a, Box<RawValue>>,
) -> Vec<Block<'a>> {
    let mut blocks = Vec::new();
    for thinking in message.thinking_blocks.iter().flatten() {
        blocks.push(Block {
            kind: thinking.kind.clone(),
            thinking: thinking.thinking.clone(),
            signature: thinking.signature.clone(),
            data: thinking.data.clone(),
            ..Block::default()
        });
    }
    text_blocks(message, &mut blocks);
    for call in message.tool_calls.iter().flatten() {
        let input = arguments.next().map(|boxed| &**boxed);
        blocks.push(Block {
            kind: "tool_use".into(),
            id: call.id.clone(),
            name: Some(call.function.name.clone()),
            input,
            ..Block::default()
        });
    }
    blocks
}

// ----- reading Anthropic's answers ------------------------------------------------------------

pub fn finish_reason(stop_reason: &str) -> FinishReason {
    match stop_reason {
        "max_tokens" | "model_context_window_exceeded" => FinishReason::Length,
        "tool_use" => FinishReason::ToolCalls,
        "refusal" => FinishReason::ContentFilter,
        _ => FinishReason::Stop,
    }
}

pub fn token_usage(usage: &Usage) -> TokenUsage {
    let cache_read = usage.cache_read_input_tokens.unwrap_or(0);
    let cache_write = usage.cache_creation_input_tokens.unwrap_or(0);
    TokenUsage {
        input: usage.input_tokens + cache_read + cache_write,
        output: usage.output_tokens,
        cache_read,
        cache_write,
        cache_write_1h: usage
            .cache_creation
            .map_or(0, |by_lifetime| by_lifetime.ephemeral_1h_input_tokens),
        reasoning: 0,
    }
}

pub fn decode_response<'a>(body: &'a [u8], plan: &Plan) -> Result<Completion<'a>, GatewayError> {
    let response: MessagesResponse<'a> = serde_json::from_slice(body).map_err(|err| {
        GatewayError::upstream_unreachable(format!(
            "Anthropic's response could not be read: {err}."
        ))
    })?;
    let mut completion = Completion {
        id: response.id,
        model: response.model,
        finish_reason: response.stop_reason.as_deref().map(finish_reason),
        usage: Some(token_usage(&response.usage)),
        ..Completion::default()
    };
    let mut text = String::new();
    let mut reasoning = String::new();
    for block in response.content {
        match block.kind.as_ref() {
            "text" => text.push_str(block.text.as_deref().unwrap_or_default()),
            "thinking" => {
                reasoning.push_str(block.thinking.as_deref().unwrap_or_default());
                completion.thinking_blocks.push(ThinkingBlock {
                    kind: "thinking".into(),
                    thinking: block.thinking,
                    signature: block.signature,
                    data: None,
                });
            }
            "redacted_thinking" => completion.thinking_blocks.push(ThinkingBlock {
                kind: "redacted_thinking".into(),
                thinking: None,
                signature: None,
                data: block.data,
            }),
            "tool_use" => {
                let arguments = block.input.map(|raw| raw.get()).unwrap_or("{}");
                if plan.json_tool && block.name.as_deref() == Some(JSON_TOOL_NAME) {
                    text.push_str(arguments);
                    completion.finish_reason = Some(FinishReason::Stop);
                } else {
                    completion.tool_calls.push(ToolCallOut {
                        id: block.id.unwrap_or_default(),
                        name: block.name.unwrap_or_default(),
                        arguments: Cow::Owned(arguments.to_owned()),
                    });
                }
            }
            _ => {}
        }
    }
    completion.text =
        (!text.is_empty() || completion.tool_calls.is_empty()).then_some(Cow::Owned(text));
    completion.reasoning = (!reasoning.is_empty()).then_some(Cow::Owned(reasoning));
    Ok(completion)
}

/// What each content block of the stream is.
#[derive(Debug, Clone, Copy, PartialEq)]
enum BlockKind {
    Text,
    Thinking,
    /// A tool call, with its position among the answer's tool calls.
    Tool {
        ordinal: usize,
        has_arguments: bool,
    },
    /// The forced `json_tool_call`: its input is the answer's text.
    JsonAnswer,
    Other,
}

/// Anthropic's stream events → canonical events.
pub struct AnthropicDecoder {
    plan: Plan,
    events: EventFramer,
    blocks: Vec<BlockKind>,
    tools: usize,
    usage: Usage,
    stop_reason: Option<FinishReason>,
}

impl AnthropicDecoder {
    pub fn new(plan: Plan) -> Self {
        AnthropicDecoder {
            plan,
            events: EventFramer::default(),
            blocks: Vec::new(),
            tools: 0,
            usage: Usage::default(),
            stop_reason: None,
        }
    }

    fn block(&mut self, index: usize) -> BlockKind {
        self.blocks.get(index).copied().unwrap_or(BlockKind::Other)
    }

    fn event(
        &mut self,
        event: &[u8],
        encoder: &mut dyn StreamEncoder,
        out: &mut BytesMut,
    ) -> Result<(), GatewayError> {
        let Some(data) = event_data(event) else {
            return Ok(());
        };
        let event: Event<'_> = serde_json::from_slice(&data).map_err(|err| {
            GatewayError::upstream_unreachable(format!(
                "Anthropic sent an unreadable stream event: {err}."
            ))
        })?;
        match event.kind.as_ref() {
            "message_start" => {
                if let Some(message) = event.message {
                    self.usage = message.usage;
                    encoder.event(
                        StreamEvent::Start {
                            id: message.id,
                            model: message.model,
                        },
                        out,
                    );
                }
            }
            "content_block_start" => {
                let index = event.index.unwrap_or(self.blocks.len());
                let block = event.content_block.unwrap_or_default();
                let kind = match block.kind.as_ref() {
                    "text" => BlockKind::Text,
                    "thinking" => BlockKind::Thinking,
                    "tool_use"
                        if self.plan.json_tool && block.name.as_deref() == Some(JSON_TOOL_NAME) =>
                    {
                        BlockKind::JsonAnswer
                    }
                    "tool_use" => {
                        let ordinal = self.tools;
                        self.tools += 1;
                        encoder.event(
                            StreamEvent::ToolCallStart {
                                index: ordinal,
                                id: block.id.unwrap_or_default(),
                                name: block.name.unwrap_or_default(),
                            },
                            out,
                        );
                        BlockKind::Tool {
                            ordinal,
                            has_arguments: false,
                        }
                    }
                    "redacted_thinking" => {
                        if let Some(data) = &block.data {
                            encoder.event(
                                StreamEvent::RedactedReasoning(JsonStr::from_text(data)),
                                out,
                            );
                        }
                        BlockKind::Other
                    }
                    _ => BlockKind::Other,
                };
                if self.blocks.len() <= index {
                    self.blocks.resize(index + 1, BlockKind::Other);
                }
                self.blocks[index] = kind;
                if let (BlockKind::Text, Some(text)) = (kind, block.text.filter(|t| !t.is_empty()))
                {
                    encoder.event(StreamEvent::Text(JsonStr::from_text(&text)), out);
                }
            }
            "content_block_delta" => {
                let index = event.index.unwrap_or(0);
                let Some(delta) = event.delta else {
                    return Ok(());
                };
                match (self.block(index), delta.kind) {
                    (_, Some("text_delta")) => {
                        if let Some(text) = delta.text.and_then(JsonStr::from_raw) {
                            encoder.event(StreamEvent::Text(text), out);
                        }
                    }
                    (_, Some("thinking_delta")) => {
                        if let Some(text) = delta.thinking.and_then(JsonStr::from_raw) {
                            encoder.event(StreamEvent::Reasoning(text), out);
                        }
                    }
                    (_, Some("signature_delta")) => {
                        if let Some(signature) = delta.signature.and_then(JsonStr::from_raw) {
                            encoder.event(StreamEvent::ReasoningSignature(signature), out);
                        }
                    }
                    (BlockKind::Tool { ordinal, .. }, Some("input_json_delta")) => {
                        if let Some(fragment) = delta
                            .partial_json
                            .and_then(JsonStr::from_raw)
                            .filter(|f| !f.is_empty())
                        {
                            self.blocks[index] = BlockKind::Tool {
                                ordinal,
                                has_arguments: true,
                            };
                            encoder.event(
                                StreamEvent::ToolCallArguments {
                                    index: ordinal,
                                    fragment,
                                },
                                out,
                            );
                        }
                    }
                    (BlockKind::JsonAnswer, Some("input_json_delta")) => {
                        if let Some(fragment) = delta
                            .partial_json
                            .and_then(JsonStr::from_raw)
                            .filter(|f| !f.is_empty())
                        {
                            encoder.event(StreamEvent::Text(fragment), out);
                        }
                    }
                    _ => {}
                }
            }
            "content_block_stop" => {
                let index = event.index.unwrap_or(0);
                if let BlockKind::Tool {
                    ordinal,
                    has_arguments: false,
                } = self.block(index)
                {
                    // A call without arguments still gives the client valid JSON.
                    encoder.event(
                        StreamEvent::ToolCallArguments {
                            index: ordinal,
                            fragment: JsonStr::from_text("{}"),
                        },
                        out,
                    );
                }
            }
            "message_delta" => {
                if let Some(reason) = event.delta.as_ref().and_then(|d| d.stop_reason.as_deref()) {
                    let reason = finish_reason(reason);
                    let reason = if self.plan.json_tool
                        && reason == FinishReason::ToolCalls
                        && self.tools == 0
                    {
                        FinishReason::Stop
                    } else {
                        reason
                    };
                    self.stop_reason = Some(reason);
                }
                if let Some(usage) = event.usage {
                    // Cumulative: the latest figures replace the earlier ones they cover.
                    self.usage.output_tokens = usage.output_tokens;
                    if usage.input_tokens > 0 {
                        self.usage.input_tokens = usage.input_tokens;
                    }
                    if usage.cache_read_input_tokens.is_some() {
                        self.usage.cache_read_input_tokens = usage.cache_read_input_tokens;
                    }
                    if usage.cache_creation_input_tokens.is_some() {
                        self.usage.cache_creation_input_tokens = usage.cache_creation_input_tokens;
                    }
                    if usage.cache_creation.is_some() {
                        self.usage.cache_creation = usage.cache_creation;
                    }
                }
            }
            "message_stop" => {
                encoder.event(
                    StreamEvent::Finish(self.stop_reason.unwrap_or(FinishReason::Stop)),
                    out,
                );
                encoder.event(StreamEvent::Usage(token_usage(&self.usage)), out);
            }
            "error" => {
                let body = format!(
                    "{{\"type\":\"error\",\"error\":{}}}",
                    serde_json::to_string(&event.error).unwrap_or_default()
                );
                return Err(super::errors::provider_error(
                    http::StatusCode::INTERNAL_SERVER_ERROR,
                    body.as_bytes(),
                ));
            }
            _ => {} // ping, and event types added later
        }
        Ok(())
    }
}

impl StreamDecoder for AnthropicDecoder {
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
