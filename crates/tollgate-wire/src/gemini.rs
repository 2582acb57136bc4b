//! Google Gemini API wire types (`generateContent`, `streamGenerateContent`, embeddings), also
//! spoken by Gemini models on Vertex AI. Requests are written in camelCase, as the API's
//! responses are.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::raw::RawFields;

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerateContentRequest<'a> {
    pub contents: Vec<Content<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system_instruction: Option<Content<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<Tool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_config: Option<ToolConfig<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generation_config: Option<GenerationConfig<'a>>,
    /// Provider-specific keys from the client's request (`safetySettings`, `cachedContent`, …).
    #[serde(flatten)]
    pub extra: RawFields<'a>,
}

#[derive(Debug, Default, Serialize)]
pub struct Content<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<Cow<'a, str>>,
    pub parts: Vec<Part<'a>>,
}

/// One request part. Flat: which field is set says what it is.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Part<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<Cow<'a, str>>,
    /// The text is a summary of the model's thinking.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thought: Option<bool>,
    /// Opaque; must be sent back with the part it came on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thought_signature: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inline_data: Option<Blob<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_data: Option<FileData<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub function_call: Option<FunctionCall<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub function_response: Option<FunctionResponse<'a>>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Blob<'a> {
    #[serde(borrow)]
    pub mime_type: Cow<'a, str>,
    /// Base64 (standard alphabet).
    #[serde(borrow)]
    pub data: Cow<'a, str>,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FileData<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<Cow<'a, str>>,
    pub file_uri: Cow<'a, str>,
}

/// A function call being sent back in the conversation.
#[derive(Debug, Serialize)]
pub struct FunctionCall<'a> {
    /// Gemini 3 returns an id with every call; earlier models refuse one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<Cow<'a, str>>,
    pub name: Cow<'a, str>,
    /// The arguments object, as raw JSON.
    pub args: Cow<'a, RawValue>,
}

#[derive(Debug, Serialize)]
pub struct FunctionResponse<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<Cow<'a, str>>,
    pub name: Cow<'a, str>,
    /// A JSON object.
    pub response: Cow<'a, RawValue>,
}

/// A function call the model made.
#[derive(Debug, Deserialize)]
pub struct CalledFunction<'a> {
    #[serde(default, borrow)]
    pub id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub name: Cow<'a, str>,
    #[serde(default, borrow)]
    pub args: Option<&'a RawValue>,
}

/// One tool entry: function declarations, or one of Google's built-in tools.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Tool<'a> {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub function_declarations: Vec<FunctionDeclaration<'a>>,
    /// `{}`: grounding with Google Search.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub google_search: Option<serde_json::Value>,
}

#[derive(Debug, Default, Serialize)]
pub struct FunctionDeclaration<'a> {
    pub name: Cow<'a, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<Cow<'a, str>>,
    /// The OpenAPI-subset schema Gemini accepts (converted from JSON Schema).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameters: Option<serde_json::Value>,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolConfig<'a> {
    pub function_calling_config: FunctionCallingConfig<'a>,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FunctionCallingConfig<'a> {
    /// `AUTO`, `ANY`, `NONE`.
    pub mode: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allowed_function_names: Vec<Cow<'a, str>>,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerationConfig<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_k: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_output_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stop_sequences: Vec<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub candidate_count: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub presence_penalty: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frequency_penalty: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_mime_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_schema: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_logprobs: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logprobs: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thinking_config: Option<ThinkingConfig>,
}

/// Gemini 2.5 takes a token budget; Gemini 3 a level (`low`, `medium`, `high`, …). Never both.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ThinkingConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub include_thoughts: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thinking_budget: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thinking_level: Option<&'static str>,
}

/// A response, or one chunk of a stream (each chunk is a response holding only what is new).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerateContentResponse<'a> {
    #[serde(default, borrow)]
    pub candidates: Vec<Candidate<'a>>,
    #[serde(default, borrow)]
    pub prompt_feedback: Option<PromptFeedback<'a>>,
    #[serde(default)]
    pub usage_metadata: Option<UsageMetadata>,
    #[serde(default, borrow)]
    pub model_version: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub response_id: Option<Cow<'a, str>>,
    /// Errors sent inside a stream.
    #[serde(default, borrow)]
    pub error: Option<ErrorDetail<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Candidate<'a> {
    #[serde(default, borrow)]
    pub content: Option<ResponseContent<'a>>,
    #[serde(default, borrow)]
    pub finish_reason: Option<Cow<'a, str>>,
    #[serde(default)]
    pub index: u64,
}

#[derive(Debug, Default, Deserialize)]
pub struct ResponseContent<'a> {
    #[serde(default, borrow)]
    pub parts: Vec<ResponsePart<'a>>,
}

/// A response part; text stays raw JSON so streams copy it without decoding.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResponsePart<'a> {
    #[serde(default, borrow)]
    pub text: Option<&'a RawValue>,
    #[serde(default)]
    pub thought: Option<bool>,
    #[serde(default, borrow)]
    pub thought_signature: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub function_call: Option<CalledFunction<'a>>,
    #[serde(default, borrow)]
    pub inline_data: Option<Blob<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PromptFeedback<'a> {
    #[serde(default, borrow)]
    pub block_reason: Option<Cow<'a, str>>,
}

/// Token counts; zero counts are often left out.
#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageMetadata {
    #[serde(default)]
    pub prompt_token_count: u64,
    #[serde(default)]
    pub candidates_token_count: u64,
    #[serde(default)]
    pub total_token_count: u64,
    #[serde(default)]
    pub cached_content_token_count: u64,
    #[serde(default)]
    pub thoughts_token_count: u64,
    #[serde(default)]
    pub tool_use_prompt_token_count: u64,
}

/// `{"error":{"code","message","status"}}`.
#[derive(Debug, Deserialize)]
pub struct ErrorEnvelope<'a> {
    #[serde(borrow)]
    pub error: ErrorDetail<'a>,
}

#[derive(Debug, Default, Deserialize)]
pub struct ErrorDetail<'a> {
    #[serde(default)]
    pub code: u16,
    #[serde(default, borrow)]
    pub message: Cow<'a, str>,
    #[serde(default, borrow)]
    pub status: Cow<'a, str>,
}

/// `batchEmbedContents`.
#[derive(Debug, Serialize)]
pub struct BatchEmbedRequest<'a> {
    pub requests: Vec<EmbedRequest<'a>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EmbedRequest<'a> {
    /// `models/{model}`, as in the URL.
    pub model: Cow<'a, str>,
    pub content: Content<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_dimensionality: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_type: Option<Cow<'a, str>>,
}

#[derive(Debug, Deserialize)]
pub struct BatchEmbedResponse {
    #[serde(default)]
    pub embeddings: Vec<Embedding>,
}

#[derive(Debug, Deserialize)]
pub struct Embedding {
    #[serde(default)]
    pub values: Vec<f32>,
}

/// Vertex AI text-embedding models' `predict`.
#[derive(Debug, Serialize)]
pub struct PredictRequest<'a> {
    pub instances: Vec<PredictInstance<'a>>,
    #[serde(skip_serializing_if = "PredictParameters::is_empty")]
    pub parameters: PredictParameters,
}

#[derive(Debug, Serialize)]
pub struct PredictInstance<'a> {
    pub content: Cow<'a, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_type: Option<Cow<'a, str>>,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PredictParameters {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_dimensionality: Option<u64>,
}

impl PredictParameters {
    pub fn is_empty(&self) -> bool {
        self.output_dimensionality.is_none()
    }
}

#[derive(Debug, Deserialize)]
pub struct PredictResponse {
    #[serde(default)]
    pub predictions: Vec<Prediction>,
}

#[derive(Debug, Deserialize)]
pub struct Prediction {
    pub embeddings: PredictedEmbedding,
}

#[derive(Debug, Deserialize)]
pub struct PredictedEmbedding {
    #[serde(default)]
    pub values: Vec<f32>,
    #[serde(default)]
    pub statistics: Option<EmbeddingStatistics>,
}

#[derive(Debug, Deserialize)]
pub struct EmbeddingStatistics {
    #[serde(default)]
    pub token_count: f64,
}
