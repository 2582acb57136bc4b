//! OpenAI API wire types (chat completions, completions, embeddings, models, errors).

use serde::{Deserialize, Serialize};

use crate::raw::RawField;

/// The fields of a request (OpenAI chat, completion or embedding; Anthropic messages) the
/// gateway reads before anything else.
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
    #[serde(default, borrow)]
    pub max_tokens: RawField<'a>,
    #[serde(default, borrow)]
    pub max_completion_tokens: RawField<'a>,
    /// The Responses API's output limit.
    #[serde(default, borrow)]
    pub max_output_tokens: RawField<'a>,
    /// The request's own fallback models (LiteLLM's), read by the gateway and never forwarded.
    #[serde(default, borrow)]
    pub fallbacks: RawField<'a>,
    /// The request's tags for spend and tag budgets (LiteLLM's top-level `tags`), read by the
    /// gateway and never forwarded.
    #[serde(default, borrow)]
    pub tags: RawField<'a>,
    /// The application's end user (OpenAI's `user`), for end-user limits and blocks.
    #[serde(default, borrow)]
    pub user: RawField<'a>,
    /// Anthropic's request `metadata`, whose `user_id` names the end user on `/v1/messages`.
    #[serde(default, borrow)]
    pub metadata: RawField<'a>,
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

// ---------------------------------------------------------------------------------------------
// Chat completions, fully read: the form every translation goes through.

use std::borrow::Cow;

use serde::Serializer;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::raw::{RawFields, TextOr};

/// A chat completion request with every field the gateway may translate. Keys that are not
/// part of OpenAI's API (provider-specific parameters such as `top_k` or `safety_settings`)
/// are kept in `extra`, as written, and forwarded into the provider's request.
#[derive(Debug, Default, Serialize)]
pub struct ChatRequest<'a> {
    pub model: Cow<'a, str>,
    pub messages: Vec<ChatMessage<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_options: Option<StreamOptionsOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_completion_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub n: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop: Option<TextOr<'a, Cow<'a, str>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub presence_penalty: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frequency_penalty: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logit_bias: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logprobs: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_logprobs: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<ChatTool<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoice<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parallel_tool_calls: Option<bool>,
    /// `parallel_tool_calls` was carried over from another API (Anthropic's
    /// `disable_parallel_tool_use`, a Responses request bridged to chat), not written by the
    /// client as a chat parameter: a provider that cannot honour it drops it instead of
    /// refusing the request. The gateway's own mark, so never on the wire.
    #[serde(skip)]
    pub parallel_tool_calls_derived: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_format: Option<ResponseFormat<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning_effort: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_tier: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store: Option<bool>,
    /// OpenAI parameters no other provider takes; they only reach OpenAI-compatible providers.
    #[serde(flatten)]
    pub openai_only: RawFields<'a>,
    /// Anthropic's `thinking`, as LiteLLM accepts it in OpenAI requests.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thinking: Option<Cow<'a, RawValue>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_k: Option<u64>,
    /// Keys outside OpenAI's API, forwarded to the provider as written.
    #[serde(flatten)]
    pub extra: RawFields<'a>,
}

/// OpenAI chat parameters that only OpenAI-compatible providers understand.
pub const OPENAI_ONLY_PARAMS: &[&str] = &[
    "audio",
    "function_call",
    "functions",
    "modalities",
    "prediction",
    "prompt_cache_key",
    "safety_identifier",
    "verbosity",
    "web_search_options",
];

#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct StreamOptionsOut {
    pub include_usage: bool,
}

impl<'de: 'a, 'a> Deserialize<'de> for ChatRequest<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RequestVisitor<'a>(std::marker::PhantomData<&'a ()>);

        impl<'de: 'a, 'a> Visitor<'de> for RequestVisitor<'a> {
            type Value = ChatRequest<'a>;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a chat completion request object")
            }

            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
                let mut request = ChatRequest::default();
                let mut model = None;
                let mut messages = None;
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    // A wrong type names its field: `temperature`: invalid type: string …
                    macro_rules! value {
                        () => {
                            map.next_value()
                                .map_err(|err| de::Error::custom(format!("`{key}`: {err}")))?
                        };
                    }
                    match key.as_ref() {
                        "model" => model = Some(value!()),
                        "messages" => messages = Some(value!()),
                        "stream" => request.stream = value!(),
                        "stream_options" => {
                            let options: Option<StreamOptions> = value!();
                            request.stream_options = options.map(|o| StreamOptionsOut {
                                include_usage: o.include_usage == Some(true),
                            });
                        }
                        "max_tokens" => request.max_tokens = value!(),
                        "max_completion_tokens" => request.max_completion_tokens = value!(),
                        "temperature" => request.temperature = value!(),
                        "top_p" => request.top_p = value!(),
                        "n" => request.n = value!(),
                        "stop" => request.stop = value!(),
                        "seed" => request.seed = value!(),
                        "presence_penalty" => request.presence_penalty = value!(),
                        "frequency_penalty" => request.frequency_penalty = value!(),
                        "logit_bias" => request.logit_bias = value!(),
                        "logprobs" => request.logprobs = value!(),
                        "top_logprobs" => request.top_logprobs = value!(),
                        "tools" => request.tools = value!(),
                        "tool_choice" => request.tool_choice = value!(),
                        "parallel_tool_calls" => request.parallel_tool_calls = value!(),
                        "response_format" => request.response_format = value!(),
                        "reasoning_effort" => request.reasoning_effort = value!(),
                        "user" => request.user = value!(),
                        "metadata" => request.metadata = value!(),
                        "service_tier" => request.service_tier = value!(),
                        "store" => request.store = value!(),
                        "thinking" => {
                            let raw: Option<&'a RawValue> = value!();
                            request.thinking = raw.map(Cow::Borrowed);
                        }
                        "top_k" => request.top_k = value!(),
                        // The gateway's own (see `RequestHead`); no provider takes them.
                        "fallbacks" | "tags" => {
                            let _: de::IgnoredAny = value!();
                        }
                        name if OPENAI_ONLY_PARAMS.contains(&name) => {
                            let raw: &'a RawValue = value!();
                            request.openai_only.push(key, raw);
                        }
                        _ => {
                            let raw: &'a RawValue = value!();
                            request.extra.push(key, raw);
                        }
                    }
                }
                request.model = model.ok_or_else(|| de::Error::missing_field("model"))?;
                request.messages = messages.ok_or_else(|| de::Error::missing_field("messages"))?;
                Ok(request)
            }
        }

        deserializer.deserialize_map(RequestVisitor(std::marker::PhantomData))
    }
}

impl<'a> ChatRequest<'a> {
    /// `max_completion_tokens`, else `max_tokens`.
    pub fn max_output_tokens(&self) -> Option<u64> {
        self.max_completion_tokens.or(self.max_tokens)
    }

    pub fn is_stream(&self) -> bool {
        self.stream == Some(true)
    }
}

#[derive(Debug, Default, Deserialize, Serialize)]
pub struct ChatMessage<'a> {
    /// `system`, `developer`, `user`, `assistant`, `tool`, `function`.
    #[serde(borrow)]
    pub role: Cow<'a, str>,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub content: Option<TextOr<'a, ContentPart<'a>>>,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub name: Option<Cow<'a, str>>,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCall<'a>>>,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<Cow<'a, str>>,
    /// Reasoning text from an earlier turn (DeepSeek, LiteLLM).
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<Cow<'a, str>>,
    /// Anthropic thinking blocks from an earlier turn, with their signatures (LiteLLM's field):
    /// needed to continue a tool-use turn with thinking on.
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub thinking_blocks: Option<Vec<ThinkingBlock<'a>>>,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<&'a RawValue>,
}

/// A content part. Flat: `type` says which field is set.
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct ContentPart<'a> {
    /// `text`, `image_url`, `input_audio`, `file`.
    #[serde(rename = "type", borrow)]
    pub kind: Cow<'a, str>,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub text: Option<Cow<'a, str>>,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub image_url: Option<ImageUrl<'a>>,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub input_audio: Option<&'a RawValue>,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub file: Option<FilePart<'a>>,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<&'a RawValue>,
}

/// `image_url`: `{"url": …, "detail": …}`, or (as LiteLLM accepts) just the URL string.
#[derive(Debug, Default, Serialize)]
pub struct ImageUrl<'a> {
    pub url: Cow<'a, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<Cow<'a, str>>,
    /// The media type, when the client states it (LiteLLM's `format`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<Cow<'a, str>>,
}

impl<'de: 'a, 'a> Deserialize<'de> for ImageUrl<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Object<'a> {
            #[serde(borrow)]
            url: Cow<'a, str>,
            #[serde(default, borrow)]
            detail: Option<Cow<'a, str>>,
            #[serde(default, borrow)]
            format: Option<Cow<'a, str>>,
        }
        match TextOrObject::<Object<'a>>::deserialize(deserializer)? {
            TextOrObject::Text(url) => Ok(ImageUrl {
                url,
                detail: None,
                format: None,
            }),
            TextOrObject::Object(object) => Ok(ImageUrl {
                url: object.url,
                detail: object.detail,
                format: object.format,
            }),
        }
    }
}

#[derive(Debug, Default, Deserialize, Serialize)]
pub struct FilePart<'a> {
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub file_id: Option<Cow<'a, str>>,
    /// A data URL (`data:application/pdf;base64,…`).
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub file_data: Option<Cow<'a, str>>,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub filename: Option<Cow<'a, str>>,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub format: Option<Cow<'a, str>>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
pub struct ToolCall<'a> {
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub id: Option<Cow<'a, str>>,
    #[serde(
        rename = "type",
        default,
        borrow,
        skip_serializing_if = "Option::is_none"
    )]
    pub kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub function: FunctionCall<'a>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
pub struct FunctionCall<'a> {
    #[serde(borrow)]
    pub name: Cow<'a, str>,
    /// The arguments as a JSON text (a string holding JSON), as OpenAI sends them.
    #[serde(default, borrow)]
    pub arguments: Cow<'a, str>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
pub struct ThinkingBlock<'a> {
    /// `thinking` or `redacted_thinking`.
    #[serde(rename = "type", borrow)]
    pub kind: Cow<'a, str>,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub thinking: Option<Cow<'a, str>>,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub signature: Option<Cow<'a, str>>,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub data: Option<Cow<'a, str>>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
pub struct ChatTool<'a> {
    #[serde(rename = "type", default, borrow)]
    pub kind: Cow<'a, str>,
    #[serde(borrow)]
    pub function: FunctionDefinition<'a>,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<&'a RawValue>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
pub struct FunctionDefinition<'a> {
    #[serde(borrow)]
    pub name: Cow<'a, str>,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub description: Option<Cow<'a, str>>,
    /// The JSON Schema of the arguments, as written.
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<&'a RawValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strict: Option<bool>,
}

/// `tool_choice`: `"auto"`, `"none"`, `"required"`, or `{"type":"function","function":{"name"}}`.
#[derive(Debug, Clone, PartialEq)]
pub enum ToolChoice<'a> {
    Mode(Cow<'a, str>),
    Function(Cow<'a, str>),
}

impl<'de: 'a, 'a> Deserialize<'de> for ToolChoice<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Named<'a> {
            #[serde(borrow)]
            function: NamedFunction<'a>,
        }
        #[derive(Deserialize)]
        struct NamedFunction<'a> {
            #[serde(borrow)]
            name: Cow<'a, str>,
        }
        match TextOrObject::<Named<'a>>::deserialize(deserializer)? {
            TextOrObject::Text(mode) => Ok(ToolChoice::Mode(mode)),
            TextOrObject::Object(named) => Ok(ToolChoice::Function(named.function.name)),
        }
    }
}

impl Serialize for ToolChoice<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            ToolChoice::Mode(mode) => serializer.serialize_str(mode),
            ToolChoice::Function(name) => {
                serde_json::json!({"type": "function", "function": {"name": name}})
                    .serialize(serializer)
            }
        }
    }
}

#[derive(Debug, Default, Deserialize, Serialize)]
pub struct ResponseFormat<'a> {
    /// `text`, `json_object`, `json_schema`.
    #[serde(rename = "type", borrow)]
    pub kind: Cow<'a, str>,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub json_schema: Option<JsonSchemaFormat<'a>>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
pub struct JsonSchemaFormat<'a> {
    #[serde(default, borrow)]
    pub name: Cow<'a, str>,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub description: Option<Cow<'a, str>>,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub schema: Option<&'a RawValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strict: Option<bool>,
}

/// A string, or an object of type `T`, read without buffering.
enum TextOrObject<'a, T> {
    Text(Cow<'a, str>),
    Object(T),
}

impl<'de: 'a, 'a, T: Deserialize<'de>> Deserialize<'de> for TextOrObject<'a, T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextOrObjectVisitor<'a, T>(std::marker::PhantomData<(&'a (), T)>);

        impl<'de: 'a, 'a, T: Deserialize<'de>> Visitor<'de> for TextOrObjectVisitor<'a, T> {
            type Value = TextOrObject<'a, T>;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string or an object")
            }
            fn visit_borrowed_str<E: de::Error>(self, text: &'de str) -> Result<Self::Value, E> {
                Ok(TextOrObject::Text(Cow::Borrowed(text)))
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
                Ok(TextOrObject::Text(Cow::Owned(text.to_owned())))
            }
            fn visit_map<M: MapAccess<'de>>(self, map: M) -> Result<Self::Value, M::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map)).map(TextOrObject::Object)
            }
        }

        deserializer.deserialize_any(TextOrObjectVisitor(std::marker::PhantomData))
    }
}

/// A chat completion response, read for translation to another client format.
#[derive(Debug, Deserialize)]
pub struct ChatCompletion<'a> {
    #[serde(default, borrow)]
    pub id: Cow<'a, str>,
    #[serde(default)]
    pub created: u64,
    #[serde(default, borrow)]
    pub model: Cow<'a, str>,
    #[serde(borrow)]
    pub choices: Vec<CompletionChoice<'a>>,
    #[serde(default)]
    pub usage: Option<Usage>,
}

#[derive(Debug, Deserialize)]
pub struct CompletionChoice<'a> {
    #[serde(default)]
    pub index: u64,
    #[serde(borrow)]
    pub message: AssistantMessage<'a>,
    #[serde(default, borrow)]
    pub finish_reason: Option<Cow<'a, str>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct AssistantMessage<'a> {
    #[serde(default, borrow)]
    pub content: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub reasoning_content: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub tool_calls: Option<Vec<ToolCall<'a>>>,
    #[serde(default, borrow)]
    pub refusal: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub thinking_blocks: Option<Vec<ThinkingBlock<'a>>>,
}

/// One chat stream chunk, read for translation. Text stays raw JSON so it can be copied into
/// another format's event without decoding.
#[derive(Debug, Deserialize)]
pub struct ChatChunk<'a> {
    #[serde(default, borrow)]
    pub id: Cow<'a, str>,
    #[serde(default, borrow)]
    pub model: Cow<'a, str>,
    #[serde(default, borrow)]
    pub choices: Vec<ChunkChoice<'a>>,
    #[serde(default)]
    pub usage: Option<Usage>,
    /// Mid-stream errors (`data: {"error":…}`).
    #[serde(default, borrow)]
    pub error: Option<&'a RawValue>,
}

#[derive(Debug, Deserialize)]
pub struct ChunkChoice<'a> {
    #[serde(default)]
    pub index: u64,
    #[serde(default, borrow)]
    pub delta: Option<ChunkDelta<'a>>,
    #[serde(default, borrow)]
    pub finish_reason: Option<Cow<'a, str>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct ChunkDelta<'a> {
    #[serde(default, borrow)]
    pub content: Option<&'a RawValue>,
    #[serde(default, borrow)]
    pub reasoning_content: Option<&'a RawValue>,
    #[serde(default, borrow)]
    pub tool_calls: Option<Vec<ChunkToolCall<'a>>>,
}

#[derive(Debug, Deserialize)]
pub struct ChunkToolCall<'a> {
    #[serde(default)]
    pub index: u64,
    #[serde(default, borrow)]
    pub id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub function: Option<ChunkFunction<'a>>,
}

#[derive(Debug, Deserialize)]
pub struct ChunkFunction<'a> {
    #[serde(default, borrow)]
    pub name: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub arguments: Option<&'a RawValue>,
}

/// `POST /v1/embeddings`, as the gateway reads it when it must translate it.
#[derive(Debug, Deserialize)]
pub struct EmbeddingRequest<'a> {
    #[serde(borrow)]
    pub model: Cow<'a, str>,
    #[serde(borrow)]
    pub input: EmbeddingInput<'a>,
    #[serde(default)]
    pub dimensions: Option<u64>,
    /// `float` (the default) or `base64` (what OpenAI's SDKs ask for).
    #[serde(default, borrow)]
    pub encoding_format: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub user: Option<Cow<'a, str>>,
    /// Provider-specific keys (`task_type`, `input_type`, …).
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// Text, a list of texts, or token ids (one list or several).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum EmbeddingInput<'a> {
    Text(#[serde(borrow)] Cow<'a, str>),
    Texts(#[serde(borrow)] Vec<Cow<'a, str>>),
    Tokens(Vec<u32>),
    TokenLists(Vec<Vec<u32>>),
}
