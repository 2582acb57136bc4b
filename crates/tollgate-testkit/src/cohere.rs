//! A mock of Cohere's v2 API on a real socket, written from Cohere's API reference:
//! `/v2/chat` (answer with `message.content`, `tool_calls`, `tool_plan`, `usage.tokens` and
//! `billed_units`; the stream's `message-start` … `message-end` events) and `/v2/embed`.
//! Requests need `Authorization: Bearer API_KEY`; unknown fields and a `tool_choice` other
//! than `REQUIRED` / `NONE` are refused as Cohere refuses them.
//!
//! Behaviour by model: `error-400` (too many tokens), `error-429`; anything else echoes the
//! last user text, calls the first tool (after writing a tool plan) when tools are given and
//! the turn does not follow a tool result, and answers `done` after one.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::response::Response;
use bytes::Bytes;
use http::StatusCode;
use serde_json::{Value, json};

use crate::recorder::{CancelGuard, Recorder};
use crate::server::MockProvider;
use crate::sse::{Ending, SseBody, json_response};

pub const API_KEY: &str = "cohere-test-key";
pub const TOOL_PLAN: &str = "I will call the tool.";
/// Prompt tokens Cohere adds on its own (billed units leave them out).
pub const PREAMBLE_TOKENS: u64 = 10;

const CHAT_FIELDS: &[&str] = &[
    "model",
    "messages",
    "tools",
    "strict_tools",
    "documents",
    "citation_options",
    "response_format",
    "safety_mode",
    "max_tokens",
    "stop_sequences",
    "temperature",
    "seed",
    "frequency_penalty",
    "presence_penalty",
    "k",
    "p",
    "logprobs",
    "tool_choice",
    "thinking",
    "stream",
    "priority",
];

pub struct MockCohere;

impl MockCohere {
    pub async fn start() -> MockProvider {
        Self::start_at("127.0.0.1:0").await
    }

    pub async fn start_at(address: &str) -> MockProvider {
        let recorder = Arc::new(Recorder::default());
        let app = Router::new().fallback(handle).with_state(recorder.clone());
        MockProvider::spawn(app, recorder, address, false).await
    }
}

fn error(status: u16, message: &str) -> Response {
    json_response(
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        &json!({"id": "err-mock", "message": message}),
    )
}

async fn handle(State(recorder): State<Arc<Recorder>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let raw_body = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let body = recorder.record(&parts, raw_body);
    let key = parts
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        });
    if key != Some(API_KEY) {
        return error(401, "invalid api token");
    }
    let model = body["model"].as_str().unwrap_or_default().to_owned();
    match model.as_str() {
        "error-400" => {
            return error(
                400,
                "too many tokens: total number of tokens in the prompt cannot exceed 128000 - received 130000. Try using a shorter prompt or a model with a larger context length",
            );
        }
        "error-429" => {
            return error(
                429,
                "You are using a Trial key, which is limited to 10 API calls / minute.",
            );
        }
        _ => {}
    }
    match parts.uri.path() {
        "/v2/chat" => chat(recorder, &body),
        "/v2/embed" => embed(&body),
        other => error(404, &format!("path {other} not found")),
    }
}

fn text_of(message: &Value) -> String {
    match &message["content"] {
        Value::String(text) => text.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p["text"].as_str())
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    }
}

fn words(text: &str) -> u64 {
    text.split_whitespace().count() as u64
}

fn chat(recorder: Arc<Recorder>, body: &Value) -> Response {
    if let Some(object) = body.as_object() {
        for key in object.keys() {
            if !CHAT_FIELDS.contains(&key.as_str()) {
                return error(400, &format!("invalid request: unknown field `{key}`"));
            }
        }
    }
    if let Some(choice) = body.get("tool_choice")
        && choice != "REQUIRED"
        && choice != "NONE"
    {
        return error(
            400,
            "invalid request: tool_choice must be one of REQUIRED, NONE",
        );
    }
    let Some(messages) = body["messages"].as_array() else {
        return error(400, "invalid request: messages is required");
    };
    let after_tool = messages.last().is_some_and(|m| m["role"] == "tool");
    let text = if after_tool {
        "done".to_owned()
    } else {
        messages
            .iter()
            .rev()
            .find(|m| m["role"] == "user")
            .map(text_of)
            .unwrap_or_default()
    };
    let tool = body["tools"]
        .as_array()
        .and_then(|tools| tools.first())
        .and_then(|tool| tool["function"]["name"].as_str())
        .filter(|_| !after_tool && body["tool_choice"] != "NONE")
        .map(str::to_owned);
    let input_tokens: u64 = messages.iter().map(|m| words(&text_of(m))).sum();
    let output_tokens = words(&text).max(1);
    let usage = json!({
        "billed_units": {"input_tokens": input_tokens, "output_tokens": output_tokens},
        "tokens": {"input_tokens": input_tokens + PREAMBLE_TOKENS, "output_tokens": output_tokens},
    });
    let arguments = json!({"echo": text}).to_string();
    let finish = if tool.is_some() {
        "TOOL_CALL"
    } else {
        "COMPLETE"
    };

    if body["stream"] != true {
        let message = match &tool {
            Some(name) => json!({"role": "assistant", "tool_plan": TOOL_PLAN,
                "tool_calls": [{"id": "call_cohere_1", "type": "function", "function": {"name": name, "arguments": arguments}}]}),
            None => json!({"role": "assistant", "content": [{"type": "text", "text": text}]}),
        };
        return json_response(
            StatusCode::OK,
            &json!({"id": "cohere-mock-1", "finish_reason": finish, "message": message, "usage": usage}),
        );
    }
    let mut events = vec![
        json!({"type": "message-start", "id": "cohere-mock-1", "delta": {"message": {"role": "assistant", "content": [], "tool_plan": "", "tool_calls": [], "citations": []}}}),
    ];
    match &tool {
        Some(name) => {
            events.push(
                json!({"type": "tool-plan-delta", "delta": {"message": {"tool_plan": TOOL_PLAN}}}),
            );
            events.push(json!({"type": "tool-call-start", "index": 0, "delta": {"message": {"tool_calls": {"id": "call_cohere_1", "type": "function", "function": {"name": name, "arguments": ""}}}}}));
            let middle = arguments.len() / 2;
            for piece in [&arguments[..middle], &arguments[middle..]] {
                events.push(json!({"type": "tool-call-delta", "index": 0, "delta": {"message": {"tool_calls": {"function": {"arguments": piece}}}}}));
            }
            events.push(json!({"type": "tool-call-end", "index": 0}));
        }
        None => {
            events.push(json!({"type": "content-start", "index": 0, "delta": {"message": {"content": {"type": "text", "text": ""}}}}));
            for (i, word) in text.split(' ').enumerate() {
                let piece = if i == 0 {
                    word.to_owned()
                } else {
                    format!(" {word}")
                };
                events.push(json!({"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": piece}}}}));
            }
            events.push(json!({"type": "content-end", "index": 0}));
        }
    }
    events.push(json!({"type": "message-end", "delta": {"finish_reason": finish, "usage": usage}}));
    let frames: VecDeque<Bytes> = events
        .into_iter()
        .map(|event| {
            let name = event["type"].as_str().unwrap_or_default().to_owned();
            Bytes::from(format!("event: {name}\ndata: {event}\n\n"))
        })
        .collect();
    SseBody::new(
        frames,
        Duration::ZERO,
        Ending::Done,
        CancelGuard::new(recorder),
    )
    .into_response("text/event-stream")
}

fn embed(body: &Value) -> Response {
    let Some(texts) = body["texts"].as_array() else {
        return error(400, "invalid request: texts is required");
    };
    if body["input_type"].as_str().is_none() {
        return error(
            400,
            "invalid request: valid input_type must be provided with the provided model",
        );
    }
    let dimensions = body["output_dimension"].as_u64().unwrap_or(5) as usize;
    let vectors: Vec<Vec<f64>> = texts
        .iter()
        .map(|text| {
            let text = text.as_str().unwrap_or_default();
            (0..dimensions)
                .map(|i| ((text.len() * 3 + i) % 11) as f64 / 11.0)
                .collect()
        })
        .collect();
    let tokens: u64 = texts
        .iter()
        .map(|t| words(t.as_str().unwrap_or_default()))
        .sum();
    json_response(
        StatusCode::OK,
        &json!({"id": "embed-mock", "embeddings": {"float": vectors}, "texts": texts,
                "meta": {"api_version": {"version": "2"}, "billed_units": {"input_tokens": tokens}}}),
    )
}
