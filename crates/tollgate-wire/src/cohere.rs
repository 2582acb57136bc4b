//! Cohere v2 wire types: `/v2/chat` (request, response, stream events) and `/v2/embed`.
//! Cohere's chat messages and tools are close to OpenAI's; the differences are in the
//! parameter names, the answer's shape and the stream's events.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::raw::RawFields;

#[derive(Debug, Default, Serialize)]
pub struct ChatRequest<'a> {
    pub model: Cow<'a, str>,
    pub messages: Vec<Message<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    /// OpenAI-shaped function tools.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<serde_json::Value>,
    /// `REQUIRED` or `NONE`; absent means the model decides.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_format: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stop_sequences: Vec<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frequency_penalty: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub presence_penalty: Option<f64>,
    /// Top-k.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub k: Option<u64>,
    /// Top-p.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p: Option<f64>,
    /// Cohere-specific keys from the client (`safety_mode`, `documents`, …).
    #[serde(flatten)]
    pub extra: RawFields<'a>,
}

#[derive(Debug, Default, Serialize)]
pub struct Message<'a> {
    /// `system`, `user`, `assistant`, `tool`.
    pub role: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<Vec<ContentPart<'a>>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<Cow<'a, str>>,
}

#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentPart<'a> {
    Text { text: Cow<'a, str> },
    ImageUrl { image_url: ImageUrl<'a> },
}

#[derive(Debug, Serialize)]
pub struct ImageUrl<'a> {
    pub url: Cow<'a, str>,
    /// `auto`, `low` or `high`, as in OpenAI's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<Cow<'a, str>>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ToolCall<'a> {
    #[serde(borrow)]
    pub id: Cow<'a, str>,
    #[serde(rename = "type", default = "function_type")]
    pub kind: Cow<'a, str>,
    #[serde(borrow)]
    pub function: Function<'a>,
}

fn function_type() -> Cow<'static, str> {
    Cow::Borrowed("function")
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Function<'a> {
    #[serde(borrow)]
    pub name: Cow<'a, str>,
    /// JSON text.
    #[serde(default, borrow)]
    pub arguments: Cow<'a, str>,
}

#[derive(Debug, Deserialize)]
pub struct ChatResponse<'a> {
    #[serde(borrow)]
    pub id: Cow<'a, str>,
    #[serde(default, borrow)]
    pub finish_reason: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub message: ResponseMessage<'a>,
    #[serde(default)]
    pub usage: Option<Usage>,
}

#[derive(Debug, Default, Deserialize)]
pub struct ResponseMessage<'a> {
    #[serde(default, borrow)]
    pub content: Vec<ResponseContent<'a>>,
    #[serde(default, borrow)]
    pub tool_calls: Vec<ToolCall<'a>>,
    /// The model's plan before calling tools: its visible reasoning.
    #[serde(default, borrow)]
    pub tool_plan: Option<Cow<'a, str>>,
}

#[derive(Debug, Deserialize)]
pub struct ResponseContent<'a> {
    #[serde(rename = "type", borrow)]
    pub kind: Cow<'a, str>,
    #[serde(default, borrow)]
    pub text: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub thinking: Option<Cow<'a, str>>,
}

/// `tokens` are what the model processed; `billed_units` leave out Cohere's own prompt.
#[derive(Debug, Default, Clone, Copy, Deserialize)]
pub struct Usage {
    #[serde(default)]
    pub tokens: Option<Tokens>,
    #[serde(default)]
    pub billed_units: Option<Tokens>,
    #[serde(default)]
    pub cached_tokens: Option<u64>,
}

#[derive(Debug, Default, Clone, Copy, Deserialize)]
pub struct Tokens {
    #[serde(default)]
    pub input_tokens: f64,
    #[serde(default)]
    pub output_tokens: f64,
}

/// One stream event (`data:` payload); `type` says which fields are set.
#[derive(Debug, Deserialize)]
pub struct StreamEvent<'a> {
    #[serde(rename = "type", borrow)]
    pub kind: Cow<'a, str>,
    #[serde(default, borrow)]
    pub id: Option<Cow<'a, str>>,
    #[serde(default)]
    pub index: Option<usize>,
    #[serde(default, borrow)]
    pub delta: Option<StreamDelta<'a>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct StreamDelta<'a> {
    #[serde(default, borrow)]
    pub message: Option<DeltaMessage<'a>>,
    #[serde(default, borrow)]
    pub finish_reason: Option<Cow<'a, str>>,
    #[serde(default)]
    pub usage: Option<Usage>,
    #[serde(default, borrow)]
    pub error: Option<Cow<'a, str>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct DeltaMessage<'a> {
    #[serde(default, borrow)]
    pub content: Option<DeltaContent<'a>>,
    #[serde(default, borrow)]
    pub tool_plan: Option<&'a RawValue>,
    #[serde(default, borrow)]
    pub tool_calls: Option<DeltaToolCall<'a>>,
}

/// Text stays raw JSON so it is copied without decoding.
#[derive(Debug, Default, Deserialize)]
pub struct DeltaContent<'a> {
    #[serde(default, borrow)]
    pub text: Option<&'a RawValue>,
    #[serde(default, borrow)]
    pub thinking: Option<&'a RawValue>,
}

#[derive(Debug, Default, Deserialize)]
pub struct DeltaToolCall<'a> {
    #[serde(default, borrow)]
    pub id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub function: Option<DeltaFunction<'a>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct DeltaFunction<'a> {
    #[serde(default, borrow)]
    pub name: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub arguments: Option<&'a RawValue>,
}

/// `/v2/embed`.
#[derive(Debug, Serialize)]
pub struct EmbedRequest<'a> {
    pub model: &'a str,
    pub texts: Vec<&'a str>,
    pub input_type: &'a str,
    pub embedding_types: [&'static str; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_dimension: Option<u64>,
}

#[derive(Debug, Deserialize)]
pub struct EmbedResponse {
    pub embeddings: EmbeddingsByType,
    #[serde(default)]
    pub meta: Option<EmbedMeta>,
}

#[derive(Debug, Deserialize)]
pub struct EmbeddingsByType {
    #[serde(default)]
    pub float: Vec<Vec<f32>>,
}

#[derive(Debug, Deserialize)]
pub struct EmbedMeta {
    #[serde(default)]
    pub billed_units: Option<Tokens>,
}

/// `{"message": "…"}`.
#[derive(Debug, Deserialize)]
pub struct ErrorBody {
    pub message: String,
}
