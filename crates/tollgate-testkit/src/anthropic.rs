//! A mock Anthropic Messages API on a real socket, written from Anthropic's API reference:
//! `/v1/messages` (text, tool use, thinking blocks with signatures, prompt-cache usage), its
//! event stream (`message_start` … `message_stop`, with `ping`s), `/v1/messages/count_tokens`,
//! and Anthropic's error bodies. Requests without `x-api-key` or `anthropic-version` are refused
//! as Anthropic refuses them.
//!
//! Behaviour is chosen by the model name it receives:
//! - `error-<status>` answers that status with an Anthropic error body (`error-400` is a
//!   "prompt is too long" error; 429 adds `retry-after: 3`; 529 is `overloaded_error`);
//! - `stream-error` streams one text delta, then an `error` event (overloaded);
//! - anything else echoes the last user message's text; with `tools` (and a `tool_choice` that
//!   allows it) it calls the first tool with `{"echo": <text>}`; with `thinking` enabled it
//!   thinks first, with a signature; a request carrying `cache_control` reports cache usage.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode};
use serde_json::{Value, json};

use crate::recorder::{CancelGuard, Recorder};
use crate::server::MockProvider;
use crate::sse::{Ending, SseBody, json_response, response};

/// What the thinking block of every mock answer says, and its signature.
pub const THINKING: &str = "Let me think about this.";
pub const SIGNATURE: &str = "c2lnbmF0dXJlLW1vY2s=";
/// Prompt-cache figures reported when a request carries `cache_control`.
pub const CACHE_READ: u64 = 7;
pub const CACHE_WRITE: u64 = 3;

/// The Anthropic mock.
pub struct MockAnthropic;

impl MockAnthropic {
    pub async fn start() -> MockProvider {
        Self::start_at("127.0.0.1:0").await
    }

    pub async fn start_at(address: &str) -> MockProvider {
        let recorder = Arc::new(Recorder::default());
        let app = Router::new().fallback(handle).with_state(recorder.clone());
        MockProvider::spawn(app, recorder, address, false).await
    }

    /// Benchmark mode: one precomputed answer (a stream of `chunks` text deltas when the
    /// request streams), no parsing, no recording.
    pub async fn start_fixed(address: &str, chunks: usize) -> MockProvider {
        let answer = Answer {
            text: ["The"]
                .into_iter()
                .chain(std::iter::repeat_n("word", chunks.max(1) - 1))
                .collect::<Vec<_>>()
                .join(" "),
            tool: None,
            thinking: false,
            input_tokens: 12,
            cached: false,
        };
        let recorder = Arc::new(Recorder::default());
        let fixed = Arc::new(Fixed {
            message: Bytes::from(answer.message("bench").to_string()),
            stream: answer.stream("bench").into_iter().collect(),
            recorder: recorder.clone(),
        });
        let app = Router::new().fallback(fixed_answer).with_state(fixed);
        MockProvider::spawn(app, recorder, address, false).await
    }
}

struct Fixed {
    message: Bytes,
    stream: Vec<Bytes>,
    /// Records nothing; stream guards need one.
    recorder: Arc<Recorder>,
}

async fn fixed_answer(State(fixed): State<Arc<Fixed>>, request: Request) -> Response {
    let body = axum::body::to_bytes(request.into_body(), usize::MAX)
        .await
        .unwrap_or_default();
    if memchr::memmem::find(&body, b"\"stream\":true").is_none() {
        return response(
            StatusCode::OK,
            "application/json",
            Body::from(fixed.message.clone()),
        );
    }
    let events = fixed.stream.iter().cloned().collect();
    SseBody::new(
        events,
        Duration::ZERO,
        Ending::Done,
        CancelGuard::disarmed(fixed.recorder.clone()),
    )
    .into_response("text/event-stream")
}

async fn handle(State(recorder): State<Arc<Recorder>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let raw_body = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let body = recorder.record(&parts, raw_body);

    if parts.headers.get("anthropic-version").is_none() {
        return error(
            400,
            "invalid_request_error",
            "anthropic-version: header is required",
            &parts.headers,
        );
    }
    let key = parts
        .headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if key.is_empty() {
        return error(
            401,
            "authentication_error",
            "x-api-key header is required",
            &parts.headers,
        );
    }
    let model = body["model"].as_str().unwrap_or_default().to_owned();
    let path = parts.uri.path();
    if path.ends_with("/v1/messages/count_tokens") {
        return count_tokens(&body);
    }
    if !path.ends_with("/v1/messages") {
        return error(
            404,
            "not_found_error",
            &format!("Unknown path {path}"),
            &parts.headers,
        );
    }
    messages(recorder, &body, &model, &parts.headers)
}

/// `{"input_tokens": N}`, N counting the prompt's words.
pub(crate) fn count_tokens(body: &Value) -> Response {
    json_response(StatusCode::OK, &json!({"input_tokens": prompt_words(body)}))
}

/// Answers a Messages request for `model` (from the body, or the URL on Vertex AI).
pub(crate) fn messages(
    recorder: Arc<Recorder>,
    body: &Value,
    model: &str,
    headers: &HeaderMap,
) -> Response {
    if let Some(status) = model
        .strip_prefix("error-")
        .and_then(|code| code.parse::<u16>().ok())
    {
        let (kind, message) = match status {
            400 => (
                "invalid_request_error",
                "prompt is too long: 208310 tokens > 200000 maximum".to_owned(),
            ),
            401 => {
                let key = headers
                    .get("x-api-key")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                ("authentication_error", format!("invalid x-api-key: {key}"))
            }
            429 => (
                "rate_limit_error",
                "Number of request tokens has exceeded your per-minute rate limit".to_owned(),
            ),
            529 => ("overloaded_error", "Overloaded".to_owned()),
            _ => ("api_error", "Internal server error".to_owned()),
        };
        return error(status, kind, &message, headers);
    }
    if body["max_tokens"].as_u64().is_none() {
        return error(
            400,
            "invalid_request_error",
            "max_tokens: Field required",
            headers,
        );
    }

    let answer = Answer::for_request(body);
    if body["stream"].as_bool() == Some(true) {
        let events = if model == "stream-error" {
            answer.failing_stream(model)
        } else {
            answer.stream(model)
        };
        let guard = CancelGuard::new(recorder);
        return SseBody::new(events, Duration::ZERO, Ending::Done, guard)
            .into_response("text/event-stream");
    }
    json_response(StatusCode::OK, &answer.message(model))
}

fn error(status: u16, kind: &str, message: &str, _headers: &HeaderMap) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = json!({"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_mock"});
    let mut response = json_response(status, &body);
    if status == StatusCode::TOO_MANY_REQUESTS {
        response
            .headers_mut()
            .insert("retry-after", HeaderValue::from_static("3"));
    }
    response
}

fn text_of(content: &Value) -> String {
    match content {
        Value::String(text) => text.clone(),
        Value::Array(blocks) => blocks
            .iter()
            .filter(|b| b["type"] == "text")
            .filter_map(|b| b["text"].as_str())
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    }
}

fn words(text: &str) -> u64 {
    text.split_whitespace().count() as u64
}

fn prompt_words(body: &Value) -> u64 {
    let system = words(&text_of(&body["system"]));
    let messages: u64 = body["messages"]
        .as_array()
        .map(|m| m.iter().map(|m| words(&text_of(&m["content"]))).sum())
        .unwrap_or(0);
    system + messages
}

/// What the mock answers to a request.
struct Answer {
    text: String,
    tool: Option<String>,
    thinking: bool,
    input_tokens: u64,
    cached: bool,
}

impl Answer {
    fn for_request(body: &Value) -> Answer {
        let last_user = body["messages"]
            .as_array()
            .and_then(|m| m.iter().rev().find(|m| m["role"] == "user"))
            .map(|m| text_of(&m["content"]))
            .unwrap_or_default();
        let tool_choice = body["tool_choice"]["type"].as_str().unwrap_or("auto");
        let tool = match (tool_choice, body["tools"].as_array()) {
            ("none", _) | (_, None) => None,
            ("tool", Some(_)) => body["tool_choice"]["name"].as_str().map(str::to_owned),
            (_, Some(tools)) => tools
                .first()
                .and_then(|t| t["name"].as_str())
                .map(str::to_owned),
        };
        // A turn that follows a tool result answers in text, as a model would.
        let after_tool_result = body["messages"]
            .as_array()
            .and_then(|m| m.last())
            .and_then(|m| m["content"].as_array())
            .is_some_and(|blocks| blocks.iter().any(|b| b["type"] == "tool_result"));
        Answer {
            text: if last_user.is_empty() && after_tool_result {
                "done".to_owned()
            } else {
                last_user
            },
            tool: if after_tool_result && tool_choice != "tool" {
                None
            } else {
                tool
            },
            thinking: body["thinking"]["type"] == "enabled"
                || body["thinking"]["type"] == "adaptive",
            input_tokens: prompt_words(body),
            cached: body.to_string().contains("\"cache_control\""),
        }
    }

    fn usage(&self, output_tokens: u64) -> Value {
        let (read, write) = if self.cached {
            (CACHE_READ, CACHE_WRITE)
        } else {
            (0, 0)
        };
        json!({"input_tokens": self.input_tokens, "output_tokens": output_tokens,
               "cache_creation_input_tokens": write, "cache_read_input_tokens": read})
    }

    fn output_tokens(&self) -> u64 {
        words(&self.text).max(1)
    }

    fn input(&self) -> Value {
        json!({"echo": self.text})
    }

    fn message(&self, model: &str) -> Value {
        let mut content = Vec::new();
        if self.thinking {
            content.push(json!({"type": "thinking", "thinking": THINKING, "signature": SIGNATURE}));
        }
        let stop_reason = match &self.tool {
            Some(name) => {
                content.push(json!({"type": "tool_use", "id": "toolu_mock_1", "name": name, "input": self.input()}));
                "tool_use"
            }
            None => {
                content.push(json!({"type": "text", "text": self.text}));
                "end_turn"
            }
        };
        json!({"id": "msg_mock_1", "type": "message", "role": "assistant", "model": model, "content": content,
               "stop_reason": stop_reason, "stop_sequence": null, "usage": self.usage(self.output_tokens())})
    }

    fn start(&self, model: &str) -> Vec<Value> {
        vec![
            json!({"type": "message_start", "message": {"id": "msg_mock_1", "type": "message", "role": "assistant",
                   "model": model, "content": [], "stop_reason": null, "stop_sequence": null, "usage": self.usage(1)}}),
            json!({"type": "ping"}),
        ]
    }

    fn stream(&self, model: &str) -> VecDeque<Bytes> {
        frames(self.stream_events(model))
    }

    /// The stream's events, in order.
    fn stream_events(&self, model: &str) -> Vec<Value> {
        let mut events = self.start(model);
        let mut index = 0;
        if self.thinking {
            events.push(json!({"type": "content_block_start", "index": index, "content_block": {"type": "thinking", "thinking": ""}}));
            events.push(json!({"type": "content_block_delta", "index": index, "delta": {"type": "thinking_delta", "thinking": THINKING}}));
            events.push(json!({"type": "content_block_delta", "index": index, "delta": {"type": "signature_delta", "signature": SIGNATURE}}));
            events.push(json!({"type": "content_block_stop", "index": index}));
            index += 1;
        }
        let stop_reason = match &self.tool {
            Some(name) => {
                events.push(json!({"type": "content_block_start", "index": index,
                                   "content_block": {"type": "tool_use", "id": "toolu_mock_1", "name": name, "input": {}}}));
                let arguments = self.input().to_string();
                let middle = arguments.len() / 2;
                for part in [&arguments[..middle], &arguments[middle..]] {
                    events.push(json!({"type": "content_block_delta", "index": index, "delta": {"type": "input_json_delta", "partial_json": part}}));
                }
                events.push(json!({"type": "content_block_stop", "index": index}));
                "tool_use"
            }
            None => {
                events.push(json!({"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}}));
                for (i, word) in self.text.split(' ').enumerate() {
                    let piece = if i == 0 {
                        word.to_owned()
                    } else {
                        format!(" {word}")
                    };
                    events.push(json!({"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": piece}}));
                }
                events.push(json!({"type": "content_block_stop", "index": index}));
                "end_turn"
            }
        };
        events.push(json!({"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": null},
                           "usage": {"output_tokens": self.output_tokens()}}));
        events.push(json!({"type": "message_stop"}));
        events
    }

    fn failing_stream(&self, model: &str) -> VecDeque<Bytes> {
        let mut events = self.start(model);
        events.push(json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}));
        events.push(json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "partial"}}));
        events.push(json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}));
        frames(events)
    }
}

/// A Messages request answered as a JSON body (`stream: false`) or as the list of stream
/// events: for platforms that frame Anthropic's events their own way (Bedrock).
pub(crate) fn answer_events(
    body: &Value,
    model: &str,
    stream: bool,
) -> Result<Vec<Value>, Box<Response>> {
    if body["max_tokens"].as_u64().is_none() {
        return Err(Box::new(error(
            400,
            "invalid_request_error",
            "max_tokens: Field required",
            &HeaderMap::new(),
        )));
    }
    let answer = Answer::for_request(body);
    Ok(if stream {
        answer.stream_events(model)
    } else {
        vec![answer.message(model)]
    })
}

/// Events in Anthropic's SSE framing: `event: <type>` then `data: <json>`.
fn frames(events: Vec<Value>) -> VecDeque<Bytes> {
    events
        .into_iter()
        .map(|event| {
            let name = event["type"].as_str().unwrap_or("unknown").to_owned();
            Bytes::from(format!("event: {name}\ndata: {event}\n\n"))
        })
        .collect()
}
