//! The built-in `mock/…` provider: answers in-process in OpenAI's wire format, streaming
//! included, so the gateway runs end to end with no provider key and no network.
//!
//! Chat and completions echo the last user message (or `mock_response` when configured);
//! embeddings are deterministic unit vectors derived from the input text. Token counts are
//! whitespace-separated words.

use std::collections::VecDeque;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use bytes::Bytes;
use http::StatusCode;
use http::header::{CONTENT_TYPE, HeaderMap, HeaderValue};
use serde_json::{Value, json};
use tollgate_core::endpoint::Operation;
use tollgate_core::error::GatewayError;

use crate::{UpstreamBody, UpstreamResponse};

const DEFAULT_EMBEDDING_DIMENSIONS: usize = 8;

pub(crate) fn respond(
    operation: Operation,
    body: &[u8],
    fixed_reply: Option<&str>,
) -> Result<UpstreamResponse, GatewayError> {
    let request: Value = serde_json::from_slice(body).map_err(|err| {
        GatewayError::invalid_request(format!("The request body is not valid JSON: {err}."))
    })?;
    let model = request["model"].as_str().unwrap_or("mock").to_owned();
    let stream = request["stream"].as_bool().unwrap_or(false);
    let include_usage = request["stream_options"]["include_usage"]
        .as_bool()
        .unwrap_or(false);
    let created = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let id = format!("mock-{:016x}", fastrand::u64(..));

    let reply_json = |payload: Value| json_response(payload.to_string());
    match operation {
        Operation::Chat => {
            let messages = request["messages"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default();
            let prompt_tokens: usize = messages
                .iter()
                .map(|message| words(&content_text(&message["content"])))
                .sum();
            let reply = fixed_reply
                .map(str::to_owned)
                .unwrap_or_else(|| last_user_text(messages));
            let usage = usage(prompt_tokens, words(&reply));
            let id = format!("chatcmpl-{id}");
            if stream {
                let chunk = |choices: Value, usage: Value| {
                    let mut chunk = json!({"id": id, "object": "chat.completion.chunk", "created": created, "model": model, "choices": choices});
                    if include_usage {
                        chunk["usage"] = usage;
                    }
                    chunk
                };
                let mut events = vec![chunk(
                    json!([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": null}]),
                    Value::Null,
                )];
                for piece in pieces(&reply) {
                    events.push(chunk(
                        json!([{"index": 0, "delta": {"content": piece}, "finish_reason": null}]),
                        Value::Null,
                    ));
                }
                events.push(chunk(
                    json!([{"index": 0, "delta": {}, "finish_reason": "stop"}]),
                    Value::Null,
                ));
                if include_usage {
                    events.push(chunk(json!([]), usage));
                }
                Ok(sse_response(events))
            } else {
                Ok(reply_json(json!({
                    "id": id,
                    "object": "chat.completion",
                    "created": created,
                    "model": model,
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": reply, "refusal": null}, "logprobs": null, "finish_reason": "stop"}],
                    "usage": usage,
                })))
            }
        }
        Operation::Completion => {
            let prompt = match &request["prompt"] {
                Value::Array(items) => items.first().map(content_text).unwrap_or_default(),
                other => content_text(other),
            };
            let reply = fixed_reply
                .map(str::to_owned)
                .unwrap_or_else(|| prompt.clone());
            let usage = usage(words(&prompt), words(&reply));
            let id = format!("cmpl-{id}");
            if stream {
                let chunk = |text: &str, finish: Value, usage: Value| {
                    let mut chunk = json!({"id": id, "object": "text_completion", "created": created, "model": model,
                        "choices": [{"index": 0, "text": text, "logprobs": null, "finish_reason": finish}]});
                    if include_usage {
                        chunk["usage"] = usage;
                    }
                    chunk
                };
                let mut events: Vec<Value> = pieces(&reply)
                    .iter()
                    .map(|piece| chunk(piece, Value::Null, Value::Null))
                    .collect();
                events.push(chunk("", json!("stop"), Value::Null));
                if include_usage {
                    let mut last = chunk("", Value::Null, usage);
                    last["choices"] = json!([]);
                    events.push(last);
                }
                Ok(sse_response(events))
            } else {
                Ok(reply_json(json!({
                    "id": id,
                    "object": "text_completion",
                    "created": created,
                    "model": model,
                    "choices": [{"index": 0, "text": reply, "logprobs": null, "finish_reason": "stop"}],
                    "usage": usage,
                })))
            }
        }
        Operation::Embedding => {
            let inputs: Vec<String> = match &request["input"] {
                Value::Array(items) if items.iter().all(Value::is_string) => {
                    items.iter().map(content_text).collect()
                }
                other => vec![content_text(other)],
            };
            let dimensions = request["dimensions"]
                .as_u64()
                .map(|d| d as usize)
                .unwrap_or(DEFAULT_EMBEDDING_DIMENSIONS);
            let base64 = request["encoding_format"].as_str() == Some("base64");
            let data: Vec<Value> = inputs
                .iter()
                .enumerate()
                .map(|(index, text)| {
                    let vector = embedding(text, dimensions);
                    let embedding = if base64 {
                        let bytes: Vec<u8> = vector.iter().flat_map(|x| x.to_le_bytes()).collect();
                        json!(base64::engine::general_purpose::STANDARD.encode(bytes))
                    } else {
                        json!(vector)
                    };
                    json!({"object": "embedding", "index": index, "embedding": embedding})
                })
                .collect();
            let prompt_tokens: usize = inputs.iter().map(|text| words(text)).sum();
            Ok(reply_json(json!({
                "object": "list",
                "data": data,
                "model": model,
                "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
            })))
        }
        Operation::CountTokens => Err(GatewayError::invalid_request(
            "`mock/` deployments do not count tokens.",
        )),
        // Responses requests reach the mock bridged, as chat.
        Operation::Responses => Err(GatewayError::invalid_request(
            "`mock/` deployments serve the Responses API through chat.",
        )),
    }
}

fn json_response(body: String) -> UpstreamResponse {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    UpstreamResponse {
        status: StatusCode::OK,
        headers,
        body: UpstreamBody::local(VecDeque::from([Bytes::from(body)])),
    }
}

fn sse_response(events: Vec<Value>) -> UpstreamResponse {
    let mut frames: VecDeque<Bytes> = events
        .into_iter()
        .map(|event| Bytes::from(format!("data: {event}\n\n")))
        .collect();
    frames.push_back(Bytes::from_static(b"data: [DONE]\n\n"));
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    UpstreamResponse {
        status: StatusCode::OK,
        headers,
        body: UpstreamBody::local(frames),
    }
}

fn usage(prompt_tokens: usize, completion_tokens: usize) -> Value {
    json!({
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    })
}

/// A message's text: a string, or the text parts of a content array.
fn content_text(content: &Value) -> String {
    match content {
        Value::String(text) => text.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|part| part["text"].as_str().or_else(|| part.as_str()))
            .collect::<Vec<_>>()
            .join(" "),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn last_user_text(messages: &[Value]) -> String {
    messages
        .iter()
        .rev()
        .find(|message| message["role"] == "user")
        .map(|message| content_text(&message["content"]))
        .unwrap_or_default()
}

fn words(text: &str) -> usize {
    text.split_whitespace().count()
}

/// The reply cut into stream deltas: one word each, spaces kept, so the deltas concatenate
/// back to the reply exactly.
fn pieces(reply: &str) -> Vec<String> {
    let mut pieces = Vec::new();
    let mut current = String::new();
    for ch in reply.chars() {
        if ch.is_whitespace() && !current.trim().is_empty() {
            pieces.push(std::mem::take(&mut current));
        }
        current.push(ch);
    }
    if !current.is_empty() {
        pieces.push(current);
    }
    pieces
}

/// A deterministic unit vector for `text`.
fn embedding(text: &str, dimensions: usize) -> Vec<f32> {
    let mut state: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        state = (state ^ u64::from(byte)).wrapping_mul(0x100_0000_01b3);
    }
    let raw: Vec<f32> = (0..dimensions)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % 2000) as f32 / 1000.0 - 1.0
        })
        .collect();
    let norm = raw
        .iter()
        .map(|x| x * x)
        .sum::<f32>()
        .sqrt()
        .max(f32::EPSILON);
    raw.iter().map(|x| x / norm).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_pieces_concatenate_to_the_reply() {
        let reply = "  Hello there,  world ";
        assert_eq!(pieces(reply).concat(), reply);
        assert_eq!(pieces("one two three").len(), 3);
    }

    #[test]
    fn embeddings_are_deterministic_unit_vectors() {
        let a = embedding("hello", 16);
        assert_eq!(a, embedding("hello", 16));
        assert_ne!(a, embedding("world", 16));
        let norm: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5);
    }
}
