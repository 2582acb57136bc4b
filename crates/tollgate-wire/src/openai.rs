//! OpenAI API wire types (chat completions, completions, embeddings, models, errors).

use serde::{Deserialize, Serialize};

use crate::raw::RawField;

/// The fields of a chat, completion or embedding request the gateway reads before forwarding.
/// Each is captured raw: the gateway checks its type itself to name the field in errors, and
/// needs its exact position in the body to edit it in place.
#[derive(Debug, Default, Deserialize)]
pub struct RequestHead<'a> {
    #[serde(default, borrow)]
    pub model: RawField<'a>,
    #[serde(default, borrow)]
    pub stream: RawField<'a>,
    #[serde(default, borrow)]
    pub stream_options: RawField<'a>,
    #[serde(default, borrow)]
    pub messages: RawField<'a>,
    #[serde(default, borrow)]
    pub prompt: RawField<'a>,
    #[serde(default, borrow)]
    pub input: RawField<'a>,
}

/// `stream_options` as the gateway reads it.
#[derive(Debug, Default, Deserialize)]
pub struct StreamOptions {
    #[serde(default)]
    pub include_usage: Option<bool>,
}

/// Token counts. Providers omit or null fields freely, so every count is optional.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub struct Usage {
    #[serde(default)]
    pub prompt_tokens: Option<u64>,
    #[serde(default)]
    pub completion_tokens: Option<u64>,
    #[serde(default)]
    pub total_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tokens_details: Option<PromptTokensDetails>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_tokens_details: Option<CompletionTokensDetails>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub struct PromptTokensDetails {
    #[serde(default)]
    pub cached_tokens: Option<u64>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub struct CompletionTokensDetails {
    #[serde(default)]
    pub reasoning_tokens: Option<u64>,
}

/// A non-streamed response, read only for its usage.
#[derive(Debug, Default, Deserialize)]
pub struct ResponseUsage {
    #[serde(default)]
    pub usage: Option<Usage>,
}

/// One `data:` payload of a chat or completion stream, read only for usage.
#[derive(Debug, Default, Deserialize)]
pub struct StreamChunkHead<'a> {
    #[serde(default, borrow)]
    pub choices: RawField<'a>,
    #[serde(default)]
    pub usage: Option<Usage>,
}

/// An error body as providers send it: OpenAI's `{"error":{...}}`, or the looser shapes
/// OpenAI-compatible servers use (`{"error":"text"}`, `{"message":"text"}`, `{"detail":…}`).
#[derive(Debug, Default, Deserialize)]
pub struct ErrorEnvelope {
    #[serde(default)]
    pub error: Option<ErrorField>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub detail: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum ErrorField {
    Object(ErrorObject),
    Text(String),
}

#[derive(Debug, Default, Deserialize, Serialize)]
pub struct ErrorObject {
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub param: Option<serde_json::Value>,
    #[serde(default)]
    pub code: Option<serde_json::Value>,
}

/// `GET /v1/models`.
#[derive(Debug, Serialize, Deserialize)]
pub struct ModelList {
    pub object: String,
    pub data: Vec<Model>,
}

/// One entry of `GET /v1/models`, also the body of `GET /v1/models/{id}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Model {
    pub id: String,
    pub object: String,
    pub created: u64,
    pub owned_by: String,
}
