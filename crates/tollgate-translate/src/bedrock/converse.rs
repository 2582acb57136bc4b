//! Canonical (OpenAI chat) request → Bedrock Converse request; Converse answers and
//! ConverseStream events → canonical.
//!
//! Choices made where the formats differ (also in docs/providers.md):
//! - `system`/`developer` messages become `system` blocks; consecutive `user` and `tool`
//!   messages form one user turn (tool results first); `cache_control` on a message, part or
//!   tool adds a `cachePoint` after it.
//! - images and documents must be inline (`data:` URLs): Converse takes bytes, not URLs.
//! - `response_format` (json_object / json_schema) is a forced tool named `json_tool_call`,
//!   whose input becomes the answer's content (as for Anthropic).
//! - Converse has no `tool_choice: none`: the tools are left out, unless the history holds
//!   tool calls (Converse then needs them declared) — the model may still call one.
//! - nor any way to disable parallel tool calls: `parallel_tool_calls: false` is refused, or
//!   dropped with `drop_params`.
//! - reasoning (`reasoning_effort`, `thinking`) and `top_k` go to Claude models in
//!   `additionalModelRequestFields`; other keys Converse does not know go there too, and
//!   Converse's own (`guardrailConfig`, `performanceConfig`, …) stay top-level.

use std::borrow::Cow;

use bytes::{Bytes, BytesMut};
use serde_json::value::RawValue;
use tollgate_core::error::GatewayError;
use tollgate_wire::bedrock::{
    Block, CachePoint, ContentBlockDelta, ContentBlockStart, ContentBlockStop, ConverseRequest,
    ConverseResponse, Document, Empty, InferenceConfig, InputSchema, Media, MediaSource, Message,
    MessageStop, Reasoning, StreamMetadata, SystemBlock, TokenUsage as BedrockUsage, ToolChoice,
    ToolConfig, ToolEntry, ToolResult, ToolResultContent, ToolSpec, ToolUse,
};
use tollgate_wire::openai::{
    ChatMessage, ChatRequest, ContentPart, ThinkingBlock, ToolChoice as OpenAiToolChoice,
};
use tollgate_wire::raw::{JsonStr, RawFields, TextOr};

use super::eventstream::{Frame, FrameReader};
use crate::anthropic::outbound::JSON_TOOL_NAME;
use crate::canonical::{
    Completion, FinishReason, StreamDecoder, StreamEncoder, StreamEvent, TokenUsage, ToolCallOut,
};
use crate::params::ParamPolicy;

/// Converse's own top-level request fields, kept top-level when a client sends them.
const CONVERSE_FIELDS: &[&str] = &[
    "guardrailConfig",
    "performanceConfig",
    "requestMetadata",
    "promptVariables",
    "additionalModelResponseFieldPaths",
    "serviceTier",
];

static EMPTY_OBJECT_SCHEMA: &str = r#"{"type":"object","properties":{}}"#;
static ANY_OBJECT_SCHEMA: &str = r#"{"type":"object","additionalProperties":true}"#;

fn raw_static(json: &'static str) -> &'static RawValue {
    serde_json::from_str(json).expect("a valid static schema")
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
    /// The Bedrock model id (`anthropic.claude-…`, `us.amazon.nova-pro-v1:0`, an ARN).
    pub model: &'a str,
}

impl Target<'_> {
    fn is_claude(&self) -> bool {
        self.model.contains("anthropic.")
    }
}

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
    // `toolChoice` is auto, any or one tool; nothing limits calls per turn, for any model.
    policy.cannot_disable_parallel_tool_calls(request)?;
    for param in request.openai_only.keys() {
        policy.unsupported(param)?;
    }

    let arguments: Vec<Box<RawValue>> = request
        .messages
        .iter()
        .flat_map(|message| message.tool_calls.iter().flatten())
        .map(|call| {
            let text = call.function.arguments.trim();
            let text = if text.is_empty() { "{}" } else { text };
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

    let mut system: Vec<SystemBlock<'_>> = Vec::new();
    let mut messages: Vec<Message<'_>> = Vec::new();
    let mut documents = 0usize;
    for message in &request.messages {
        match message.role.as_ref() {
            "system" | "developer" => {
                let start = system.len();
                match &message.content {
                    Some(TextOr::Text(text)) if !text.is_empty() => {
                        system.push(SystemBlock::Text(text.clone()))
                    }
                    Some(TextOr::List(parts)) => {
                        for part in parts.iter().filter(|p| p.kind == "text") {
                            if let Some(text) = part.text.as_ref().filter(|t| !t.is_empty()) {
                                system.push(SystemBlock::Text(text.clone()));
                                if part.cache_control.is_some() {
                                    system.push(SystemBlock::CachePoint(CachePoint::DEFAULT));
                                }
                            }
                        }
                    }
                    _ => {}
                }
                let cached_already = matches!(system.last(), Some(SystemBlock::CachePoint(_)));
                if message.cache_control.is_some() && system.len() > start && !cached_already {
                    system.push(SystemBlock::CachePoint(CachePoint::DEFAULT));
                }
            }
            "user" => {
                let blocks = user_blocks(message, &mut documents)?;
                push_turn(&mut messages, "user", blocks);
            }
            "tool" | "function" => {
                let block = tool_result(message, &mut documents)?;
                push_turn(&mut messages, "user", block);
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

    let thinking = thinking_fields(request, target, policy)?;
    let mut plan = Plan::default();
    let history_has_tools = messages.iter().any(|m| {
        m.content
            .iter()
            .any(|b| matches!(b, Block::ToolUse(_) | Block::ToolResult(_)))
    });
    let choice_none =
        matches!(&request.tool_choice, Some(OpenAiToolChoice::Mode(mode)) if mode == "none");
    let mut tools: Vec<ToolEntry<'_>> = Vec::new();
    if !choice_none || history_has_tools {
        for tool in request.tools.iter().flatten() {
            tools.push(ToolEntry::ToolSpec(ToolSpec {
                name: tool.function.name.clone(),
                description: tool.function.description.clone(),
                input_schema: InputSchema {
                    json: tool
                        .function
                        .parameters
                        .unwrap_or_else(|| raw_static(EMPTY_OBJECT_SCHEMA)),
                },
            }));
            if tool.cache_control.is_some() {
                tools.push(ToolEntry::CachePoint(CachePoint::DEFAULT));
            }
        }
    }
    let mut tool_choice = match &request.tool_choice {
        None => None,
        Some(OpenAiToolChoice::Mode(mode)) => match mode.as_ref() {
            "auto" | "none" => None,
            "required" => Some(ToolChoice::Any(Empty {})),
            other => {
                return Err(GatewayError::invalid_param(
                    "tool_choice",
                    format!(
                        "`tool_choice` must be auto, none, required or a named function, got `{other}`."
                    ),
                ));
            }
        },
        Some(OpenAiToolChoice::Function(name)) => Some(ToolChoice::Tool { name: name.clone() }),
    };

    let mut system_suffix = None;
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
                system_suffix = Some(format!(
                    "Answer with a single JSON value, and nothing else, that conforms to this JSON Schema: {}",
                    schema.get()
                ));
            } else {
                plan.json_tool = true;
                tools.push(ToolEntry::ToolSpec(ToolSpec {
                    name: JSON_TOOL_NAME.into(),
                    description: Some("Respond with the answer as this tool's input.".into()),
                    input_schema: InputSchema { json: schema },
                }));
                tool_choice = Some(ToolChoice::Tool {
                    name: JSON_TOOL_NAME.into(),
                });
            }
        }
    }
    if let Some(suffix) = system_suffix {
        system.push(SystemBlock::Text(Cow::Owned(suffix)));
    }
    if history_has_tools && tools.is_empty() {
        // Converse refuses tool blocks in the history when no tools are declared.
        tools.push(ToolEntry::ToolSpec(ToolSpec {
            name: "tollgate_no_tools".into(),
            description: Some(
                "Not callable; declared because the conversation contains tool calls.".into(),
            ),
            input_schema: InputSchema {
                json: raw_static(EMPTY_OBJECT_SCHEMA),
            },
        }));
    }

    let mut additional = serde_json::Map::new();
    if let Some(thinking) = thinking {
        additional.insert("thinking".into(), thinking);
    }
    if let Some(top_k) = request.top_k {
        additional.insert("top_k".into(), top_k.into());
    }
    let mut extra = RawFields::default();
    for (key, value) in &request.extra.0 {
        if CONVERSE_FIELDS.contains(&key.as_ref()) {
            extra.push(key.clone(), value);
        } else {
            let value: serde_json::Value = serde_json::from_str(value.get())
                .map_err(|err| GatewayError::invalid_param("messages", err.to_string()))?;
            additional.insert(key.to_string(), value);
        }
    }

    let body = ConverseRequest {
        messages,
        system,
        inference_config: InferenceConfig {
            max_tokens: request.max_output_tokens(),
            temperature: request.temperature,
            top_p: request.top_p,
            stop_sequences: match &request.stop {
                None => Vec::new(),
                Some(TextOr::Text(stop)) if stop.is_empty() => Vec::new(),
                Some(TextOr::Text(stop)) => vec![stop.clone()],
                Some(TextOr::List(stops)) => {
                    stops.iter().filter(|s| !s.is_empty()).cloned().collect()
                }
            },
        },
        tool_config: (!tools.is_empty()).then_some(ToolConfig { tools, tool_choice }),
        additional_model_request_fields: additional,
        extra,
    };
    let bytes = serde_json::to_vec(&body).map_err(|err| {
        GatewayError::internal(format!("could not encode the Converse request: {err}"))
    })?;
    Ok((Bytes::from(bytes), plan))
}

/// Claude's `thinking` for `additionalModelRequestFields`, from `thinking` or
/// `reasoning_effort` (budgets as for Anthropic's own API).
fn thinking_fields(
    request: &ChatRequest<'_>,
    target: Target<'_>,
    policy: &ParamPolicy,
) -> Result<Option<serde_json::Value>, GatewayError> {
    let thinking = if let Some(raw) = &request.thinking {
        let value: serde_json::Value = serde_json::from_str(raw.get()).map_err(|err| {
            GatewayError::invalid_param("thinking", format!("`thinking` is not valid: {err}."))
        })?;
        (value["type"] != "disabled").then_some(value)
    } else {
        let budget = match request.reasoning_effort.as_deref() {
            None | Some("none") => None,
            Some("minimal" | "low") => Some(1024),
            Some("medium") => Some(2048),
            Some("high") => Some(4096),
            Some("xhigh") => Some(8192),
            Some(other) => {
                return Err(GatewayError::invalid_param(
                    "reasoning_effort",
                    format!(
                        "`reasoning_effort` must be none, minimal, low, medium or high, got `{other}`."
                    ),
                ));
            }
        };
        budget.map(|budget| serde_json::json!({"type": "enabled", "budget_tokens": budget}))
    };
    match thinking {
        Some(_) if !target.is_claude() => {
            let param = if request.thinking.is_some() {
                "thinking"
            } else {
                "reasoning_effort"
            };
            policy.unsupported(param)?;
            Ok(None)
        }
        other => Ok(other),
    }
}

fn push_turn<'a>(messages: &mut Vec<Message<'a>>, role: &'static str, mut blocks: Vec<Block<'a>>) {
    if blocks.is_empty() {
        return;
    }
    if let Some(last) = messages.last_mut()
        && last.role == role
    {
        if blocks
            .iter()
            .all(|b| matches!(b, Block::ToolResult(_) | Block::CachePoint(_)))
        {
            let results = last
                .content
                .iter()
                .take_while(|b| matches!(b, Block::ToolResult(_) | Block::CachePoint(_)))
                .count();
            last.content.splice(results..results, blocks);
        } else {
            last.content.append(&mut blocks);
        }
        return;
    }
    messages.push(Message {
        role,
        content: blocks,
    });
}

fn text_of<'a>(message: &'a ChatMessage<'a>, into: &mut Vec<Cow<'a, str>>) {
    match &message.content {
        Some(TextOr::Text(text)) if !text.is_empty() => into.push(text.clone()),
        Some(TextOr::List(parts)) => {
            for part in parts.iter().filter(|p| p.kind == "text") {
                if let Some(text) = part.text.as_ref().filter(|t| !t.is_empty()) {
                    into.push(text.clone());
                }
            }
        }
        _ => {}
    }
}

fn user_blocks<'a>(
    message: &'a ChatMessage<'a>,
    documents: &mut usize,
) -> Result<Vec<Block<'a>>, GatewayError> {
    let mut blocks = Vec::new();
    match &message.content {
        None => {}
        Some(TextOr::Text(text)) if text.is_empty() => {}
        Some(TextOr::Text(text)) => blocks.push(Block::Text(text.clone())),
        Some(TextOr::List(parts)) => {
            for part in parts {
                if let Some(block) = part_block(part, documents)? {
                    blocks.push(block);
                    if part.cache_control.is_some() {
                        blocks.push(Block::CachePoint(CachePoint::DEFAULT));
                    }
                }
            }
        }
    }
    if message.cache_control.is_some() && !blocks.is_empty() {
        blocks.push(Block::CachePoint(CachePoint::DEFAULT));
    }
    Ok(blocks)
}

fn part_block<'a>(
    part: &'a ContentPart<'a>,
    documents: &mut usize,
) -> Result<Option<Block<'a>>, GatewayError> {
    match part.kind.as_ref() {
        "text" => Ok(part
            .text
            .as_ref()
            .filter(|t| !t.is_empty())
            .map(|text| Block::Text(text.clone()))),
        "image_url" => {
            let image = part.image_url.as_ref().ok_or_else(|| {
                GatewayError::invalid_param("messages", "An `image_url` part has no `image_url`.")
            })?;
            let (media_type, data) = data_url(&image.url, image.format.as_deref())?;
            media_block(media_type, data, documents).map(Some)
        }
        "file" => {
            let file = part.file.as_ref().ok_or_else(|| {
                GatewayError::invalid_param("messages", "A `file` part has no `file`.")
            })?;
            let data = file.file_data.as_ref().ok_or_else(|| {
                GatewayError::invalid_param(
                    "messages",
                    "Bedrock needs files inline: send `file_data` (a `data:` URL), not `file_id`.",
                )
            })?;
            let (media_type, data) = data_url(data, file.format.as_deref())?;
            media_block(media_type, data, documents).map(Some)
        }
        other => Err(GatewayError::invalid_param(
            "messages",
            format!("Content parts of type `{other}` cannot be sent to Bedrock."),
        )),
    }
}

/// `(media type, base64 data)` of a `data:` URL; Converse takes no URLs.
fn data_url<'a>(
    url: &'a str,
    stated_type: Option<&'a str>,
) -> Result<(&'a str, &'a str), GatewayError> {
    let rest = url.strip_prefix("data:").ok_or_else(|| {
        GatewayError::invalid_param(
            "messages",
            "Bedrock takes images and documents inline: use a base64 `data:` URL.",
        )
    })?;
    let (meta, data) = rest.split_once(',').ok_or_else(|| {
        GatewayError::invalid_param("messages", "A `data:` URL has no `,` before its data.")
    })?;
    let media_type = meta.strip_suffix(";base64").ok_or_else(|| {
        GatewayError::invalid_param("messages", "Only base64 `data:` URLs are supported.")
    })?;
    Ok((stated_type.unwrap_or(media_type), data))
}

fn media_block<'a>(
    media_type: &'a str,
    data: &'a str,
    documents: &mut usize,
) -> Result<Block<'a>, GatewayError> {
    let source = MediaSource {
        bytes: Cow::Borrowed(data),
    };
    if let Some(format) = media_type.strip_prefix("image/") {
        let format = if format == "jpg" { "jpeg" } else { format };
        if !matches!(format, "png" | "jpeg" | "gif" | "webp") {
            return Err(GatewayError::invalid_param(
                "messages",
                format!("Bedrock takes png, jpeg, gif and webp images, not `{media_type}`."),
            ));
        }
        return Ok(Block::Image(Media {
            format: Cow::Borrowed(format),
            source,
        }));
    }
    let format = match media_type {
        "application/pdf" => "pdf",
        "text/csv" => "csv",
        "text/html" => "html",
        "text/plain" => "txt",
        "text/markdown" => "md",
        "application/msword" => "doc",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document" => "docx",
        "application/vnd.ms-excel" => "xls",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" => "xlsx",
        other => {
            return Err(GatewayError::invalid_param(
                "messages",
                format!("Bedrock cannot take documents of type `{other}`."),
            ));
        }
    };
    *documents += 1;
    Ok(Block::Document(Document {
        format: Cow::Borrowed(format),
        // Names must be unique within a request and use a restricted alphabet.
        name: Cow::Owned(format!("document-{documents}")),
        source,
    }))
}

fn tool_result<'a>(
    message: &'a ChatMessage<'a>,
    documents: &mut usize,
) -> Result<Vec<Block<'a>>, GatewayError> {
    let mut content = Vec::new();
    match &message.content {
        None => {}
        Some(TextOr::Text(text)) => content.push(ToolResultContent::Text(text.clone())),
        Some(TextOr::List(parts)) => {
            for part in parts {
                match part_block(part, documents)? {
                    Some(Block::Text(text)) => content.push(ToolResultContent::Text(text)),
                    Some(Block::Image(image)) => content.push(ToolResultContent::Image(image)),
                    _ => {}
                }
            }
        }
    }
    if content.is_empty() {
        content.push(ToolResultContent::Text(Cow::Borrowed("")));
    }
    let mut blocks = vec![Block::ToolResult(ToolResult {
        tool_use_id: message
            .tool_call_id
            .clone()
            .or_else(|| message.name.clone())
            .unwrap_or_default(),
        content,
    })];
    if message.cache_control.is_some() {
        blocks.push(Block::CachePoint(CachePoint::DEFAULT));
    }
    Ok(blocks)
}

fn assistant_blocks<'a>(
    message: &'a ChatMessage<'a>,
    arguments: &mut std::slice::Iter<'a, Box<RawValue>>,
) -> Vec<Block<'a>> {
    let mut blocks = Vec::new();
    for thinking in message.thinking_blocks.iter().flatten() {
        match (thinking.kind.as_ref(), &thinking.data) {
            ("redacted_thinking", Some(data)) => blocks.push(Block::ReasoningContent(
                Reasoning::RedactedContent(data.clone()),
            )),
            _ => blocks.push(Block::ReasoningContent(Reasoning::ReasoningText {
                text: thinking.thinking.clone().unwrap_or_default(),
                signature: thinking.signature.clone(),
            })),
        }
    }
    let mut texts = Vec::new();
    text_of(message, &mut texts);
    // Converse refuses an assistant turn ending in whitespace.
    if let Some(last) = texts.last_mut() {
        let trimmed = last.trim_end().len();
        if trimmed != last.len() {
            *last = Cow::Owned(last[..trimmed].to_owned());
        }
    }
    blocks.extend(texts.into_iter().filter(|t| !t.is_empty()).map(Block::Text));
    for call in message.tool_calls.iter().flatten() {
        let input = arguments
            .next()
            .map(|boxed| &**boxed)
            .unwrap_or_else(|| raw_static("{}"));
        blocks.push(Block::ToolUse(ToolUse {
            tool_use_id: call.id.clone().unwrap_or_default(),
            name: call.function.name.clone(),
            input,
        }));
    }
    if message.cache_control.is_some() && !blocks.is_empty() {
        blocks.push(Block::CachePoint(CachePoint::DEFAULT));
    }
    blocks
}

// ----- reading Converse's answers -------------------------------------------------------------

pub fn finish_reason(stop_reason: &str) -> FinishReason {
    match stop_reason {
        "max_tokens" | "model_context_window_exceeded" => FinishReason::Length,
        "tool_use" => FinishReason::ToolCalls,
        "guardrail_intervened" | "content_filtered" => FinishReason::ContentFilter,
        _ => FinishReason::Stop,
    }
}

pub fn token_usage(usage: &BedrockUsage) -> TokenUsage {
    TokenUsage {
        input: usage.input_tokens + usage.cache_read_input_tokens + usage.cache_write_input_tokens,
        output: usage.output_tokens,
        cache_read: usage.cache_read_input_tokens,
        cache_write: usage.cache_write_input_tokens,
        cache_write_1h: 0,
        reasoning: 0,
    }
}

fn unreadable(err: serde_json::Error) -> GatewayError {
    GatewayError::upstream_unreachable(format!("Bedrock's response could not be read: {err}."))
}

/// Converse answers carry no id; the gateway gives one.
fn new_completion_id() -> String {
    format!("chatcmpl-{}", tollgate_core::ids::new_request_id())
}

pub fn decode_response<'a>(
    body: &'a [u8],
    plan: &Plan,
    model: &'a str,
) -> Result<Completion<'a>, GatewayError> {
    let response: ConverseResponse<'a> = serde_json::from_slice(body).map_err(unreadable)?;
    let mut completion = Completion {
        id: Cow::Owned(new_completion_id()),
        model: Cow::Borrowed(model),
        finish_reason: response.stop_reason.as_deref().map(finish_reason),
        usage: response.usage.as_ref().map(token_usage),
        ..Completion::default()
    };
    let mut text = String::new();
    let mut reasoning = String::new();
    let blocks = response
        .output
        .message
        .map(|m| m.content)
        .unwrap_or_default();
    for block in blocks {
        if let Some(part) = block.text {
            text.push_str(&part);
        }
        if let Some(call) = block.tool_use {
            let arguments = call.input.map(|raw| raw.get()).unwrap_or("{}");
            if plan.json_tool && call.name == JSON_TOOL_NAME {
                text.push_str(arguments);
                completion.finish_reason = Some(FinishReason::Stop);
            } else {
                completion.tool_calls.push(ToolCallOut {
                    id: call.tool_use_id,
                    name: call.name,
                    arguments: Cow::Owned(arguments.to_owned()),
                });
            }
        }
        if let Some(thought) = block.reasoning_content {
            if let Some(reasoning_text) = thought.reasoning_text {
                reasoning.push_str(&reasoning_text.text);
                completion.thinking_blocks.push(ThinkingBlock {
                    kind: "thinking".into(),
                    thinking: Some(reasoning_text.text),
                    signature: reasoning_text.signature,
                    data: None,
                });
            }
            if let Some(data) = thought.redacted_content {
                completion.thinking_blocks.push(ThinkingBlock {
                    kind: "redacted_thinking".into(),
                    thinking: None,
                    signature: None,
                    data: Some(data),
                });
            }
        }
    }
    completion.text =
        (!text.is_empty() || completion.tool_calls.is_empty()).then_some(Cow::Owned(text));
    completion.reasoning = (!reasoning.is_empty()).then_some(Cow::Owned(reasoning));
    Ok(completion)
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum BlockKind {
    Text,
    Tool { ordinal: usize, has_arguments: bool },
    JsonAnswer,
}

/// ConverseStream's event-stream frames → canonical events. Usage comes in the `metadata`
/// event, after `messageStop`.
pub struct ConverseDecoder {
    plan: Plan,
    model: String,
    frames: FrameReader,
    blocks: Vec<BlockKind>,
    tools: usize,
    finish: Option<FinishReason>,
    finished: bool,
}

impl ConverseDecoder {
    pub fn new(plan: Plan, model: &str) -> Self {
        ConverseDecoder {
            plan,
            model: model.to_owned(),
            frames: FrameReader::default(),
            blocks: Vec::new(),
            tools: 0,
            finish: None,
            finished: false,
        }
    }

    fn set_block(&mut self, index: usize, kind: BlockKind) {
        if self.blocks.len() <= index {
            self.blocks.resize(index + 1, BlockKind::Text);
        }
        self.blocks[index] = kind;
    }

    fn emit_finish(&mut self, encoder: &mut dyn StreamEncoder, out: &mut BytesMut) {
        if self.finished {
            return;
        }
        self.finished = true;
        let finish = match self.finish.unwrap_or(FinishReason::Stop) {
            FinishReason::ToolCalls if self.plan.json_tool && self.tools == 0 => FinishReason::Stop,
            other => other,
        };
        encoder.event(StreamEvent::Finish(finish), out);
    }

    fn event(
        &mut self,
        kind: &str,
        payload: &[u8],
        encoder: &mut dyn StreamEncoder,
        out: &mut BytesMut,
    ) -> Result<(), GatewayError> {
        match kind {
            "messageStart" => encoder.event(
                StreamEvent::Start {
                    id: Cow::Owned(new_completion_id()),
                    model: Cow::Owned(self.model.clone()),
                },
                out,
            ),
            "contentBlockStart" => {
                let start: ContentBlockStart<'_> =
                    serde_json::from_slice(payload).map_err(unreadable)?;
                let Some(tool) = start.start.and_then(|s| s.tool_use) else {
                    return Ok(());
                };
                let kind = if self.plan.json_tool && tool.name == JSON_TOOL_NAME {
                    BlockKind::JsonAnswer
                } else {
                    let ordinal = self.tools;
                    self.tools += 1;
                    encoder.event(
                        StreamEvent::ToolCallStart {
                            index: ordinal,
                            id: tool.tool_use_id,
                            name: tool.name,
                        },
                        out,
                    );
                    BlockKind::Tool {
                        ordinal,
                        has_arguments: false,
                    }
                };
                self.set_block(start.content_block_index, kind);
            }
            "contentBlockDelta" => {
                let delta: ContentBlockDelta<'_> =
                    serde_json::from_slice(payload).map_err(unreadable)?;
                let index = delta.content_block_index;
                let block = self.blocks.get(index).copied().unwrap_or(BlockKind::Text);
                let delta = delta.delta;
                if let Some(text) = delta
                    .text
                    .and_then(JsonStr::from_raw)
                    .filter(|t| !t.is_empty())
                {
                    encoder.event(StreamEvent::Text(text), out);
                }
                if let Some(fragment) = delta
                    .tool_use
                    .and_then(|tool| JsonStr::from_raw(tool.input))
                    .filter(|f| !f.is_empty())
                {
                    match block {
                        BlockKind::Tool { ordinal, .. } => {
                            self.set_block(
                                index,
                                BlockKind::Tool {
                                    ordinal,
                                    has_arguments: true,
                                },
                            );
                            encoder.event(
                                StreamEvent::ToolCallArguments {
                                    index: ordinal,
                                    fragment,
                                },
                                out,
                            );
                        }
                        BlockKind::JsonAnswer => encoder.event(StreamEvent::Text(fragment), out),
                        BlockKind::Text => {}
                    }
                }
                if let Some(reasoning) = delta.reasoning_content {
                    if let Some(text) = reasoning
                        .text
                        .and_then(JsonStr::from_raw)
                        .filter(|t| !t.is_empty())
                    {
                        encoder.event(StreamEvent::Reasoning(text), out);
                    }
                    if let Some(signature) = reasoning.signature.and_then(JsonStr::from_raw) {
                        encoder.event(StreamEvent::ReasoningSignature(signature), out);
                    }
                    if let Some(data) = reasoning.redacted_content.and_then(JsonStr::from_raw) {
                        encoder.event(StreamEvent::RedactedReasoning(data), out);
                    }
                }
            }
            "contentBlockStop" => {
                let stop: ContentBlockStop = serde_json::from_slice(payload).map_err(unreadable)?;
                if let Some(BlockKind::Tool {
                    ordinal,
                    has_arguments: false,
                }) = self.blocks.get(stop.content_block_index).copied()
                {
                    encoder.event(
                        StreamEvent::ToolCallArguments {
                            index: ordinal,
                            fragment: JsonStr::from_text("{}"),
                        },
                        out,
                    );
                }
            }
            "messageStop" => {
                let stop: MessageStop<'_> = serde_json::from_slice(payload).map_err(unreadable)?;
                self.finish = stop.stop_reason.as_deref().map(finish_reason);
                self.emit_finish(encoder, out);
            }
            "metadata" => {
                let metadata: StreamMetadata =
                    serde_json::from_slice(payload).map_err(unreadable)?;
                if let Some(usage) = metadata.usage {
                    encoder.event(StreamEvent::Usage(token_usage(&usage)), out);
                }
            }
            _ => {}
        }
        Ok(())
    }
}

impl StreamDecoder for ConverseDecoder {
    fn decode(
        &mut self,
        chunk: Bytes,
        encoder: &mut dyn StreamEncoder,
        out: &mut BytesMut,
    ) -> Result<(), GatewayError> {
        self.frames.push(&chunk);
        while let Some(frame) = self.frames.next_frame()? {
            match frame {
                Frame::Event { kind, payload } => self.event(&kind, &payload, encoder, out)?,
                Frame::Exception { kind, payload } => {
                    return Err(super::errors::stream_exception(&kind, &payload));
                }
            }
        }
        Ok(())
    }

    fn end(
        &mut self,
        _encoder: &mut dyn StreamEncoder,
        _out: &mut BytesMut,
    ) -> Result<(), GatewayError> {
        if self.frames.has_partial_frame() || !self.finished {
            return Err(GatewayError::upstream_unreachable(
                "Bedrock's stream ended before its last event.",
            ));
        }
        Ok(())
    }
}
