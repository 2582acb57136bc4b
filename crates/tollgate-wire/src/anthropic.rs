//! Anthropic Messages API wire types (`/v1/messages`), requests, responses and stream events.
//!
//! Request types serve both directions: parsed from Anthropic clients (borrowing the body) and
//! built for Anthropic providers. Values the gateway does not act on (JSON schemas, tool inputs,
//! `metadata`, unknown blocks) stay raw JSON so they travel byte for byte.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::raw::{RawFields, TextOr};

/// `POST /v1/messages`.
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct MessagesRequest<'a> {
    /// Left out of the body on Vertex and Bedrock, where the URL names the model.
    #[serde(borrow, skip_serializing_if = "str_is_empty")]
    pub model: Cow<'a, str>,
    /// Vertex (`vertex-2023-10-16`) and Bedrock (`bedrock-2023-05-31`) take the API version in
    /// the body instead of a header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anthropic_version: Option<Cow<'a, str>>,
    /// Bedrock takes beta flags in the body instead of a header.
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub anthropic_beta: Option<Vec<Cow<'a, str>>>,
    #[serde(borrow)]
    pub messages: Vec<Message<'a>>,
    /// Required by Anthropic; inbound requests without it are refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub system: Option<System<'a>>,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub stop_sequences: Option<Vec<Cow<'a, str>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<Tool<'a>>>,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoice<'a>>,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub thinking: Option<Thinking<'a>>,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata<'a>>,
    /// `{effort, format}` on newer models.
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub output_config: Option<&'a RawValue>,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub service_tier: Option<Cow<'a, str>>,
    /// Provider-specific keys from the client's request, forwarded as written.
    #[serde(flatten, skip_deserializing)]
    pub extra: RawFields<'a>,
}

// serde's `skip_serializing_if` hands over a reference to the field itself.
#[allow(clippy::ptr_arg)]
fn str_is_empty(text: &Cow<'_, str>) -> bool {
    text.is_empty()
}

#[derive(Debug, Deserialize, Serialize)]
pub struct Message<'a> {
    #[serde(borrow)]
    pub role: Cow<'a, str>,
    #[serde(borrow)]
    pub content: Content<'a>,
}

/// A message's content (or a tool result's): a plain string, or blocks.
pub type Content<'a> = TextOr<'a, Block<'a>>;

/// `system`: a string, or text blocks (which may carry `cache_control`).
pub type System<'a> = TextOr<'a, Block<'a>>;

/// One content block. Flat rather than an enum: the `type` decides which fields matter, and
/// block types the gateway does not know travel with their fields intact.
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct Block<'a> {
    #[serde(rename = "type", borrow)]
    pub kind: Cow<'a, str>,
    /// `text` blocks.
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub text: Option<Cow<'a, str>>,
    /// `image` / `document` blocks.
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub source: Option<Source<'a>>,
    /// `tool_use`: the call id. `tool_result` refers to it as `tool_use_id`.
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub id: Option<Cow<'a, str>>,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub name: Option<Cow<'a, str>>,
    /// `tool_use`: the arguments object, as raw JSON.
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub input: Option<&'a RawValue>,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub tool_use_id: Option<Cow<'a, str>>,
    /// `tool_result`: a string or blocks.
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub content: Option<Box<Content<'a>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_error: Option<bool>,
    /// `thinking` blocks.
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub thinking: Option<Cow<'a, str>>,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub signature: Option<Cow<'a, str>>,
    /// `redacted_thinking` blocks.
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub data: Option<Cow<'a, str>>,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<&'a RawValue>,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub citations: Option<&'a RawValue>,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub title: Option<Cow<'a, str>>,
}

/// An image or document source.
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct Source<'a> {
    /// `base64`, `url`, `text`, `file`.
    #[serde(rename = "type", borrow)]
    pub kind: Cow<'a, str>,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<Cow<'a, str>>,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub data: Option<Cow<'a, str>>,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub url: Option<Cow<'a, str>>,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub file_id: Option<Cow<'a, str>>,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct Tool<'a> {
    #[serde(borrow)]
    pub name: Cow<'a, str>,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub description: Option<Cow<'a, str>>,
    /// The JSON Schema of the input, as written.
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub input_schema: Option<&'a RawValue>,
    /// Server tools (`web_search_20250305`, …) and `custom`.
    #[serde(
        rename = "type",
        default,
        borrow,
        skip_serializing_if = "Option::is_none"
    )]
    pub kind: Option<Cow<'a, str>>,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<&'a RawValue>,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct ToolChoice<'a> {
    /// `auto`, `any`, `tool`, `none`.
    #[serde(rename = "type", borrow)]
    pub kind: Cow<'a, str>,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub name: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_parallel_tool_use: Option<bool>,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct Thinking<'a> {
    /// `enabled`, `disabled`, `adaptive`.
    #[serde(rename = "type", borrow)]
    pub kind: Cow<'a, str>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_tokens: Option<u64>,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct Metadata<'a> {
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<Cow<'a, str>>,
}

/// A non-streamed response.
#[derive(Debug, Deserialize, Serialize)]
pub struct MessagesResponse<'a> {
    #[serde(borrow)]
    pub id: Cow<'a, str>,
    #[serde(rename = "type", borrow)]
    pub kind: Cow<'a, str>,
    #[serde(borrow)]
    pub role: Cow<'a, str>,
    #[serde(borrow)]
    pub model: Cow<'a, str>,
    #[serde(borrow)]
    pub content: Vec<Block<'a>>,
    #[serde(borrow)]
    pub stop_reason: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub stop_sequence: Option<Cow<'a, str>>,
    #[serde(default)]
    pub usage: Usage,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub struct Usage {
    #[serde(default)]
    pub input_tokens: u64,
    #[serde(default)]
    pub output_tokens: u64,
    #[serde(default)]
    pub cache_creation_input_tokens: Option<u64>,
    #[serde(default)]
    pub cache_read_input_tokens: Option<u64>,
    /// Cache writes by lifetime (five minutes or an hour), priced differently.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_creation: Option<CacheCreation>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub struct CacheCreation {
    #[serde(default)]
    pub ephemeral_5m_input_tokens: u64,
    #[serde(default)]
    pub ephemeral_1h_input_tokens: u64,
}

/// One stream event's `data`, read for what the gateway needs; the `type` says which fields
/// are set.
#[derive(Debug, Deserialize)]
pub struct StreamEvent<'a> {
    #[serde(rename = "type", borrow)]
    pub kind: Cow<'a, str>,
    /// `message_start`.
    #[serde(default, borrow)]
    pub message: Option<StreamMessage<'a>>,
    /// `content_block_*`.
    #[serde(default)]
    pub index: Option<usize>,
    #[serde(default, borrow)]
    pub content_block: Option<Block<'a>>,
    /// `content_block_delta` / `message_delta`.
    #[serde(default, borrow)]
    pub delta: Option<StreamDelta<'a>>,
    /// `message_delta`: cumulative.
    #[serde(default)]
    pub usage: Option<Usage>,
    /// `error`.
    #[serde(default, borrow)]
    pub error: Option<ErrorDetail<'a>>,
}

#[derive(Debug, Deserialize)]
pub struct StreamMessage<'a> {
    #[serde(borrow)]
    pub id: Cow<'a, str>,
    #[serde(borrow)]
    pub model: Cow<'a, str>,
    #[serde(default)]
    pub usage: Usage,
}

/// The `delta` of `content_block_delta` (text, JSON, thinking, signature) and of
/// `message_delta` (stop reason). Strings are kept as the raw JSON they were, escapes and all,
/// so they can be copied into another JSON document without decoding.
#[derive(Debug, Deserialize)]
pub struct StreamDelta<'a> {
    /// Borrowed, not `Cow`: serde would allocate an `Option<Cow>` on every delta. Anthropic's
    /// type names never hold escapes.
    #[serde(rename = "type", default, borrow)]
    pub kind: Option<&'a str>,
    #[serde(default, borrow)]
    pub text: Option<&'a RawValue>,
    #[serde(default, borrow)]
    pub partial_json: Option<&'a RawValue>,
    #[serde(default, borrow)]
    pub thinking: Option<&'a RawValue>,
    #[serde(default, borrow)]
    pub signature: Option<&'a RawValue>,
    #[serde(default, borrow)]
    pub stop_reason: Option<Cow<'a, str>>,
}

/// `{"type":"error","error":{"type","message"}}`.
#[derive(Debug, Deserialize, Serialize)]
pub struct ErrorEnvelope<'a> {
    #[serde(rename = "type", borrow)]
    pub kind: Cow<'a, str>,
    #[serde(borrow)]
    pub error: ErrorDetail<'a>,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct ErrorDetail<'a> {
    #[serde(rename = "type", borrow)]
    pub kind: Cow<'a, str>,
    #[serde(borrow)]
    pub message: Cow<'a, str>,
}

/// `POST /v1/messages/count_tokens` response.
#[derive(Debug, Deserialize, Serialize)]
pub struct CountTokensResponse {
    pub input_tokens: u64,
}
