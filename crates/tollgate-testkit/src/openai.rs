//! A mock OpenAI-compatible provider on a real socket, written from OpenAI's API reference:
//! chat completions (with tool calls), completions, embeddings (float and base64), the
//! Responses API (`openai_responses`), streaming
//! with `stream_options.include_usage`, and OpenAI's error bodies.
//!
//! Behaviour is chosen by the model name it receives, so one mock serves every test:
//! - `error-<status>` answers that status with an OpenAI error body (429 adds `retry-after: 7`;
//!   401 echoes the key it was sent, as OpenAI's "Incorrect API key provided" does);
//! - `html-error` answers 502 with an HTML page, as a broken proxy would;
//! - `slow` waits 30 s before answering; `stall` streams one chunk, then nothing; `silent`
//!   sends a stream's headers, then nothing;
//! - `break` streams two chunks, then drops the connection mid-body;
//! - anything else echoes the last user message (tool calls when `tools` are given).
//!
//! Every request is recorded; a request the gateway abandons (the client went away) is
//! counted as cancelled.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use base64::Engine;
use bytes::Bytes;
use http::StatusCode;
use http::header::{HeaderMap, HeaderValue};
use serde_json::{Value, json};

use crate::latency::{Spread, sleep_precisely};
use crate::openai_responses::{self, ResponseLog};
use crate::recorder::{CancelGuard, Recorder};
use crate::server::MockProvider;
use crate::sse::{Ending, SseBody, json_response, response};

/// How the mock behaves beyond what the model name selects.
#[derive(Debug, Clone, Default)]
pub struct MockOptions {
    /// Wait before sending the response head (simulated provider latency).
    pub latency: Duration,
    /// Spread of the latency: each response waits `latency` ± up to this much (uniformly),
    /// as a real provider's answers vary, instead of all arriving in the same instant.
    pub latency_jitter: Duration,
    /// Wait between stream chunks.
    pub chunk_delay: Duration,
    /// Benchmark mode: precomputed answers, no parsing, no recording.
    pub fixed: bool,
    /// Content chunks in a benchmark-mode stream.
    pub fixed_chunks: usize,
}

#[derive(Debug)]
struct MockState {
    options: MockOptions,
    recorder: Arc<Recorder>,
    responses: ResponseLog,
    fixed_json: Bytes,
    fixed_stream: Vec<Bytes>,
    fixed_stream_usage: Bytes,
    latencies: Spread,
}

/// The OpenAI-compatible mock.
pub struct MockOpenAi;

impl MockOpenAi {
    #[allow(clippy::new_ret_no_self)]
    pub async fn start() -> MockProvider {
        Self::start_with(MockOptions::default(), "127.0.0.1:0").await
    }

    pub async fn start_with(options: MockOptions, address: &str) -> MockProvider {
        let state = MockState::new(options);
        let app = Router::new().fallback(handle).with_state(state.clone());
        MockProvider::spawn(app, state.recorder.clone(), address, false).await
    }

    /// The mock over HTTPS, offering HTTP/2 and HTTP/1.1 by ALPN, with a certificate for
    /// `localhost` issued by a fresh CA (`tls_ca_pem`).
    pub async fn start_tls() -> MockProvider {
        let state = MockState::new(MockOptions::default());
        let app = Router::new().fallback(handle).with_state(state.clone());
        MockProvider::spawn(app, state.recorder.clone(), "127.0.0.1:0", true).await
    }
}

impl MockState {
    fn new(options: MockOptions) -> Arc<Self> {
        Arc::new(MockState {
            fixed_json: Bytes::from(fixed_completion().to_string()),
            fixed_stream: fixed_stream(options.fixed_chunks.max(1)),
            fixed_stream_usage: Bytes::from(format!("data: {}\n\n", fixed_usage_chunk())),
            options,
            recorder: Arc::new(Recorder::default()),
            responses: ResponseLog::default(),
            latencies: Spread::default(),
        })
    }

    /// Waits this answer's share of the simulated provider latency.
    async fn wait_latency(&self) {
        let latency = self
            .latencies
            .next(self.options.latency, self.options.latency_jitter);
        if !latency.is_zero() {
            sleep_precisely(latency).await;
        }
    }
}

async fn handle(State(state): State<Arc<MockState>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let raw_body = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    if state.options.fixed {
        return fixed_answer(&state, &raw_body).await;
    }
    let body = state.recorder.record(&parts, raw_body);
    let mut guard = CancelGuard::new(state.recorder.clone());
    state.wait_latency().await;
    let model = body["model"].as_str().unwrap_or_default().to_owned();
    if let Some(status) = model
        .strip_prefix("error-")
        .and_then(|code| code.parse::<u16>().ok())
    {
        guard.finish();
        return error_response(status, &parts.headers);
    }
    if model == "html-error" {
        guard.finish();
        return response(
            StatusCode::BAD_GATEWAY,
            "text/html",
            Body::from("<html><body>502 Bad Gateway</body></html>"),
        );
    }
    if model == "slow" {
        tokio::time::sleep(Duration::from_secs(30)).await;
    }

    let path = parts.uri.path();
    let stream = body["stream"].as_bool().unwrap_or(false);
    if let Some((_, rest)) = path.split_once("/responses") {
        if stream && parts.method == http::Method::POST {
            return openai_responses::stream(&state.responses, &body, guard);
        }
        guard.finish();
        openai_responses::handle(&state.responses, &parts.method, rest, &body)
    } else if path.ends_with("/chat/completions") {
        if stream {
            return sse_body(chat_stream_events(&body), &model, &state, guard);
        }
        guard.finish();
        json_response(StatusCode::OK, &chat_completion(&body))
    } else if path.ends_with("/completions") {
        if stream {
            return sse_body(completion_stream_events(&body), &model, &state, guard);
        }
        guard.finish();
        json_response(StatusCode::OK, &text_completion(&body))
    } else if path.ends_with("/embeddings") {
        guard.finish();
        json_response(StatusCode::OK, &embeddings(&body))
    } else {
        guard.finish();
        let error = json!({"error": {"message": format!("Unknown path {path}"), "type": "invalid_request_error", "param": null, "code": null}});
        json_response(StatusCode::NOT_FOUND, &error)
    }
}

async fn fixed_answer(state: &Arc<MockState>, body: &[u8]) -> Response {
    state.wait_latency().await;
    if memchr::memmem::find(body, b"\"stream\":true").is_none() {
        return response(
            StatusCode::OK,
            "application/json",
            Body::from(state.fixed_json.clone()),
        );
    }
    let mut events: VecDeque<Bytes> = state.fixed_stream.iter().cloned().collect();
    if memchr::memmem::find(body, b"\"include_usage\":true").is_some() {
        let done = events.pop_back().expect("[DONE]");
        events.push_back(state.fixed_stream_usage.clone());
        events.push_back(done);
    }
    let guard = CancelGuard::disarmed(state.recorder.clone());
    SseBody::new(events, state.options.chunk_delay, Ending::Done, guard)
        .into_response("text/event-stream")
}

fn error_response(status: u16, headers: &HeaderMap) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let (message, kind, code) = match status.as_u16() {
        401 => {
            let presented = headers
                .get("authorization")
                .or_else(|| headers.get("api-key"))
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .trim_start_matches("Bearer ")
                .to_owned();
            (
                format!("Incorrect API key provided: {presented}."),
                "invalid_request_error",
                "invalid_api_key",
            )
        }
        429 => (
            "Rate limit reached for requests".to_owned(),
            "requests",
            "rate_limit_exceeded",
        ),
        400 => (
            "This model's maximum context length is 10 tokens.".to_owned(),
            "invalid_request_error",
            "context_length_exceeded",
        ),
        _ => (
            "The server had an error while processing your request.".to_owned(),
            "server_error",
            "server_error",
        ),
    };
    let body = json!({"error": {"message": message, "type": kind, "param": null, "code": code}});
    let mut response = json_response(status, &body);
    if status == StatusCode::TOO_MANY_REQUESTS {
        response
            .headers_mut()
            .insert("retry-after", HeaderValue::from_static("7"));
    }
    response
}

fn content_text(content: &Value) -> String {
    match content {
        Value::String(text) => text.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p["text"].as_str())
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    }
}

fn last_user_text(request: &Value) -> String {
    if request["messages"]
        .as_array()
        .and_then(|m| m.last())
        .is_some_and(|m| m["role"] == "tool")
    {
        return "done".to_owned();
    }
    request["messages"]
        .as_array()
        .and_then(|messages| messages.iter().rev().find(|m| m["role"] == "user"))
        .map(|m| content_text(&m["content"]))
        .unwrap_or_default()
}

fn count_words(text: &str) -> u64 {
    text.split_whitespace().count() as u64
}

fn prompt_words(request: &Value) -> u64 {
    request["messages"]
        .as_array()
        .map(|messages| {
            messages
                .iter()
                .map(|m| count_words(&content_text(&m["content"])))
                .sum()
        })
        .unwrap_or(0)
}

fn usage(prompt: u64, completion: u64) -> Value {
    json!({"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
           "prompt_tokens_details": {"cached_tokens": 0}, "completion_tokens_details": {"reasoning_tokens": 0}})
}

/// The first tool, when the request offers tools and does not forbid calling them — unless
/// the conversation just returned a tool result, which a model answers in text.
fn tool_to_call(request: &Value) -> Option<String> {
    let after_tool_result = request["messages"]
        .as_array()
        .and_then(|m| m.last())
        .is_some_and(|m| m["role"] == "tool");
    if request["tool_choice"] == "none" || after_tool_result {
        return None;
    }
    request["tools"].as_array()?.first()?["function"]["name"]
        .as_str()
        .map(str::to_owned)
}

fn chat_completion(request: &Value) -> Value {
    let reply = last_user_text(request);
    let (message, finish_reason) = match tool_to_call(request) {
        Some(name) => (
            json!({"role": "assistant", "content": null, "refusal": null, "tool_calls": [{
                "id": "call_mock_1", "type": "function",
                "function": {"name": name, "arguments": json!({"echo": reply}).to_string()}
            }]}),
            "tool_calls",
        ),
        None => (
            json!({"role": "assistant", "content": reply, "refusal": null}),
            "stop",
        ),
    };
    json!({
        "id": "chatcmpl-mock",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": request["model"],
        "system_fingerprint": "fp_mock",
        "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish_reason}],
        "usage": usage(prompt_words(request), count_words(&reply)),
        "service_tier": "default",
    })
}

fn chat_stream_events(request: &Value) -> Vec<Value> {
    let reply = last_user_text(request);
    let include_usage = request["stream_options"]["include_usage"] == true;
    let chunk = |delta: Value, finish: Value| {
        let mut chunk = json!({"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 1_700_000_000,
            "model": request["model"], "system_fingerprint": "fp_mock",
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]});
        if include_usage {
            chunk["usage"] = Value::Null;
        }
        chunk
    };
    let mut events = vec![chunk(
        json!({"role": "assistant", "content": "", "refusal": null}),
        Value::Null,
    )];
    let finish = match tool_to_call(request) {
        Some(name) => {
            let arguments = json!({"echo": reply}).to_string();
            events.push(chunk(
                json!({"tool_calls": [{"index": 0, "id": "call_mock_1", "type": "function", "function": {"name": name, "arguments": ""}}]}),
                Value::Null,
            ));
            let middle = arguments.len() / 2;
            for part in [&arguments[..middle], &arguments[middle..]] {
                events.push(chunk(
                    json!({"tool_calls": [{"index": 0, "function": {"arguments": part}}]}),
                    Value::Null,
                ));
            }
            "tool_calls"
        }
        None => {
            for word in words_with_spaces(&reply) {
                events.push(chunk(json!({"content": word}), Value::Null));
            }
            "stop"
        }
    };
    events.push(chunk(json!({}), json!(finish)));
    if include_usage {
        events.push(json!({"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 1_700_000_000,
            "model": request["model"], "system_fingerprint": "fp_mock", "choices": [],
            "usage": usage(prompt_words(request), count_words(&reply))}));
    }
    events
}

fn text_completion(request: &Value) -> Value {
    let prompt = content_text(&request["prompt"]);
    json!({"id": "cmpl-mock", "object": "text_completion", "created": 1_700_000_000, "model": request["model"],
        "choices": [{"index": 0, "text": prompt, "logprobs": null, "finish_reason": "stop"}],
        "usage": usage(count_words(&prompt), count_words(&prompt))})
}

fn completion_stream_events(request: &Value) -> Vec<Value> {
    let prompt = content_text(&request["prompt"]);
    let include_usage = request["stream_options"]["include_usage"] == true;
    let chunk = |text: &str, finish: Value| {
        let mut chunk = json!({"id": "cmpl-mock", "object": "text_completion", "created": 1_700_000_000, "model": request["model"],
            "choices": [{"index": 0, "text": text, "logprobs": null, "finish_reason": finish}]});
        if include_usage {
            chunk["usage"] = Value::Null;
        }
        chunk
    };
    let mut events: Vec<Value> = words_with_spaces(&prompt)
        .iter()
        .map(|w| chunk(w, Value::Null))
        .collect();
    events.push(chunk("", json!("stop")));
    if include_usage {
        events.push(json!({"id": "cmpl-mock", "object": "text_completion", "created": 1_700_000_000, "model": request["model"],
            "choices": [], "usage": usage(count_words(&prompt), count_words(&prompt))}));
    }
    events
}

fn embeddings(request: &Value) -> Value {
    let inputs: Vec<String> = match &request["input"] {
        Value::Array(items) => items
            .iter()
            .map(|item| {
                item.as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| item.to_string())
            })
            .collect(),
        other => vec![
            other
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| other.to_string()),
        ],
    };
    let dimensions = request["dimensions"].as_u64().unwrap_or(4) as usize;
    let base64 = request["encoding_format"] == "base64";
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(index, text)| {
            let vector: Vec<f32> = (0..dimensions)
                .map(|i| ((text.len() + i) % 7) as f32 * 0.125 - 0.25)
                .collect();
            let embedding = if base64 {
                let bytes: Vec<u8> = vector.iter().flat_map(|x| x.to_le_bytes()).collect();
                json!(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                json!(vector)
            };
            json!({"object": "embedding", "index": index, "embedding": embedding})
        })
        .collect();
    let tokens: u64 = inputs.iter().map(|t| count_words(t)).sum();
    json!({"object": "list", "data": data, "model": request["model"], "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})
}

fn words_with_spaces(text: &str) -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    for (i, word) in text.split(' ').enumerate() {
        words.push(if i == 0 {
            word.to_owned()
        } else {
            format!(" {word}")
        });
    }
    words.retain(|w| !w.is_empty());
    words
}

fn fixed_completion() -> Value {
    json!({"id": "chatcmpl-bench", "object": "chat.completion", "created": 1_700_000_000, "model": "bench",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "The quick brown fox jumps over the lazy dog.", "refusal": null}, "logprobs": null, "finish_reason": "stop"}],
        "usage": usage(12, 10)})
}

fn fixed_stream(chunks: usize) -> Vec<Bytes> {
    let chunk = |delta: Value, finish: Value| {
        let chunk = json!({"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1_700_000_000, "model": "bench",
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]});
        Bytes::from(format!("data: {chunk}\n\n"))
    };
    let mut events = Vec::with_capacity(chunks + 1);
    for i in 0..chunks {
        let delta = if i == 0 {
            json!({"role": "assistant", "content": "The"})
        } else {
            json!({"content": " word"})
        };
        let finish = if i + 1 == chunks {
            json!("stop")
        } else {
            Value::Null
        };
        events.push(chunk(delta, finish));
    }
    events.push(Bytes::from_static(b"data: [DONE]\n\n"));
    events
}

fn fixed_usage_chunk() -> Value {
    json!({"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1_700_000_000, "model": "bench", "choices": [], "usage": usage(12, 10)})
}

fn sse_body(events: Vec<Value>, model: &str, state: &MockState, guard: CancelGuard) -> Response {
    let ending = match model {
        "stall" | "silent" => Ending::Stall,
        "break" => Ending::Break,
        _ => Ending::Done,
    };
    let mut frames: VecDeque<Bytes> = events
        .into_iter()
        .map(|event| Bytes::from(format!("data: {event}\n\n")))
        .collect();
    match ending {
        Ending::Done => frames.push_back(Bytes::from_static(b"data: [DONE]\n\n")),
        Ending::Stall => frames.truncate(if model == "silent" { 0 } else { 1 }),
        Ending::Break => frames.truncate(2),
    }
    SseBody::new(frames, state.options.chunk_delay, ending, guard)
        .into_response("text/event-stream")
}
