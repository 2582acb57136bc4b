//! Canonical answers → Responses API objects: the `response` with its output items
//! (`reasoning`, `message`, `function_call` / `custom_tool_call`) and usage, for bridged
//! providers.
//!
//! Every usage object carries both detail objects (Codex refuses one without its count), and an
//! answer cut short is `status: "incomplete"` with its reason, still delivered as
//! `response.completed` when streamed (Codex ignores `response.incomplete`).

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde_json::{Map, Value, json};
use tollgate_core::error::GatewayError;

use super::request::{Plan, encode_thinking};
use crate::canonical::{Completion, FinishReason, TokenUsage, ToolCallOut};

/// What a bridged response says about itself, fixed when the request is read.
#[derive(Debug, Clone)]
pub struct ResponseContext {
    /// `resp_…`, minted by the gateway.
    pub id: String,
    pub created_at: u64,
    /// The model the client asked for.
    pub model: String,
    /// Request fields a response echoes (`instructions`, `tools`, `temperature`, …).
    pub echo: Map<String, Value>,
    pub plan: Plan,
}

/// A fresh id with the given prefix (`resp`, `msg`, `fc`, `rs`).
pub fn new_id(prefix: &str) -> String {
    let uuid = tollgate_core::ids::new_request_id().replace('-', "");
    format!("{prefix}_{uuid}")
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `{input_tokens, input_tokens_details, output_tokens, output_tokens_details, total_tokens}`.
pub fn usage_json(usage: &TokenUsage) -> Value {
    json!({
        "input_tokens": usage.input,
        "input_tokens_details": {"cached_tokens": usage.cache_read},
        "output_tokens": usage.output,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning},
        "total_tokens": usage.total(),
    })
}

/// How a response ended.
pub fn status_of(finish: Option<FinishReason>) -> (&'static str, Option<&'static str>) {
    match finish {
        Some(FinishReason::Length) => ("incomplete", Some("max_output_tokens")),
        Some(FinishReason::ContentFilter) => ("incomplete", Some("content_filter")),
        _ => ("completed", None),
    }
}

impl ResponseContext {
    /// The response object, with the request's echoed fields.
    pub fn response_json(
        &self,
        status: &str,
        output: Vec<Value>,
        usage: Option<&TokenUsage>,
        incomplete_reason: Option<&str>,
        error: Option<Value>,
    ) -> Value {
        let mut response = Map::new();
        response.insert("id".into(), self.id.clone().into());
        response.insert("object".into(), "response".into());
        response.insert("created_at".into(), self.created_at.into());
        response.insert("status".into(), status.into());
        response.insert("error".into(), error.unwrap_or(Value::Null));
        response.insert(
            "incomplete_details".into(),
            incomplete_reason.map_or(Value::Null, |reason| json!({ "reason": reason })),
        );
        response.insert("model".into(), self.model.clone().into());
        response.insert("output".into(), Value::Array(output));
        for (key, value) in &self.echo {
            response.insert(key.clone(), value.clone());
        }
        response.insert("usage".into(), usage.map_or(Value::Null, usage_json));
        Value::Object(response)
    }
}

/// The output item of one tool call: `function_call`, or `custom_tool_call` for custom tools
/// (their `{"input": …}` arguments unwrapped).
pub fn call_item(plan: &Plan, id: &str, call: &ToolCallOut<'_>, status: &str) -> Value {
    if plan.custom_tools.contains(call.name.as_ref()) {
        let input = serde_json::from_str::<Value>(&call.arguments)
            .ok()
            .and_then(|args| args.get("input").and_then(Value::as_str).map(str::to_owned))
            .unwrap_or_else(|| call.arguments.to_string());
        return json!({"id": id, "type": "custom_tool_call", "status": status,
                      "call_id": call.id, "name": call.name, "input": input});
    }
    json!({"id": id, "type": "function_call", "status": status,
           "call_id": call.id, "name": call.name, "arguments": call.arguments})
}

pub fn message_item(id: &str, text: &str, status: &str) -> Value {
    json!({"id": id, "type": "message", "status": status, "role": "assistant",
           "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]})
}

pub fn reasoning_item(id: &str, summary: &str, encrypted: Option<String>) -> Value {
    let mut item = json!({"id": id, "type": "reasoning",
                          "summary": [{"type": "summary_text", "text": summary}]});
    if summary.is_empty() {
        item["summary"] = json!([]);
    }
    if let Some(encrypted) = encrypted {
        item["encrypted_content"] = encrypted.into();
    }
    item
}

/// A whole answer as a response object (and its output items, for the response store).
pub fn encode_response(
    completion: &Completion<'_>,
    context: &ResponseContext,
) -> Result<(Bytes, Value), GatewayError> {
    let mut output = Vec::new();
    let encrypted = encode_thinking(&completion.thinking_blocks);
    if completion.reasoning.is_some() || encrypted.is_some() {
        output.push(reasoning_item(
            &new_id("rs"),
            completion.reasoning.as_deref().unwrap_or_default(),
            encrypted,
        ));
    }
    if let Some(text) = completion.text.as_deref().filter(|t| !t.is_empty()) {
        output.push(message_item(&new_id("msg"), text, "completed"));
    }
    for call in &completion.tool_calls {
        output.push(call_item(&context.plan, &new_id("fc"), call, "completed"));
    }
    let (status, reason) = status_of(completion.finish_reason);
    let response = context.response_json(
        status,
        output,
        Some(&completion.usage.unwrap_or_default()),
        reason,
        None,
    );
    let bytes = serde_json::to_vec(&response)
        .map_err(|err| GatewayError::internal(format!("could not encode the response: {err}")))?;
    Ok((Bytes::from(bytes), response))
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;

    #[test]
    fn custom_tool_calls_unwrap_their_input() {
        let mut plan = Plan::default();
        plan.custom_tools.insert("apply_patch".to_owned());
        let call = |name: &'static str, arguments: &'static str| ToolCallOut {
            id: Cow::Borrowed("call_1"),
            name: Cow::Borrowed(name),
            arguments: Cow::Borrowed(arguments),
        };
        let item = call_item(
            &plan,
            "ctc_1",
            &call("apply_patch", r#"{"input":"*** Begin Patch"}"#),
            "completed",
        );
        assert_eq!(item["type"], "custom_tool_call");
        assert_eq!(item["input"], "*** Begin Patch");
        // A model that ignored the wrapper: its text is passed on whole rather than lost.
        let item = call_item(
            &plan,
            "ctc_2",
            &call("apply_patch", "raw patch"),
            "completed",
        );
        assert_eq!(item["input"], "raw patch");
        let item = call_item(
            &plan,
            "fc_1",
            &call("get_weather", r#"{"city":"Oslo"}"#),
            "completed",
        );
        assert_eq!(item["type"], "function_call");
        assert_eq!(item["arguments"], r#"{"city":"Oslo"}"#);
    }
}
