//! Canonical (OpenAI chat) request → Cohere `/v2/chat`; Cohere answers and stream events →
//! canonical.
//!
//! Choices made where the formats differ (also in docs/providers.md):
//! - `top_p` → `p`, `top_k` → `k`, `stop` → `stop_sequences`; `max_completion_tokens` →
//!   `max_tokens`.
//! - `tool_choice` `required` / `none` → `REQUIRED` / `NONE`; a named function keeps only that
//!   tool and requires it (Cohere cannot name one). `parallel_tool_calls: false` has no
//!   equivalent: refused, or dropped with `drop_params`.
//! - `response_format` json_schema → `{"type": "json_object", "json_schema": …}`.
//! - the `tool_plan` the model writes before calling tools, and `thinking` content, come back
//!   as `reasoning_content`.
//! - usage counts `usage.tokens` (what the model processed), else `billed_units`.

use std::borrow::Cow;
use std::collections::HashMap;

use bytes::{Bytes, BytesMut};
use tollgate_core::error::GatewayError;
use tollgate_wire::cohere::{
    ChatRequest as CohereRequest, ChatResponse, ContentPart as CoherePart, Function, ImageUrl,
    Message, StreamEvent as Event, ToolCall, Usage,
};
use tollgate_wire::openai::{ChatMessage, ChatRequest, ToolChoice};
use tollgate_wire::raw::{JsonStr, TextOr};

use crate::canonical::{
    Completion, FinishReason, StreamDecoder, StreamEncoder, StreamEvent, TokenUsage, ToolCallOut,
};
use crate::params::ParamPolicy;
use crate::sse::{EventFramer, event_data};

pub fn encode_request(
    request: &ChatRequest<'_>,
    model: &str,
    policy: &ParamPolicy,
) -> Result<Bytes, GatewayError> {
    for (param, present) in [
        ("n", request.n.is_some_and(|n| n > 1)),
        ("logit_bias", request.logit_bias.is_some()),
        ("logprobs", request.logprobs == Some(true)),
        ("top_logprobs", request.top_logprobs.is_some()),
        ("reasoning_effort", request.reasoning_effort.is_some()),
        ("thinking", request.thinking.is_some()),
    ] {
        if present {
            policy.unsupported(param)?;
        }
    }
    // Cohere's `tool_choice` is REQUIRED or NONE, and no other parameter limits the calls.
    policy.cannot_disable_parallel_tool_calls(request)?;
    for param in request.openai_only.keys() {
        policy.unsupported(param)?;
    }

    let mut messages = Vec::with_capacity(request.messages.len());
    for message in &request.messages {
        messages.push(convert_message(message)?);
    }

    let (tools, tool_choice) = tools_and_choice(request)?;
    let response_format = match &request.response_format {
        None => None,
        Some(format) => match format.kind.as_ref() {
            "text" => None,
            "json_object" => Some(serde_json::json!({"type": "json_object"})),
            "json_schema" => {
                let schema: Option<serde_json::Value> =
                    match format.json_schema.as_ref().and_then(|s| s.schema) {
                        Some(raw) => Some(serde_json::from_str(raw.get()).map_err(|_| {
                            GatewayError::invalid_param(
                                "response_format",
                                "`response_format.json_schema.schema` is not valid JSON.",
                            )
                        })?),
                        None => None,
                    };
                Some(match schema {
                    Some(schema) => {
                        serde_json::json!({"type": "json_object", "json_schema": schema})
                    }
                    None => serde_json::json!({"type": "json_object"}),
                })
            }
            other => {
                return Err(GatewayError::invalid_param(
                    "response_format",
                    format!("Unknown `response_format` type `{other}`."),
                ));
            }
        },
    };

    let body = CohereRequest {
        model: Cow::Borrowed(model),
        messages,
        stream: request.stream.filter(|stream| *stream),
        tools,
        tool_choice,
        response_format,
        max_tokens: request.max_output_tokens(),
        stop_sequences: match &request.stop {
            None => Vec::new(),
            Some(TextOr::Text(stop)) => vec![stop.clone()],
            Some(TextOr::List(stops)) => stops.iter().filter(|s| !s.is_empty()).cloned().collect(),
        },
        temperature: request.temperature,
        seed: request.seed,
        frequency_penalty: request.frequency_penalty,
        presence_penalty: request.presence_penalty,
        k: request.top_k,
        p: request.top_p,
        extra: request.extra.clone(),
    };
    serde_json::to_vec(&body).map(Bytes::from).map_err(|err| {
        GatewayError::internal(format!("could not encode the Cohere request: {err}"))
    })
}

fn convert_message<'a>(message: &'a ChatMessage<'a>) -> Result<Message<'a>, GatewayError> {
    let role = match message.role.as_ref() {
        "system" | "developer" => "system",
        "user" => "user",
        "assistant" => "assistant",
        "tool" | "function" => "tool",
        other => {
            return Err(GatewayError::invalid_param(
                "messages",
                format!("Unknown message role `{other}`."),
            ));
        }
    };
    let mut parts = Vec::new();
    match &message.content {
        None => {}
        Some(TextOr::Text(text)) => parts.push(CoherePart::Text { text: text.clone() }),
        Some(TextOr::List(content)) => {
            for part in content {
                match part.kind.as_ref() {
                    "text" => {
                        if let Some(text) = &part.text {
                            parts.push(CoherePart::Text { text: text.clone() });
                        }
                    }
                    "image_url" if role == "user" => {
                        let image = part.image_url.as_ref().ok_or_else(|| {
                            GatewayError::invalid_param(
                                "messages",
                                "An `image_url` part has no `image_url`.",
                            )
                        })?;
                        parts.push(CoherePart::ImageUrl {
                            image_url: ImageUrl {
                                url: image.url.clone(),
                                detail: image.detail.clone(),
                            },
                        });
                    }
                    other => {
                        return Err(GatewayError::invalid_param(
                            "messages",
                            format!("Content parts of type `{other}` cannot be sent to Cohere."),
                        ));
                    }
                }
            }
        }
    }
    let tool_calls = message
        .tool_calls
        .iter()
        .flatten()
        .map(|call| ToolCall {
            id: call.id.clone().unwrap_or_default(),
            kind: Cow::Borrowed("function"),
            function: Function {
                name: call.function.name.clone(),
                arguments: if call.function.arguments.trim().is_empty() {
                    Cow::Borrowed("{}")
                } else {
                    call.function.arguments.clone()
                },
            },
        })
        .collect();
    Ok(Message {
        role,
        content: (!parts.is_empty()).then_some(parts),
        tool_calls,
        tool_call_id: message.tool_call_id.clone(),
    })
}

/// The tools as OpenAI writes them (Cohere takes the same shape, without `cache_control`), and
/// the tool choice.
fn tools_and_choice(
    request: &ChatRequest<'_>,
) -> Result<(Vec<serde_json::Value>, Option<&'static str>), GatewayError> {
    let mut only = None;
    let choice = match &request.tool_choice {
        None => None,
        Some(ToolChoice::Mode(mode)) => match mode.as_ref() {
            "auto" => None,
            "required" => Some("REQUIRED"),
            "none" => Some("NONE"),
            other => {
                return Err(GatewayError::invalid_param(
                    "tool_choice",
                    format!(
                        "`tool_choice` must be auto, none, required or a named function, got `{other}`."
                    ),
                ));
            }
        },
        Some(ToolChoice::Function(name)) => {
            only = Some(name.as_ref());
            Some("REQUIRED")
        }
    };
    let tools = request
        .tools
        .iter()
        .flatten()
        .filter(|tool| only.is_none_or(|name| name == tool.function.name))
        .map(|tool| {
            let mut function = serde_json::json!({"name": tool.function.name});
            if let Some(description) = &tool.function.description {
                function["description"] = description.as_ref().into();
            }
            if let Some(parameters) = tool.function.parameters {
                function["parameters"] = serde_json::from_str(parameters.get()).unwrap_or_default();
            }
            serde_json::json!({"type": "function", "function": function})
        })
        .collect();
    Ok((tools, choice))
}

// ----- reading Cohere's answers ---------------------------------------------------------------

pub fn finish_reason(reason: &str) -> FinishReason {
    match reason {
        "MAX_TOKENS" => FinishReason::Length,
        "TOOL_CALL" => FinishReason::ToolCalls,
        "ERROR_TOXIC" => FinishReason::ContentFilter,
        _ => FinishReason::Stop,
    }
}

pub fn token_usage(usage: &Usage) -> TokenUsage {
    let tokens = usage.tokens.or(usage.billed_units).unwrap_or_default();
    TokenUsage {
        input: tokens.input_tokens as u64,
        output: tokens.output_tokens as u64,
        cache_read: usage.cached_tokens.unwrap_or(0),
        cache_write: 0,
        cache_write_1h: 0,
        reasoning: 0,
    }
}

fn unreadable(err: serde_json::Error) -> GatewayError {
    GatewayError::upstream_unreachable(format!("Cohere's response could not be read: {err}."))
}

pub fn decode_response<'a>(body: &'a [u8], model: &'a str) -> Result<Completion<'a>, GatewayError> {
    let response: ChatResponse<'a> = serde_json::from_slice(body).map_err(unreadable)?;
    let mut text = String::new();
    let mut reasoning = String::new();
    if let Some(plan) = &response.message.tool_plan {
        reasoning.push_str(plan);
    }
    for part in &response.message.content {
        match part.kind.as_ref() {
            "text" => text.push_str(part.text.as_deref().unwrap_or_default()),
            "thinking" => reasoning.push_str(part.thinking.as_deref().unwrap_or_default()),
            _ => {}
        }
    }
    let tool_calls: Vec<ToolCallOut<'a>> = response
        .message
        .tool_calls
        .into_iter()
        .map(|call| ToolCallOut {
            id: call.id,
            name: call.function.name,
            arguments: call.function.arguments,
        })
        .collect();
    Ok(Completion {
        id: response.id,
        model: Cow::Borrowed(model),
        text: (!text.is_empty() || tool_calls.is_empty()).then_some(Cow::Owned(text)),
        reasoning: (!reasoning.is_empty()).then_some(Cow::Owned(reasoning)),
        finish_reason: Some(
            response
                .finish_reason
                .as_deref()
                .map_or(FinishReason::Stop, finish_reason),
        ),
        usage: response.usage.as_ref().map(token_usage),
        tool_calls,
        ..Completion::default()
    })
}

/// Cohere's stream events → canonical events.
pub struct CohereDecoder {
    model: String,
    events: EventFramer,
    /// Cohere's tool-call index → (the answer's tool-call ordinal, has arguments).
    tools: HashMap<usize, (usize, bool)>,
    finished: bool,
}

impl CohereDecoder {
    pub fn new(model: &str) -> Self {
        CohereDecoder {
            model: model.to_owned(),
            events: EventFramer::default(),
            tools: HashMap::new(),
            finished: false,
        }
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
        let event: Event<'_> = serde_json::from_slice(&data).map_err(unreadable)?;
        let delta = event.delta.unwrap_or_default();
        let message = delta.message.unwrap_or_default();
        match event.kind.as_ref() {
            "message-start" => encoder.event(
                StreamEvent::Start {
                    id: event.id.unwrap_or(Cow::Borrowed("")),
                    model: Cow::Borrowed(self.model.as_str()),
                },
                out,
            ),
            "content-delta" => {
                if let Some(content) = message.content {
                    if let Some(text) = content
                        .text
                        .and_then(JsonStr::from_raw)
                        .filter(|t| !t.is_empty())
                    {
                        encoder.event(StreamEvent::Text(text), out);
                    }
                    if let Some(thought) = content
                        .thinking
                        .and_then(JsonStr::from_raw)
                        .filter(|t| !t.is_empty())
                    {
                        encoder.event(StreamEvent::Reasoning(thought), out);
                    }
                }
            }
            "tool-plan-delta" => {
                if let Some(plan) = message
                    .tool_plan
                    .and_then(JsonStr::from_raw)
                    .filter(|t| !t.is_empty())
                {
                    encoder.event(StreamEvent::Reasoning(plan), out);
                }
            }
            "tool-call-start" => {
                let call = message.tool_calls.unwrap_or_default();
                let function = call.function.unwrap_or_default();
                let ordinal = self.tools.len();
                let index = event.index.unwrap_or(ordinal);
                encoder.event(
                    StreamEvent::ToolCallStart {
                        index: ordinal,
                        id: call.id.unwrap_or_default(),
                        name: function.name.unwrap_or_default(),
                    },
                    out,
                );
                let arguments = function
                    .arguments
                    .and_then(JsonStr::from_raw)
                    .filter(|a| !a.is_empty());
                let has_arguments = arguments.is_some();
                if let Some(fragment) = arguments {
                    encoder.event(
                        StreamEvent::ToolCallArguments {
                            index: ordinal,
                            fragment,
                        },
                        out,
                    );
                }
                self.tools.insert(index, (ordinal, has_arguments));
            }
            "tool-call-delta" => {
                let index = event.index.unwrap_or(0);
                let fragment = message
                    .tool_calls
                    .and_then(|call| call.function)
                    .and_then(|function| function.arguments)
                    .and_then(JsonStr::from_raw)
                    .filter(|a| !a.is_empty());
                if let (Some(fragment), Some((ordinal, has_arguments))) =
                    (fragment, self.tools.get_mut(&index))
                {
                    *has_arguments = true;
                    encoder.event(
                        StreamEvent::ToolCallArguments {
                            index: *ordinal,
                            fragment,
                        },
                        out,
                    );
                }
            }
            "tool-call-end" => {
                let index = event.index.unwrap_or(0);
                if let Some((ordinal, false)) = self.tools.get(&index).copied() {
                    encoder.event(
                        StreamEvent::ToolCallArguments {
                            index: ordinal,
                            fragment: JsonStr::from_text("{}"),
                        },
                        out,
                    );
                }
            }
            "message-end" => {
                if let Some(error) = delta.error.filter(|e| !e.is_empty()) {
                    return Err(GatewayError::upstream_unreachable(format!(
                        "Cohere ended the stream with an error: {error}"
                    )));
                }
                self.finished = true;
                let reason = delta
                    .finish_reason
                    .as_deref()
                    .map_or(FinishReason::Stop, finish_reason);
                encoder.event(StreamEvent::Finish(reason), out);
                if let Some(usage) = &delta.usage {
                    encoder.event(StreamEvent::Usage(token_usage(usage)), out);
                }
            }
            _ => {}
        }
        Ok(())
    }
}

impl StreamDecoder for CohereDecoder {
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
        if !self.finished {
            return Err(GatewayError::upstream_unreachable(
                "Cohere's stream ended before its message-end event.",
            ));
        }
        Ok(())
    }
}
