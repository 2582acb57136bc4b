//! Canonical (OpenAI chat) request → Gemini `generateContent` request, for the Gemini API and
//! Gemini models on Vertex AI.
//!
//! Choices made where the formats differ (also in docs/providers.md):
//! - `system`/`developer` messages become `systemInstruction`, in order.
//! - consecutive messages of one role merge into one content; `tool` messages become
//!   `functionResponse` parts of a user content, named after the call they answer.
//! - a tool call's id carries Gemini's thought signature after `__thought__` (as LiteLLM
//!   does), so it comes back with the call; Gemini 3 also gets its own call ids back, and
//!   calls without a signature (made by another model) get the documented skip value.
//!   Signatures on text parts are optional and are not kept.
//! - `reasoning_effort` becomes a thinking budget on Gemini 2.5 (1024 / 2048 / 4096) and a
//!   thinking level on Gemini 3; Anthropic-style `thinking` sets the budget directly.
//! - `response_format` becomes `responseMimeType` (+ `responseSchema`); `web_search_options`
//!   becomes the Google Search tool.
//! - `parallel_tool_calls: false` has no Gemini equivalent: refused, or dropped with
//!   `drop_params`.

use std::borrow::Cow;
use std::collections::HashMap;

use bytes::Bytes;
use serde_json::value::RawValue;
use tollgate_core::error::GatewayError;
use tollgate_wire::gemini::{
    Blob, Content, FileData, FunctionCall, FunctionCallingConfig, FunctionDeclaration,
    FunctionResponse, GenerateContentRequest, GenerationConfig, Part, ThinkingConfig, Tool,
    ToolConfig,
};
use tollgate_wire::openai::{ChatMessage, ChatRequest, ContentPart, ToolChoice};
use tollgate_wire::raw::TextOr;

use super::schema::to_gemini_schema;
use super::{THOUGHT_SEPARATOR, generation};
use crate::params::ParamPolicy;

/// Per-deployment facts the translation needs.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// The provider's model name (`gemini-2.5-flash`), which decides model-specific mappings.
    pub model: &'a str,
}

/// A `countTokens` body for `request`'s prompt. The Gemini API takes the whole generateContent
/// request under `generateContentRequest`, naming its model; Vertex AI counts `contents`,
/// `systemInstruction` and `tools` given directly. (Token counting is not on the hot path, so
/// the generateContent body is simply re-read.)
pub fn encode_count_request(
    request: &ChatRequest<'_>,
    target: Target<'_>,
    policy: &ParamPolicy,
    vertex: bool,
) -> Result<Bytes, GatewayError> {
    let generate = encode_request(request, target, policy)?;
    let mut generate: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&generate).map_err(|err| {
            GatewayError::internal(format!("a Gemini request could not be re-read: {err}"))
        })?;
    let counted = if vertex {
        generate
            .retain(|key, _| matches!(key.as_str(), "contents" | "systemInstruction" | "tools"));
        serde_json::Value::Object(generate)
    } else {
        generate.insert("model".into(), format!("models/{}", target.model).into());
        serde_json::json!({ "generateContentRequest": generate })
    };
    Ok(Bytes::from(counted.to_string()))
}

pub fn encode_request(
    request: &ChatRequest<'_>,
    target: Target<'_>,
    policy: &ParamPolicy,
) -> Result<Bytes, GatewayError> {
    let generation = generation(target.model);
    let gemini_3 = generation.is_some_and(|major| major >= 3);
    for (param, present) in [
        ("n", request.n.is_some_and(|n| n > 1)),
        ("logit_bias", request.logit_bias.is_some()),
        ("logprobs", request.logprobs == Some(true)),
        ("top_logprobs", request.top_logprobs.is_some()),
        // Gemini 3 refuses the penalties.
        (
            "presence_penalty",
            gemini_3 && request.presence_penalty.is_some(),
        ),
        (
            "frequency_penalty",
            gemini_3 && request.frequency_penalty.is_some(),
        ),
    ] {
        if present {
            policy.unsupported(param)?;
        }
    }
    // `toolConfig` has a mode and allowed names, nothing that limits calls per turn.
    policy.cannot_disable_parallel_tool_calls(request)?;
    let mut web_search = false;
    for param in request.openai_only.keys() {
        match param {
            "web_search_options" => web_search = true,
            other => policy.unsupported(other)?,
        }
    }

    // Tool calls' arguments are JSON text; Gemini wants the object. Parse them up front so
    // the parts can borrow them.
    let arguments: Vec<Box<RawValue>> = request
        .messages
        .iter()
        .flat_map(|message| message.tool_calls.iter().flatten())
        .map(|call| {
            let text = call.function.arguments.trim();
            let text = if text.is_empty() { "{}" } else { text };
            RawValue::from_string(text.to_owned()).map_err(|_| {
                GatewayError::invalid_param(
                    "messages",
                    format!(
                        "The arguments of tool call `{}` are not valid JSON.",
                        call.function.name
                    ),
                )
            })
        })
        .collect::<Result<_, _>>()?;
    let mut arguments = arguments.iter();
    // Tool results name the function they answer; OpenAI's only say the call id.
    let call_names: HashMap<&str, &str> = request
        .messages
        .iter()
        .flat_map(|message| message.tool_calls.iter().flatten())
        .filter_map(|call| Some((call.id.as_deref()?, call.function.name.as_ref())))
        .collect();

    let mut system: Vec<Part<'_>> = Vec::new();
    let mut contents: Vec<Content<'_>> = Vec::new();
    for message in &request.messages {
        match message.role.as_ref() {
            "system" | "developer" => text_parts(message, &mut system),
            "user" => {
                let parts = user_parts(message)?;
                push_content(&mut contents, "user", parts);
            }
            "tool" | "function" => {
                let part = function_response(message, &call_names, gemini_3)?;
                push_content(&mut contents, "user", vec![part]);
            }
            "assistant" => {
                let parts = model_parts(message, &mut arguments, gemini_3);
                push_content(&mut contents, "model", parts);
            }
            other => {
                return Err(GatewayError::invalid_param(
                    "messages",
                    format!("Unknown message role `{other}`."),
                ));
            }
        }
    }
    if contents.is_empty() {
        // Gemini needs at least one content; a system-only request gets an empty user turn.
        push_content(
            &mut contents,
            "user",
            vec![Part {
                text: Some(".".into()),
                ..Part::default()
            }],
        );
    }

    let mut tools: Vec<Tool<'_>> = Vec::new();
    let declarations: Vec<FunctionDeclaration<'_>> = request
        .tools
        .iter()
        .flatten()
        .map(|tool| {
            let parameters = match tool.function.parameters {
                Some(raw) => {
                    let schema: serde_json::Value =
                        serde_json::from_str(raw.get()).map_err(|_| {
                            GatewayError::invalid_param(
                                "tools",
                                format!(
                                    "The parameters of tool `{}` are not valid JSON.",
                                    tool.function.name
                                ),
                            )
                        })?;
                    let converted = to_gemini_schema(&schema, false);
                    // A parameterless function is declared without `parameters`: Gemini
                    // refuses an object schema with no properties.
                    (converted.get("properties").is_some() || converted["type"] != "OBJECT")
                        .then_some(converted)
                }
                None => None,
            };
            Ok(FunctionDeclaration {
                name: tool.function.name.clone(),
                description: tool.function.description.clone(),
                parameters,
            })
        })
        .collect::<Result<_, GatewayError>>()?;
    if !declarations.is_empty() {
        tools.push(Tool {
            function_declarations: declarations,
            ..Tool::default()
        });
    }
    if web_search {
        tools.push(Tool {
            google_search: Some(serde_json::json!({})),
            ..Tool::default()
        });
    }

    let tool_config = match &request.tool_choice {
        // A tool config without function declarations is refused.
        _ if tools
            .iter()
            .all(|tool| tool.function_declarations.is_empty()) =>
        {
            None
        }
        None => None,
        Some(ToolChoice::Mode(mode)) => {
            let mode = match mode.as_ref() {
                "auto" => "AUTO",
                "required" => "ANY",
                "none" => "NONE",
                other => {
                    return Err(GatewayError::invalid_param(
                        "tool_choice",
                        format!(
                            "`tool_choice` must be auto, none, required or a named function, got `{other}`."
                        ),
                    ));
                }
            };
            Some(ToolConfig {
                function_calling_config: FunctionCallingConfig {
                    mode,
                    allowed_function_names: Vec::new(),
                },
            })
        }
        Some(ToolChoice::Function(name)) => Some(ToolConfig {
            function_calling_config: FunctionCallingConfig {
                mode: "ANY",
                allowed_function_names: vec![name.clone()],
            },
        }),
    };

    let (response_mime_type, response_schema) = match &request.response_format {
        None => (None, None),
        Some(format) => match format.kind.as_ref() {
            "text" => (None, None),
            "json_object" => (Some("application/json"), None),
            "json_schema" => {
                let schema = match format.json_schema.as_ref().and_then(|s| s.schema) {
                    Some(raw) => {
                        let schema: serde_json::Value =
                            serde_json::from_str(raw.get()).map_err(|_| {
                                GatewayError::invalid_param(
                                    "response_format",
                                    "`response_format.json_schema.schema` is not valid JSON.",
                                )
                            })?;
                        Some(to_gemini_schema(&schema, true))
                    }
                    None => None,
                };
                (Some("application/json"), schema)
            }
            other => {
                return Err(GatewayError::invalid_param(
                    "response_format",
                    format!("Unknown `response_format` type `{other}`."),
                ));
            }
        },
    };

    let generation_config = GenerationConfig {
        temperature: request.temperature,
        top_p: request.top_p,
        top_k: request.top_k,
        max_output_tokens: request.max_output_tokens(),
        stop_sequences: match &request.stop {
            None => Vec::new(),
            Some(TextOr::Text(stop)) => vec![stop.clone()],
            Some(TextOr::List(stops)) => stops.iter().filter(|s| !s.is_empty()).cloned().collect(),
        },
        candidate_count: None,
        seed: request.seed,
        presence_penalty: request.presence_penalty.filter(|_| !gemini_3),
        frequency_penalty: request.frequency_penalty.filter(|_| !gemini_3),
        response_mime_type,
        response_schema,
        response_logprobs: None,
        logprobs: None,
        thinking_config: thinking_config(request, target.model, generation)?,
    };
    let has_generation_config = serde_json::to_value(&generation_config)
        .map(|value| value.as_object().is_some_and(|object| !object.is_empty()))
        .unwrap_or(false);

    let body = GenerateContentRequest {
        contents,
        system_instruction: (!system.is_empty()).then_some(Content {
            role: None,
            parts: system,
        }),
        tools,
        tool_config,
        generation_config: has_generation_config.then_some(generation_config),
        extra: request.extra.clone(),
    };
    let bytes = serde_json::to_vec(&body).map_err(|err| {
        GatewayError::internal(format!("could not encode the Gemini request: {err}"))
    })?;
    Ok(Bytes::from(bytes))
}

/// `thinkingConfig`, from the client's Anthropic-style `thinking` or from `reasoning_effort`.
fn thinking_config(
    request: &ChatRequest<'_>,
    model: &str,
    generation: Option<u32>,
) -> Result<Option<ThinkingConfig>, GatewayError> {
    if let Some(raw) = &request.thinking {
        #[derive(serde::Deserialize)]
        struct Thinking {
            #[serde(rename = "type")]
            kind: String,
            #[serde(default)]
            budget_tokens: Option<i64>,
        }
        let thinking: Thinking = serde_json::from_str(raw.get()).map_err(|err| {
            GatewayError::invalid_param("thinking", format!("`thinking` is not valid: {err}."))
        })?;
        let enabled = thinking.kind != "disabled";
        return Ok(Some(ThinkingConfig {
            include_thoughts: Some(enabled),
            thinking_budget: Some(if enabled {
                thinking.budget_tokens.unwrap_or(-1)
            } else {
                0
            }),
            thinking_level: None,
        }));
    }
    let Some(effort) = request.reasoning_effort.as_deref() else {
        return Ok(None);
    };
    if !matches!(
        effort,
        "none" | "minimal" | "low" | "medium" | "high" | "xhigh"
    ) {
        return Err(GatewayError::invalid_param(
            "reasoning_effort",
            format!(
                "`reasoning_effort` must be none, minimal, low, medium or high, got `{effort}`."
            ),
        ));
    }
    let include_thoughts = Some(effort != "none");
    if generation.is_some_and(|major| major >= 3) {
        // Gemini 3 thinks in levels and cannot stop thinking; Pro knows only low and high.
        let pro = model.contains("pro");
        let level = match effort {
            "none" | "minimal" if pro => "low",
            "none" | "minimal" => "minimal",
            "low" => "low",
            "medium" if pro => "high",
            "medium" => "medium",
            _ => "high",
        };
        return Ok(Some(ThinkingConfig {
            include_thoughts,
            thinking_budget: None,
            thinking_level: Some(level),
        }));
    }
    // Gemini 2.5 Pro cannot turn thinking off: its floor is 128 tokens.
    let floor = if model.contains("pro") { 128 } else { 0 };
    let budget = match effort {
        "none" => floor,
        "minimal" => floor.max(512),
        "low" => 1024,
        "medium" => 2048,
        "high" => 4096,
        _ => 8192,
    };
    Ok(Some(ThinkingConfig {
        include_thoughts,
        thinking_budget: Some(budget),
        thinking_level: None,
    }))
}

/// Appends a content, merging it into the previous one when that has the same role.
fn push_content<'a>(contents: &mut Vec<Content<'a>>, role: &'static str, mut parts: Vec<Part<'a>>) {
    if parts.is_empty() {
        return;
    }
    if let Some(last) = contents.last_mut()
        && last.role.as_deref() == Some(role)
    {
        // Function responses lead a user turn, answering the model's calls just before.
        if parts.iter().all(|p| p.function_response.is_some()) {
            let responses = last
                .parts
                .iter()
                .take_while(|p| p.function_response.is_some())
                .count();
            last.parts.splice(responses..responses, parts);
        } else {
            last.parts.append(&mut parts);
        }
        return;
    }
    contents.push(Content {
        role: Some(role.into()),
        parts,
    });
}

fn text_part(text: Cow<'_, str>) -> Part<'_> {
    Part {
        text: Some(text),
        ..Part::default()
    }
}

fn text_parts<'a>(message: &'a ChatMessage<'a>, into: &mut Vec<Part<'a>>) {
    match &message.content {
        Some(TextOr::Text(text)) if !text.is_empty() => into.push(text_part(text.clone())),
        Some(TextOr::List(parts)) => {
            for part in parts.iter().filter(|p| p.kind == "text") {
                if let Some(text) = part.text.as_ref().filter(|t| !t.is_empty()) {
                    into.push(text_part(text.clone()));
                }
            }
        }
        _ => {}
    }
}

fn user_parts<'a>(message: &'a ChatMessage<'a>) -> Result<Vec<Part<'a>>, GatewayError> {
    let mut parts = Vec::new();
    match &message.content {
        None => {}
        Some(TextOr::Text(text)) if !text.is_empty() => parts.push(text_part(text.clone())),
        Some(TextOr::Text(_)) => {}
        Some(TextOr::List(content)) => {
            for part in content {
                if let Some(part) = media_part(part)? {
                    parts.push(part);
                }
            }
        }
    }
    Ok(parts)
}

fn media_part<'a>(part: &'a ContentPart<'a>) -> Result<Option<Part<'a>>, GatewayError> {
    match part.kind.as_ref() {
        "text" => Ok(part
            .text
            .as_ref()
            .filter(|t| !t.is_empty())
            .map(|text| text_part(text.clone()))),
        "image_url" => {
            let Some(image) = &part.image_url else {
                return Err(GatewayError::invalid_param(
                    "messages",
                    "An `image_url` part has no `image_url`.",
                ));
            };
            media_from_url(&image.url, image.format.as_deref()).map(Some)
        }
        "input_audio" => {
            #[derive(serde::Deserialize)]
            struct InputAudio<'a> {
                #[serde(borrow)]
                data: Cow<'a, str>,
                #[serde(borrow)]
                format: Cow<'a, str>,
            }
            let audio: InputAudio<'a> = part
                .input_audio
                .and_then(|raw| serde_json::from_str(raw.get()).ok())
                .ok_or_else(|| {
                    GatewayError::invalid_param(
                        "messages",
                        "An `input_audio` part needs `data` and `format`.",
                    )
                })?;
            let mime_type = match audio.format.as_ref() {
                "mp3" => "audio/mp3".into(),
                format => Cow::Owned(format!("audio/{format}")),
            };
            Ok(Some(Part {
                inline_data: Some(Blob {
                    mime_type,
                    data: audio.data,
                }),
                ..Part::default()
            }))
        }
        "file" => {
            let Some(file) = &part.file else {
                return Err(GatewayError::invalid_param(
                    "messages",
                    "A `file` part has no `file`.",
                ));
            };
            match (&file.file_data, &file.file_id) {
                (Some(data), _) => media_from_url(data, file.format.as_deref()).map(Some),
                (None, Some(id)) => Ok(Some(Part {
                    file_data: Some(FileData {
                        mime_type: file.format.clone(),
                        file_uri: id.clone(),
                    }),
                    ..Part::default()
                })),
                (None, None) => Err(GatewayError::invalid_param(
                    "messages",
                    "A `file` part needs `file_data` or `file_id`.",
                )),
            }
        }
        other => Err(GatewayError::invalid_param(
            "messages",
            format!("Content parts of type `{other}` cannot be sent to Gemini."),
        )),
    }
}

/// `data:` URLs travel inline; `gs://` (Cloud Storage, on Vertex) and Files API URIs by
/// reference. The server fetches http(s) images before translating, so they arrive here as
/// `data:` URLs; one that does not is passed by reference for Gemini to fetch.
fn media_from_url<'a>(
    url: &'a str,
    stated_type: Option<&'a str>,
) -> Result<Part<'a>, GatewayError> {
    if let Some(rest) = url.strip_prefix("data:") {
        let (meta, data) = rest.split_once(',').ok_or_else(|| {
            GatewayError::invalid_param("messages", "A `data:` URL has no `,` before its data.")
        })?;
        let media_type = meta.strip_suffix(";base64").ok_or_else(|| {
            GatewayError::invalid_param("messages", "Only base64 `data:` URLs are supported.")
        })?;
        return Ok(Part {
            inline_data: Some(Blob {
                mime_type: Cow::Borrowed(stated_type.unwrap_or(media_type)),
                data: Cow::Borrowed(data),
            }),
            ..Part::default()
        });
    }
    if ["https://", "http://", "gs://"]
        .iter()
        .any(|scheme| url.starts_with(scheme))
    {
        let mime_type = stated_type
            .map(Cow::Borrowed)
            .or_else(|| mime_type_of(url).map(Cow::Borrowed));
        return Ok(Part {
            file_data: Some(FileData {
                mime_type,
                file_uri: Cow::Borrowed(url),
            }),
            ..Part::default()
        });
    }
    Err(GatewayError::invalid_param(
        "messages",
        "Media URLs must be `data:`, `gs://`, `http://` or `https://` URLs.",
    ))
}

/// The media type a URL's extension names (Gemini wants one with every file reference).
fn mime_type_of(url: &str) -> Option<&'static str> {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let extension = path.rsplit_once('.')?.1.to_ascii_lowercase();
    Some(match extension.as_str() {
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "webp" => "image/webp",
        "gif" => "image/gif",
        "heic" => "image/heic",
        "pdf" => "application/pdf",
        "txt" => "text/plain",
        "mp3" => "audio/mp3",
        "wav" => "audio/wav",
        "flac" => "audio/flac",
        "mp4" => "video/mp4",
        "mov" => "video/mov",
        "webm" => "video/webm",
        _ => return None,
    })
}

/// A tool message as a `functionResponse`. The response must be an object: a JSON object
/// result is sent as is, anything else as `{"content": …}`.
fn function_response<'a>(
    message: &'a ChatMessage<'a>,
    call_names: &HashMap<&str, &'a str>,
    send_id: bool,
) -> Result<Part<'a>, GatewayError> {
    let call_id = message.tool_call_id.as_deref();
    let name = call_id
        .and_then(|id| call_names.get(id).copied())
        .or(message.name.as_deref())
        .ok_or_else(|| {
            GatewayError::invalid_param(
                "messages",
                format!(
                    "The tool message for call `{}` does not follow an assistant message making that call.",
                    call_id.unwrap_or_default()
                ),
            )
        })?;
    let text: Cow<'_, str> = match &message.content {
        None => Cow::Borrowed(""),
        Some(TextOr::Text(text)) => Cow::Borrowed(text.as_ref()),
        Some(TextOr::List(parts)) => Cow::Owned(
            parts
                .iter()
                .filter_map(|part| part.text.as_deref())
                .collect::<Vec<_>>()
                .join(""),
        ),
    };
    let as_object = text
        .trim_start()
        .starts_with('{')
        .then(|| RawValue::from_string(text.clone().into_owned()).ok())
        .flatten();
    let response: Cow<'_, RawValue> = match as_object {
        Some(raw) => Cow::Owned(raw),
        None => content_object(&text),
    };
    Ok(Part {
        function_response: Some(FunctionResponse {
            id: call_id
                .filter(|_| send_id)
                .map(|id| Cow::Borrowed(split_call_id(id).0)),
            name: Cow::Borrowed(name),
            response,
        }),
        ..Part::default()
    })
}

fn content_object(text: &str) -> Cow<'static, RawValue> {
    let json = serde_json::json!({ "content": text }).to_string();
    Cow::Owned(RawValue::from_string(json).expect("serde_json writes valid JSON"))
}

/// An OpenAI tool call id split into Gemini's call id and the thought signature it carries.
pub(crate) fn split_call_id(id: &str) -> (&str, Option<&str>) {
    match id.split_once(THOUGHT_SEPARATOR) {
        Some((id, signature)) => (id, Some(signature).filter(|s| !s.is_empty())),
        None => (id, None),
    }
}

fn model_parts<'a>(
    message: &'a ChatMessage<'a>,
    arguments: &mut std::slice::Iter<'a, Box<RawValue>>,
    gemini_3: bool,
) -> Vec<Part<'a>> {
    let mut parts = Vec::new();
    text_parts(message, &mut parts);
    for call in message.tool_calls.iter().flatten() {
        let args = arguments
            .next()
            .map(|boxed| Cow::Borrowed(&**boxed))
            .unwrap_or_else(|| Cow::Owned(RawValue::from_string("{}".into()).expect("valid")));
        let (id, call_signature) = match call.id.as_deref() {
            Some(id) => split_call_id(id),
            None => ("", None),
        };
        parts.push(Part {
            thought_signature: call_signature.map(Cow::Borrowed),
            function_call: Some(FunctionCall {
                id: (gemini_3 && !id.is_empty()).then_some(Cow::Borrowed(id)),
                name: call.function.name.clone(),
                args,
            }),
            ..Part::default()
        });
    }
    // Gemini 3 refuses a turn whose first call has no signature, as calls made by another
    // model (after a fallback, or in a pasted history) have none. Google's documented value
    // for such turns skips the check.
    if gemini_3
        && let Some(first_call) = parts.iter_mut().find(|p| p.function_call.is_some())
        && first_call.thought_signature.is_none()
    {
        first_call.thought_signature = Some(Cow::Borrowed(SKIP_SIGNATURE_CHECK));
    }
    parts
}

/// `skip_thought_signature_validator`, base64-encoded as the field's bytes type requires.
const SKIP_SIGNATURE_CHECK: &str = "c2tpcF90aG91Z2h0X3NpZ25hdHVyZV92YWxpZGF0b3I=";
