//! OpenAI Responses API wire types (`POST /v1/responses`), as the gateway reads them to bridge
//! the API onto chat completions. Items are read through one flat struct per kind of thing:
//! which fields are set says what an item is, and kinds the bridge does not know are kept
//! aside rather than refused.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::raw::TextOr;

#[derive(Debug, Deserialize)]
pub struct ResponsesRequest<'a> {
    #[serde(borrow)]
    pub model: Cow<'a, str>,
    /// A string (one user message) or a list of items.
    #[serde(default, borrow)]
    pub input: Option<TextOr<'a, InputItem<'a>>>,
    #[serde(default, borrow)]
    pub instructions: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub tools: Vec<Tool<'a>>,
    #[serde(default, borrow)]
    pub tool_choice: Option<&'a RawValue>,
    #[serde(default)]
    pub parallel_tool_calls: Option<bool>,
    #[serde(default, borrow)]
    pub previous_response_id: Option<Cow<'a, str>>,
    /// Defaults to true, as on OpenAI.
    #[serde(default)]
    pub store: Option<bool>,
    #[serde(default)]
    pub stream: Option<bool>,
    #[serde(default)]
    pub temperature: Option<f64>,
    #[serde(default)]
    pub top_p: Option<f64>,
    #[serde(default)]
    pub max_output_tokens: Option<u64>,
    #[serde(default, borrow)]
    pub reasoning: Option<ReasoningConfig<'a>>,
    #[serde(default, borrow)]
    pub text: Option<TextConfig<'a>>,
    #[serde(default, borrow)]
    pub metadata: Option<&'a RawValue>,
    #[serde(default, borrow)]
    pub user: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub include: Vec<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub truncation: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub service_tier: Option<Cow<'a, str>>,
}

/// An input item: a message (`type` may be left out), a function call or its output, a
/// reasoning item, a custom tool call or its output — or a kind the bridge skips.
#[derive(Debug, Default, Deserialize)]
pub struct InputItem<'a> {
    #[serde(rename = "type", default, borrow)]
    pub kind: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub role: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub content: Option<TextOr<'a, ContentPart<'a>>>,
    #[serde(default, borrow)]
    pub call_id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub name: Option<Cow<'a, str>>,
    /// Function calls: the arguments as JSON text.
    #[serde(default, borrow)]
    pub arguments: Option<Cow<'a, str>>,
    /// Custom tool calls: the raw input text.
    #[serde(default, borrow)]
    pub input: Option<Cow<'a, str>>,
    /// Tool outputs: text, or a list of parts.
    #[serde(default, borrow)]
    pub output: Option<TextOr<'a, ContentPart<'a>>>,
    #[serde(default, borrow)]
    pub summary: Vec<ContentPart<'a>>,
    #[serde(default, borrow)]
    pub encrypted_content: Option<Cow<'a, str>>,
}

/// `input_text`, `output_text`, `input_image`, `input_file`, `refusal`, `summary_text`.
#[derive(Debug, Default, Deserialize)]
pub struct ContentPart<'a> {
    #[serde(rename = "type", borrow)]
    pub kind: Cow<'a, str>,
    #[serde(default, borrow)]
    pub text: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub image_url: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub detail: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub file_id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub file_data: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub file_url: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub filename: Option<Cow<'a, str>>,
}

/// A tool: `function` (flat: name, parameters, …), `custom` (free-form input), or a hosted
/// tool (`web_search`, `local_shell`, …).
#[derive(Debug, Deserialize)]
pub struct Tool<'a> {
    #[serde(rename = "type", borrow)]
    pub kind: Cow<'a, str>,
    #[serde(default, borrow)]
    pub name: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub description: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub parameters: Option<&'a RawValue>,
    #[serde(default)]
    pub strict: Option<bool>,
    /// Custom tools: `{type: "grammar", syntax, definition}` or `{type: "text"}`.
    #[serde(default, borrow)]
    pub format: Option<&'a RawValue>,
}

#[derive(Debug, Default, Deserialize)]
pub struct ReasoningConfig<'a> {
    #[serde(default, borrow)]
    pub effort: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub summary: Option<Cow<'a, str>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct TextConfig<'a> {
    #[serde(default, borrow)]
    pub format: Option<TextFormat<'a>>,
    #[serde(default, borrow)]
    pub verbosity: Option<Cow<'a, str>>,
}

/// `{type: "text" | "json_object" | "json_schema", name?, schema?, strict?, description?}`
/// (flat, unlike chat's `response_format`).
#[derive(Debug, Deserialize)]
pub struct TextFormat<'a> {
    #[serde(rename = "type", borrow)]
    pub kind: Cow<'a, str>,
    #[serde(default, borrow)]
    pub name: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub description: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub schema: Option<&'a RawValue>,
    #[serde(default)]
    pub strict: Option<bool>,
}
