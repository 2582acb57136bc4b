//! The Responses API half of the OpenAI mock, written from OpenAI's API reference:
//! `POST /v1/responses` (JSON or the typed SSE events), `GET`/`DELETE /v1/responses/{id}` and
//! `GET /v1/responses/{id}/input_items`, with `previous_response_id` and `store` honoured.
//!
//! The answer echoes the last user text of the input, so tests can see what reached it.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::response::Response;
use bytes::Bytes;
use http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::recorder::CancelGuard;
use crate::sse::{Ending, SseBody, json_response};

/// Responses created with `store` left on, by id, with the input items they were given.
#[derive(Debug, Default)]
pub(crate) struct ResponseLog {
    next_id: AtomicU64,
    stored: Mutex<HashMap<String, (Value, Vec<Value>)>>,
}

/// Answers a request under `/responses`; `rest` is the path after it.
pub(crate) fn handle(log: &ResponseLog, method: &Method, rest: &str, body: &Value) -> Response {
    let mut segments = rest.trim_matches('/').split('/');
    match (method, segments.next(), segments.next()) {
        (&Method::POST, Some(""), None) => create(log, body),
        (&Method::GET, Some(id), None) => match log.stored.lock().unwrap().get(id) {
            Some((response, _)) => json_response(StatusCode::OK, response),
            None => not_found(id, "id"),
        },
        (&Method::DELETE, Some(id), None) => match log.stored.lock().unwrap().remove(id) {
            Some(_) => json_response(
                StatusCode::OK,
                &json!({"id": id, "object": "response.deleted", "deleted": true}),
            ),
            None => not_found(id, "id"),
        },
        (&Method::GET, Some(id), Some("input_items")) => match log.stored.lock().unwrap().get(id) {
            Some((_, items)) => json_response(
                StatusCode::OK,
                &json!({"object": "list", "data": items, "first_id": null, "last_id": null, "has_more": false}),
            ),
            None => not_found(id, "id"),
        },
        _ => not_found(rest, "path"),
    }
}

/// `POST /responses` with `stream: true`: the typed events, or the error when refused.
pub(crate) fn stream(log: &ResponseLog, body: &Value, mut guard: CancelGuard) -> Response {
    let response = match respond(log, body) {
        Ok(response) => response,
        Err(error) => {
            guard.finish();
            return json_response(StatusCode::BAD_REQUEST, &error);
        }
    };
    let item = response["output"][0].clone();
    let text = item["content"][0]["text"].as_str().unwrap_or_default();
    let mut in_progress = response.clone();
    in_progress["status"] = json!("in_progress");
    in_progress["output"] = json!([]);
    in_progress["usage"] = Value::Null;
    let mut added = item.clone();
    added["status"] = json!("in_progress");
    added["content"] = json!([]);
    let item_id = item["id"].clone();
    let part = json!({"type": "output_text", "text": "", "annotations": []});
    let mut events = vec![
        json!({"type": "response.created", "response": in_progress}),
        json!({"type": "response.in_progress", "response": in_progress}),
        json!({"type": "response.output_item.added", "output_index": 0, "item": added}),
        json!({"type": "response.content_part.added", "item_id": item_id, "output_index": 0, "content_index": 0, "part": part}),
    ];
    for word in text.split_inclusive(' ') {
        events.push(json!({"type": "response.output_text.delta", "item_id": item_id, "output_index": 0, "content_index": 0, "delta": word}));
    }
    events.extend([
        json!({"type": "response.output_text.done", "item_id": item_id, "output_index": 0, "content_index": 0, "text": text}),
        json!({"type": "response.content_part.done", "item_id": item_id, "output_index": 0, "content_index": 0, "part": item["content"][0]}),
        json!({"type": "response.output_item.done", "output_index": 0, "item": item}),
        json!({"type": "response.completed", "response": response}),
    ]);
    let frames: VecDeque<Bytes> = events
        .into_iter()
        .enumerate()
        .map(|(sequence, mut event)| {
            event["sequence_number"] = json!(sequence);
            let name = event["type"].as_str().unwrap_or_default().to_owned();
            Bytes::from(format!("event: {name}\ndata: {event}\n\n"))
        })
        .collect();
    SseBody::new(frames, Default::default(), Ending::Done, guard).into_response("text/event-stream")
}

fn create(log: &ResponseLog, body: &Value) -> Response {
    match respond(log, body) {
        Ok(response) => json_response(StatusCode::OK, &response),
        Err(error) => json_response(StatusCode::BAD_REQUEST, &error),
    }
}

/// The finished response for a request, stored unless `store: false`; or the 400 error body.
fn respond(log: &ResponseLog, body: &Value) -> Result<Value, Value> {
    let previous = body["previous_response_id"].as_str();
    if let Some(previous) = previous
        && !log.stored.lock().unwrap().contains_key(previous)
    {
        // OpenAI answers an unknown predecessor with 400, not 404.
        return Err(
            json!({"error": {"message": format!("Previous response with id '{previous}' not found."),
                "type": "invalid_request_error", "param": "previous_response_id",
                "code": "previous_response_not_found"}}),
        );
    }
    let items = input_items(&body["input"]);
    let reply = last_user_text(&items);
    let number = log.next_id.fetch_add(1, Ordering::Relaxed) + 1;
    let id = format!("resp_mock_{number}");
    let input_tokens = items
        .iter()
        .map(|item| words(&item_text(item)))
        .sum::<u64>();
    let output_tokens = words(&reply);
    let response = json!({
        "id": id,
        "object": "response",
        "created_at": 1_700_000_000,
        "status": "completed",
        "error": null,
        "incomplete_details": null,
        "instructions": body["instructions"],
        "model": body["model"],
        "output": [{
            "type": "message", "id": format!("msg_mock_{number}"), "status": "completed", "role": "assistant",
            "content": [{"type": "output_text", "text": reply, "annotations": []}],
        }],
        "parallel_tool_calls": true,
        "previous_response_id": previous,
        "store": body["store"].as_bool().unwrap_or(true),
        "usage": {
            "input_tokens": input_tokens, "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": output_tokens, "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": input_tokens + output_tokens,
        },
    });
    if response["store"] == true {
        log.stored
            .lock()
            .unwrap()
            .insert(id, (response.clone(), items));
    }
    Ok(response)
}

fn input_items(input: &Value) -> Vec<Value> {
    match input {
        Value::String(text) => vec![json!({"type": "message", "role": "user",
            "content": [{"type": "input_text", "text": text}]})],
        Value::Array(items) => items.clone(),
        _ => Vec::new(),
    }
}

fn item_text(item: &Value) -> String {
    match &item["content"] {
        Value::String(text) => text.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|part| part["text"].as_str())
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    }
}

fn last_user_text(items: &[Value]) -> String {
    items
        .iter()
        .rev()
        .find(|item| item["role"] == "user")
        .map(item_text)
        .unwrap_or_default()
}

fn words(text: &str) -> u64 {
    text.split_whitespace().count() as u64
}

fn not_found(id: &str, param: &str) -> Response {
    json_response(
        StatusCode::NOT_FOUND,
        &json!({"error": {"message": format!("No response found with id '{id}'."),
            "type": "invalid_request_error", "param": param, "code": null}}),
    )
}
