//! Amazon Bedrock wire types: the Converse API (request, response, stream event payloads),
//! Titan and Cohere embeddings through InvokeModel, and Bedrock's error body.
//! Every content block is a union: exactly one of its fields is set.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::raw::RawFields;

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConverseRequest<'a> {
    pub messages: Vec<Message<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub system: Vec<SystemBlock<'a>>,
    #[serde(skip_serializing_if = "InferenceConfig::is_empty")]
    pub inference_config: InferenceConfig<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_config: Option<ToolConfig<'a>>,
    /// Model-specific fields (Anthropic's `thinking`, `top_k`, …), passed to the model as is.
    #[serde(skip_serializing_if = "serde_json::Map::is_empty")]
    pub additional_model_request_fields: serde_json::Map<String, serde_json::Value>,
    /// Converse's own optional fields from the client (`guardrailConfig`, …).
    #[serde(flatten)]
    pub extra: RawFields<'a>,
}

#[derive(Debug, Serialize)]
pub struct Message<'a> {
    /// `user` or `assistant`.
    pub role: &'static str,
    pub content: Vec<Block<'a>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum SystemBlock<'a> {
    Text(Cow<'a, str>),
    CachePoint(CachePoint),
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct CachePoint {
    #[serde(rename = "type")]
    pub kind: &'static str,
}

impl CachePoint {
    pub const DEFAULT: CachePoint = CachePoint { kind: "default" };
}

/// A request content block.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Block<'a> {
    Text(Cow<'a, str>),
    Image(Media<'a>),
    Document(Document<'a>),
    ToolUse(ToolUse<'a>),
    ToolResult(ToolResult<'a>),
    ReasoningContent(Reasoning<'a>),
    CachePoint(CachePoint),
}

#[derive(Debug, Serialize)]
pub struct Media<'a> {
    /// `png`, `jpeg`, `gif`, `webp`.
    pub format: Cow<'a, str>,
    pub source: MediaSource<'a>,
}

#[derive(Debug, Serialize)]
pub struct MediaSource<'a> {
    /// Base64.
    pub bytes: Cow<'a, str>,
}

#[derive(Debug, Serialize)]
pub struct Document<'a> {
    /// `pdf`, `csv`, `doc`, `docx`, `xls`, `xlsx`, `html`, `txt`, `md`.
    pub format: Cow<'a, str>,
    /// Letters, digits, single spaces, hyphens, parentheses and brackets.
    pub name: Cow<'a, str>,
    pub source: MediaSource<'a>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolUse<'a> {
    pub tool_use_id: Cow<'a, str>,
    pub name: Cow<'a, str>,
    pub input: &'a RawValue,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolResult<'a> {
    pub tool_use_id: Cow<'a, str>,
    pub content: Vec<ToolResultContent<'a>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ToolResultContent<'a> {
    Text(Cow<'a, str>),
    Image(Media<'a>),
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Reasoning<'a> {
    ReasoningText {
        text: Cow<'a, str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        signature: Option<Cow<'a, str>>,
    },
    RedactedContent(Cow<'a, str>),
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InferenceConfig<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stop_sequences: Vec<Cow<'a, str>>,
}

impl InferenceConfig<'_> {
    pub fn is_empty(&self) -> bool {
        self.max_tokens.is_none()
            && self.temperature.is_none()
            && self.top_p.is_none()
            && self.stop_sequences.is_empty()
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolConfig<'a> {
    pub tools: Vec<ToolEntry<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoice<'a>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ToolEntry<'a> {
    ToolSpec(ToolSpec<'a>),
    CachePoint(CachePoint),
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolSpec<'a> {
    pub name: Cow<'a, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<Cow<'a, str>>,
    pub input_schema: InputSchema<'a>,
}

#[derive(Debug, Serialize)]
pub struct InputSchema<'a> {
    pub json: &'a RawValue,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ToolChoice<'a> {
    Auto(Empty),
    Any(Empty),
    Tool { name: Cow<'a, str> },
}

#[derive(Debug, Default, Serialize)]
pub struct Empty {}

// ----- responses ------------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConverseResponse<'a> {
    #[serde(borrow)]
    pub output: ConverseOutput<'a>,
    #[serde(default, borrow)]
    pub stop_reason: Option<Cow<'a, str>>,
    #[serde(default)]
    pub usage: Option<TokenUsage>,
}

#[derive(Debug, Deserialize)]
pub struct ConverseOutput<'a> {
    #[serde(default, borrow)]
    pub message: Option<OutputMessage<'a>>,
}

#[derive(Debug, Deserialize)]
pub struct OutputMessage<'a> {
    #[serde(default, borrow)]
    pub content: Vec<OutputBlock<'a>>,
}

/// A response content block; unknown kinds (citations, …) are left empty.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OutputBlock<'a> {
    #[serde(default, borrow)]
    pub text: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub tool_use: Option<OutputToolUse<'a>>,
    #[serde(default, borrow)]
    pub reasoning_content: Option<OutputReasoning<'a>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OutputToolUse<'a> {
    #[serde(borrow)]
    pub tool_use_id: Cow<'a, str>,
    #[serde(borrow)]
    pub name: Cow<'a, str>,
    #[serde(default, borrow)]
    pub input: Option<&'a RawValue>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OutputReasoning<'a> {
    #[serde(default, borrow)]
    pub reasoning_text: Option<ReasoningText<'a>>,
    #[serde(default, borrow)]
    pub redacted_content: Option<Cow<'a, str>>,
}

#[derive(Debug, Deserialize)]
pub struct ReasoningText<'a> {
    #[serde(default, borrow)]
    pub text: Cow<'a, str>,
    #[serde(default, borrow)]
    pub signature: Option<Cow<'a, str>>,
}

/// Token counts; `inputTokens` leaves out cache reads and writes.
#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenUsage {
    #[serde(default)]
    pub input_tokens: u64,
    #[serde(default)]
    pub output_tokens: u64,
    #[serde(default)]
    pub cache_read_input_tokens: u64,
    #[serde(default)]
    pub cache_write_input_tokens: u64,
}

// ----- stream event payloads (the event's name is in the `:event-type` header) -----------------

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContentBlockStart<'a> {
    #[serde(default)]
    pub content_block_index: usize,
    #[serde(default, borrow)]
    pub start: Option<BlockStart<'a>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockStart<'a> {
    #[serde(default, borrow)]
    pub tool_use: Option<StartedToolUse<'a>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StartedToolUse<'a> {
    #[serde(borrow)]
    pub tool_use_id: Cow<'a, str>,
    #[serde(borrow)]
    pub name: Cow<'a, str>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContentBlockDelta<'a> {
    #[serde(default)]
    pub content_block_index: usize,
    #[serde(borrow)]
    pub delta: Delta<'a>,
}

/// Text stays raw JSON so it is copied to the client without decoding.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Delta<'a> {
    #[serde(default, borrow)]
    pub text: Option<&'a RawValue>,
    #[serde(default, borrow)]
    pub tool_use: Option<ToolUseDelta<'a>>,
    #[serde(default, borrow)]
    pub reasoning_content: Option<ReasoningDelta<'a>>,
}

#[derive(Debug, Deserialize)]
pub struct ToolUseDelta<'a> {
    /// A fragment of the arguments' JSON text.
    #[serde(borrow)]
    pub input: &'a RawValue,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReasoningDelta<'a> {
    #[serde(default, borrow)]
    pub text: Option<&'a RawValue>,
    #[serde(default, borrow)]
    pub signature: Option<&'a RawValue>,
    #[serde(default, borrow)]
    pub redacted_content: Option<&'a RawValue>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContentBlockStop {
    #[serde(default)]
    pub content_block_index: usize,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageStop<'a> {
    #[serde(default, borrow)]
    pub stop_reason: Option<Cow<'a, str>>,
}

#[derive(Debug, Deserialize)]
pub struct StreamMetadata {
    #[serde(default)]
    pub usage: Option<TokenUsage>,
}

/// An InvokeModel stream event: `{"bytes": "<base64 of one model event>"}`.
#[derive(Debug, Deserialize)]
pub struct PayloadPart<'a> {
    #[serde(borrow)]
    pub bytes: Cow<'a, str>,
}

/// `{"message": "…"}` (some services write `Message`).
#[derive(Debug, Default, Deserialize)]
pub struct ErrorBody {
    #[serde(default, alias = "Message")]
    pub message: Option<String>,
}

// ----- embeddings (InvokeModel) ---------------------------------------------------------------

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TitanEmbedRequest<'a> {
    pub input_text: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dimensions: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TitanEmbedResponse {
    pub embedding: Vec<f32>,
    #[serde(default)]
    pub input_text_token_count: u64,
}

#[derive(Debug, Serialize)]
pub struct CohereEmbedRequest<'a> {
    pub texts: Vec<&'a str>,
    pub input_type: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_dimension: Option<u64>,
}

#[derive(Debug, Deserialize)]
pub struct CohereEmbedResponse {
    pub embeddings: CohereEmbeddings,
}

/// `embeddings_floats` (a list) or `embeddings_by_type` (`{"float": [...]}`).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum CohereEmbeddings {
    Floats(Vec<Vec<f32>>),
    ByType { float: Vec<Vec<f32>> },
}
