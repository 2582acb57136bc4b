//! A Responses API request (Codex CLI, the `openai` SDK's `responses.create`) → the canonical
//! chat request, for providers without the Responses API.
//!
//! Choices made where the APIs differ (also in docs/providers.md):
//! - `instructions` is the first system message; earlier turns (from `previous_response_id`)
//!   come before this request's input, their instructions left out, as OpenAI does.
//! - consecutive `function_call` items form one assistant message with several tool calls;
//!   `function_call_output` items are tool messages.
//! - `custom` tools (free-form input, e.g. Codex's `apply_patch`) become function tools taking
//!   one string, `input`; their calls go back out as `custom_tool_call` items.
//! - hosted tools (`web_search`, `file_search`, `code_interpreter`, `computer_use_preview`,
//!   `local_shell`, …) run on OpenAI's side and have no chat equivalent: each is a 400 naming
//!   it and the provider, or left out with `drop_params` — but `web_search`, which becomes
//!   the provider's own search where it has one (`ParamPolicy::web_search`).
//! - reasoning items the gateway produced carry the provider's signed thinking blocks in
//!   `encrypted_content`; sent back, they are restored onto the next assistant turn so
//!   reasoning models (Claude) can continue a tool-use turn.

use std::borrow::Cow;
use std::collections::HashSet;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::value::RawValue;
use tollgate_core::error::GatewayError;
use tollgate_wire::openai::{
    ChatMessage, ChatRequest, ChatTool, ContentPart as ChatPart, FilePart, FunctionCall,
    FunctionDefinition, ImageUrl, JsonSchemaFormat, ResponseFormat, ThinkingBlock, ToolCall,
    ToolChoice,
};
use tollgate_wire::raw::TextOr;
use tollgate_wire::responses::{ContentPart, InputItem, ResponsesRequest};

use crate::params::{ParamPolicy, ask_for_web_search};

/// Prefix of the `encrypted_content` the gateway writes into reasoning items.
pub const REASONING_PREFIX: &str = "tollgate.v1.";

/// The one-string parameters a custom tool gets as a function.
static CUSTOM_TOOL_SCHEMA: &str = r#"{"type":"object","properties":{"input":{"type":"string","description":"The tool's input, as free-form text."}},"required":["input"]}"#;

/// What the answer's translation needs to know about the request.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Tools declared as `custom`: their calls are `custom_tool_call` items.
    pub custom_tools: HashSet<String>,
}

/// The canonical request for a Responses request. `history` holds the items of the earlier
/// turns (`previous_response_id`), oldest first; `policy` is the deployment's, for the tools
/// no chat provider has.
pub fn to_chat_request<'a>(
    request: &'a ResponsesRequest<'a>,
    history: &'a [InputItem<'a>],
    policy: &ParamPolicy,
) -> Result<(ChatRequest<'a>, Plan), GatewayError> {
    let mut plan = Plan::default();
    let mut messages: Vec<ChatMessage<'a>> = Vec::new();
    if let Some(instructions) = request.instructions.as_ref().filter(|i| !i.is_empty()) {
        messages.push(ChatMessage {
            role: "system".into(),
            content: Some(TextOr::Text(instructions.clone())),
            ..ChatMessage::default()
        });
    }
    let mut builder = MessageBuilder {
        messages,
        pending_thinking: Vec::new(),
    };
    for item in history {
        builder.item(item)?;
    }
    match &request.input {
        None => {}
        Some(TextOr::Text(text)) => builder.messages.push(ChatMessage {
            role: "user".into(),
            content: Some(TextOr::Text(text.clone())),
            ..ChatMessage::default()
        }),
        Some(TextOr::List(items)) => {
            for item in items {
                builder.item(item)?;
            }
        }
    }

    let mut tools: Vec<ChatTool<'a>> = Vec::new();
    let mut searches = false;
    for tool in &request.tools {
        match tool.kind.as_ref() {
            "function" => {
                let name = tool.name.clone().ok_or_else(|| {
                    GatewayError::invalid_param("tools", "A function tool has no `name`.")
                })?;
                tools.push(ChatTool {
                    kind: "function".into(),
                    function: FunctionDefinition {
                        name,
                        description: tool.description.clone(),
                        parameters: tool.parameters,
                        // Chat's default; the Responses default (true) needs a schema chat
                        // providers may not accept.
                        strict: tool.strict.filter(|strict| *strict),
                    },
                    cache_control: None,
                });
            }
            "custom" => {
                let name = tool.name.clone().ok_or_else(|| {
                    GatewayError::invalid_param("tools", "A custom tool has no `name`.")
                })?;
                plan.custom_tools.insert(name.to_string());
                let mut description = tool.description.clone().unwrap_or_default().into_owned();
                if let Some(format) = tool.format {
                    description.push_str("\n\nThe input must follow this format: ");
                    description.push_str(format.get());
                }
                tools.push(ChatTool {
                    kind: "function".into(),
                    function: FunctionDefinition {
                        name,
                        description: Some(Cow::Owned(description)),
                        parameters: Some(raw_static(CUSTOM_TOOL_SCHEMA)),
                        strict: None,
                    },
                    cache_control: None,
                });
            }
            search if search.starts_with("web_search") => {
                searches |= policy.web_search_tool(&format!("The hosted tool `{search}`"))?;
            }
            // Hosted tools run on OpenAI's side; a bridged provider has none of them.
            hosted => policy.unsupported_form("tools", &format!("The hosted tool `{hosted}`"))?,
        }
    }

    // Only hosted tools were offered (and dropped): nothing is left to choose from.
    let tool_choice = match request.tool_choice {
        Some(raw) if !tools.is_empty() => tool_choice(raw)?,
        _ => None,
    };

    let response_format = match request.text.as_ref().and_then(|text| text.format.as_ref()) {
        None => None,
        Some(format) => match format.kind.as_ref() {
            "text" => None,
            "json_object" => Some(ResponseFormat {
                kind: "json_object".into(),
                json_schema: None,
            }),
            "json_schema" => Some(ResponseFormat {
                kind: "json_schema".into(),
                json_schema: Some(JsonSchemaFormat {
                    name: format.name.clone().unwrap_or(Cow::Borrowed("response")),
                    description: format.description.clone(),
                    schema: format.schema,
                    strict: format.strict,
                }),
            }),
            other => {
                return Err(GatewayError::invalid_param(
                    "text",
                    format!("Unknown `text.format` type `{other}`."),
                ));
            }
        },
    };

    let mut chat = ChatRequest {
        model: request.model.clone(),
        messages: builder.finish(),
        stream: request.stream,
        max_completion_tokens: request.max_output_tokens,
        temperature: request.temperature,
        top_p: request.top_p,
        tools: (!tools.is_empty()).then_some(tools),
        tool_choice,
        parallel_tool_calls: request.parallel_tool_calls,
        // Codex sets `parallel_tool_calls: false` on its own for every model it has no
        // metadata for; refusing it on a bridged provider that cannot honour it would make
        // Codex unusable there without `drop_params`. The bridge is a translation, like
        // Anthropic's `disable_parallel_tool_use`, so it is dropped the same way.
        parallel_tool_calls_derived: true,
        response_format,
        reasoning_effort: request
            .reasoning
            .as_ref()
            .and_then(|reasoning| reasoning.effort.clone()),
        user: request.user.clone(),
        ..ChatRequest::default()
    };
    if searches {
        ask_for_web_search(&mut chat);
    }
    Ok((chat, plan))
}

fn raw_static(json: &'static str) -> &'static RawValue {
    serde_json::from_str(json).expect("a valid static schema")
}

/// `tool_choice`: a mode, `{type: "function" | "custom", name}`, or a hosted tool type.
fn tool_choice<'a>(raw: &'a RawValue) -> Result<Option<ToolChoice<'a>>, GatewayError> {
    #[derive(serde::Deserialize)]
    struct Named<'a> {
        #[serde(rename = "type", borrow)]
        kind: Cow<'a, str>,
        #[serde(default, borrow)]
        name: Option<Cow<'a, str>>,
        #[serde(default, borrow)]
        mode: Option<Cow<'a, str>>,
    }
    if let Ok(mode) = serde_json::from_str::<Cow<'a, str>>(raw.get()) {
        return Ok(Some(ToolChoice::Mode(mode)));
    }
    let named: Named<'a> = serde_json::from_str(raw.get()).map_err(|_| {
        GatewayError::invalid_param(
            "tool_choice",
            "`tool_choice` must be a mode or an object with a `type`.",
        )
    })?;
    Ok(match (named.kind.as_ref(), named.name) {
        ("function" | "custom", Some(name)) => Some(ToolChoice::Function(name)),
        // `allowed_tools` keeps its mode; the tool list itself is not narrowed.
        ("allowed_tools", _) => named.mode.map(ToolChoice::Mode),
        // A hosted tool the bridged provider does not have.
        _ => None,
    })
}

struct MessageBuilder<'a> {
    messages: Vec<ChatMessage<'a>>,
    /// Thinking blocks from a reasoning item, for the next assistant turn.
    pending_thinking: Vec<ThinkingBlock<'a>>,
}

impl<'a> MessageBuilder<'a> {
    fn item(&mut self, item: &'a InputItem<'a>) -> Result<(), GatewayError> {
        let kind = item.kind.as_deref().unwrap_or("message");
        match kind {
            "message" => self.message(item),
            "function_call" | "custom_tool_call" => {
                let call_id = item
                    .call_id
                    .clone()
                    .or_else(|| item.id.clone())
                    .ok_or_else(|| {
                        GatewayError::invalid_param(
                            "input",
                            format!("A `{kind}` item has no `call_id`."),
                        )
                    })?;
                let name = item.name.clone().ok_or_else(|| {
                    GatewayError::invalid_param("input", format!("A `{kind}` item has no `name`."))
                })?;
                let arguments = if kind == "custom_tool_call" {
                    let input = item.input.as_deref().unwrap_or_default();
                    Cow::Owned(serde_json::json!({ "input": input }).to_string())
                } else {
                    item.arguments.clone().unwrap_or(Cow::Borrowed("{}"))
                };
                let call = ToolCall {
                    id: Some(call_id),
                    kind: Some("function".into()),
                    function: FunctionCall { name, arguments },
                };
                self.assistant_turn()
                    .tool_calls
                    .get_or_insert_with(Vec::new)
                    .push(call);
                Ok(())
            }
            "function_call_output" | "custom_tool_call_output" => {
                let call_id = item.call_id.clone().ok_or_else(|| {
                    GatewayError::invalid_param(
                        "input",
                        format!("A `{kind}` item has no `call_id`."),
                    )
                })?;
                let content = match &item.output {
                    None => TextOr::Text(Cow::Borrowed("")),
                    Some(TextOr::Text(text)) => TextOr::Text(text.clone()),
                    Some(TextOr::List(parts)) => TextOr::List(convert_parts(parts)?),
                };
                self.messages.push(ChatMessage {
                    role: "tool".into(),
                    content: Some(content),
                    tool_call_id: Some(call_id),
                    ..ChatMessage::default()
                });
                Ok(())
            }
            "reasoning" => {
                if let Some(blocks) = item.encrypted_content.as_deref().and_then(decode_thinking) {
                    self.pending_thinking.extend(blocks);
                }
                Ok(())
            }
            // Hosted-tool calls, compaction and other items a chat provider cannot take.
            _ => Ok(()),
        }
    }

    fn message(&mut self, item: &'a InputItem<'a>) -> Result<(), GatewayError> {
        let role = item.role.clone().unwrap_or(Cow::Borrowed("user"));
        let content = match &item.content {
            None => return Ok(()),
            Some(TextOr::Text(text)) => TextOr::Text(text.clone()),
            Some(TextOr::List(parts)) => TextOr::List(convert_parts(parts)?),
        };
        match role.as_ref() {
            "assistant" => {
                let turn = self.assistant_turn();
                turn.content = Some(match (turn.content.take(), content) {
                    (None, content) => content,
                    (Some(earlier), later) => TextOr::List(
                        into_parts(earlier)
                            .into_iter()
                            .chain(into_parts(later))
                            .collect(),
                    ),
                });
            }
            "user" | "system" => self.messages.push(ChatMessage {
                role,
                content: Some(content),
                ..ChatMessage::default()
            }),
            // Chat servers other than OpenAI's do not all know `developer`; it means `system`.
            "developer" => self.messages.push(ChatMessage {
                role: "system".into(),
                content: Some(content),
                ..ChatMessage::default()
            }),
            other => {
                return Err(GatewayError::invalid_param(
                    "input",
                    format!("Unknown message role `{other}`."),
                ));
            }
        }
        Ok(())
    }

    /// The assistant message at the end of the conversation, started if there is none.
    fn assistant_turn(&mut self) -> &mut ChatMessage<'a> {
        let continues = self
            .messages
            .last()
            .is_some_and(|message| message.role == "assistant");
        if !continues {
            self.messages.push(ChatMessage {
                role: "assistant".into(),
                ..ChatMessage::default()
            });
        }
        let turn = self.messages.last_mut().expect("just ensured");
        if !self.pending_thinking.is_empty() {
            turn.thinking_blocks
                .get_or_insert_with(Vec::new)
                .append(&mut self.pending_thinking);
        }
        turn
    }

    /// The messages, with assistant and tool content that is only text as one string: some
    /// chat servers (Groq, DeepSeek) take nothing else there.
    fn finish(mut self) -> Vec<ChatMessage<'a>> {
        for message in &mut self.messages {
            if matches!(message.role.as_ref(), "assistant" | "tool")
                && let Some(TextOr::List(parts)) = &message.content
                && parts.iter().all(|part| part.kind == "text")
            {
                let text: String = parts
                    .iter()
                    .filter_map(|part| part.text.as_deref())
                    .collect::<Vec<_>>()
                    .join("\n");
                message.content = Some(TextOr::Text(Cow::Owned(text)));
            }
        }
        self.messages
    }
}

fn into_parts<'a>(content: TextOr<'a, ChatPart<'a>>) -> Vec<ChatPart<'a>> {
    match content {
        TextOr::Text(text) => vec![ChatPart {
            kind: "text".into(),
            text: Some(text),
            ..ChatPart::default()
        }],
        TextOr::List(parts) => parts,
    }
}

fn convert_parts<'a>(parts: &'a [ContentPart<'a>]) -> Result<Vec<ChatPart<'a>>, GatewayError> {
    let mut out = Vec::with_capacity(parts.len());
    for part in parts {
        match part.kind.as_ref() {
            "input_text" | "output_text" | "text" | "summary_text" => {
                if let Some(text) = &part.text {
                    out.push(ChatPart {
                        kind: "text".into(),
                        text: Some(text.clone()),
                        ..ChatPart::default()
                    });
                }
            }
            "input_image" => {
                let url = part.image_url.clone().ok_or_else(|| {
                    GatewayError::invalid_param(
                        "input",
                        "An `input_image` part needs an `image_url` (uploaded `file_id`s are not supported).",
                    )
                })?;
                out.push(ChatPart {
                    kind: "image_url".into(),
                    image_url: Some(ImageUrl {
                        url,
                        detail: part.detail.clone(),
                        format: None,
                    }),
                    ..ChatPart::default()
                });
            }
            "input_file" if part.file_data.is_none() && part.file_url.is_some() => {
                return Err(GatewayError::invalid_param(
                    "input",
                    "An `input_file` given by `file_url` cannot be sent to this model; send its contents as `file_data`.",
                ));
            }
            "input_file" => out.push(ChatPart {
                kind: "file".into(),
                file: Some(FilePart {
                    file_id: part.file_id.clone(),
                    file_data: part.file_data.clone(),
                    filename: part.filename.clone(),
                    format: None,
                }),
                ..ChatPart::default()
            }),
            // Refusals replayed from earlier answers carry nothing to send back.
            "refusal" => {}
            other => {
                return Err(GatewayError::invalid_param(
                    "input",
                    format!("Content parts of type `{other}` are not supported."),
                ));
            }
        }
    }
    Ok(out)
}

/// The thinking blocks a gateway-written `encrypted_content` carries.
pub fn encode_thinking(blocks: &[ThinkingBlock<'_>]) -> Option<String> {
    if blocks.is_empty() {
        return None;
    }
    let json = serde_json::to_vec(blocks).ok()?;
    Some(format!(
        "{REASONING_PREFIX}{}",
        URL_SAFE_NO_PAD.encode(json)
    ))
}

pub(crate) fn decode_thinking(encrypted: &str) -> Option<Vec<ThinkingBlock<'static>>> {
    let encoded = encrypted.strip_prefix(REASONING_PREFIX)?;
    let json = URL_SAFE_NO_PAD.decode(encoded).ok()?;
    let blocks: Vec<ThinkingBlock<'_>> = serde_json::from_slice(&json).ok()?;
    Some(
        blocks
            .into_iter()
            .map(|block| ThinkingBlock {
                kind: Cow::Owned(block.kind.into_owned()),
                thinking: block.thinking.map(|t| Cow::Owned(t.into_owned())),
                signature: block.signature.map(|s| Cow::Owned(s.into_owned())),
                data: block.data.map(|d| Cow::Owned(d.into_owned())),
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    const STRICT: ParamPolicy = ParamPolicy {
        provider: "gemini",
        drop_unsupported: false,
        web_search: false,
    };

    fn chat_json(request: Value) -> (Value, Plan) {
        let text = request.to_string();
        let request: ResponsesRequest<'_> = serde_json::from_str(&text).unwrap();
        let (chat, plan) = to_chat_request(&request, &[], &STRICT).unwrap();
        (serde_json::to_value(&chat).unwrap(), plan)
    }

    #[test]
    fn hosted_tools_are_refused_naming_their_type_unless_dropped() {
        let text = json!({"model": "m", "input": "hi", "tools": [
            {"type": "function", "name": "get_weather"},
            {"type": "code_interpreter", "container": {"type": "auto"}}
        ]})
        .to_string();
        let request: ResponsesRequest<'_> = serde_json::from_str(&text).unwrap();
        let error = to_chat_request(&request, &[], &STRICT).unwrap_err();
        assert_eq!(error.param.as_deref(), Some("tools"));
        assert_eq!(error.code.as_deref(), Some("unsupported_parameter"));
        assert!(
            error.message.contains("`code_interpreter`") && error.message.contains("gemini"),
            "{}",
            error.message
        );

        let lenient = ParamPolicy {
            drop_unsupported: true,
            ..STRICT
        };
        let (chat, _) = to_chat_request(&request, &[], &lenient).unwrap();
        let tools = chat.tools.unwrap();
        assert_eq!(tools.len(), 1);
        assert_eq!(tools[0].function.name, "get_weather");
    }

    #[test]
    fn codexs_parallel_tool_calls_false_is_dropped_where_it_cannot_be_honoured() {
        let text = json!({"model": "m", "input": "hi", "parallel_tool_calls": false,
                          "tools": [{"type": "function", "name": "get_weather"}]})
        .to_string();
        let request: ResponsesRequest<'_> = serde_json::from_str(&text).unwrap();
        let (mut chat, _) = to_chat_request(&request, &[], &STRICT).unwrap();
        assert_eq!(chat.parallel_tool_calls, Some(false));
        assert!(STRICT.cannot_disable_parallel_tool_calls(&chat).is_ok());
        // Written as a chat parameter, the same value is refused by the same provider.
        chat.parallel_tool_calls_derived = false;
        assert!(STRICT.cannot_disable_parallel_tool_calls(&chat).is_err());
    }

    #[test]
    fn custom_tools_become_one_string_functions_and_their_calls_round_trip() {
        let (chat, plan) = chat_json(json!({
            "model": "m",
            "tools": [{"type": "custom", "name": "apply_patch", "description": "Edit files"}],
            "input": [
                {"type": "message", "role": "user", "content": "fix it"},
                {"type": "custom_tool_call", "call_id": "call_1", "name": "apply_patch", "input": "*** Begin Patch"},
                {"type": "custom_tool_call_output", "call_id": "call_1", "output": "ok"}
            ]
        }));
        assert!(plan.custom_tools.contains("apply_patch"));
        let function = &chat["tools"][0]["function"];
        assert_eq!(function["name"], "apply_patch");
        assert_eq!(
            function["parameters"]["properties"]["input"]["type"],
            "string"
        );
        let call = &chat["messages"][1]["tool_calls"][0];
        assert_eq!(call["id"], "call_1");
        let arguments: Value =
            serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
        assert_eq!(arguments, json!({"input": "*** Begin Patch"}));
        assert_eq!(
            chat["messages"][2],
            json!({"role": "tool", "content": "ok", "tool_call_id": "call_1"})
        );
    }

    #[test]
    fn items_without_call_ids_are_refused_naming_the_input() {
        let text =
            json!({"model": "m", "input": [{"type": "function_call_output", "output": "x"}]})
                .to_string();
        let request: ResponsesRequest<'_> = serde_json::from_str(&text).unwrap();
        let error = to_chat_request(&request, &[], &STRICT).unwrap_err();
        assert_eq!(error.param.as_deref(), Some("input"));
        assert!(error.message.contains("call_id"), "{}", error.message);
    }
}
