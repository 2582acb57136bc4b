//! Same format on both sides (OpenAI client to OpenAI-compatible provider, Anthropic client to
//! Anthropic): the body travels as the client sent it, with only the edits the gateway must
//! make, spliced in place (no re-serialisation).
//!
//! The edits: `model` becomes the deployment's model name; on OpenAI streams,
//! `stream_options.include_usage` is set so the gateway always learns the token usage; the
//! gateway's own `fallbacks` is taken out.
//!
//! Every request, passthrough or not, is inspected here first: the fields the gateway acts on
//! are read and checked, naming the field when one is wrong.

use std::borrow::Cow;
use std::ops::Range;

use bytes::{Bytes, BytesMut};
use serde_json::value::RawValue;
use tollgate_core::endpoint::Endpoint;
use tollgate_core::error::GatewayError;
use tollgate_wire::openai::{RequestHead, StreamOptions};
use tollgate_wire::raw::{RawField, json_type};

/// What the gateway learned from a request body, with the positions it may edit.
#[derive(Debug)]
pub struct InspectedRequest {
    /// The model (group) the client asked for.
    pub model: String,
    pub stream: bool,
    /// The client asked for the usage chunk itself (`stream_options.include_usage: true`).
    pub client_wants_usage: bool,
    /// The request's own fallback models (`fallbacks`, as LiteLLM takes it), in order.
    pub fallbacks: Option<Vec<String>>,
    /// The end user the request is made for (`user`), when it names one.
    pub end_user: Option<String>,
    /// The request's own tags (`tags`, as LiteLLM takes it), for spend and tag budgets.
    pub tags: Vec<String>,
    /// The most output the request allows: `max_completion_tokens`, else `max_tokens`, else
    /// `max_output_tokens` (Responses), when one is a count.
    pub max_output_tokens: Option<u64>,
    model_span: Range<usize>,
    /// Where `metadata` is, when the request has one (LiteLLM's tags and labels for spend).
    metadata_span: Option<Range<usize>>,
    /// The gateway's own members (`"fallbacks": […]`, `"tags": […]`), key to value, removed
    /// upstream.
    gateway_members: Vec<Range<usize>>,
    /// Where `stream_options` is, when the key exists (even as `null`).
    stream_options_span: Option<Range<usize>>,
    /// Just after the body's opening `{`: where a new key may be inserted.
    insert_at: usize,
}

/// Reads and checks the fields the gateway acts on. Every other field is left for the
/// provider to judge; a wrong one here is a 400 that names it.
/// `metadata.user_id` of an Anthropic request, if it names one.
fn metadata_user(metadata: RawField<'_>) -> Result<Option<String>, GatewayError> {
    #[derive(serde::Deserialize)]
    struct Metadata<'a> {
        #[serde(default, borrow)]
        user_id: Option<Cow<'a, str>>,
    }
    let Some(raw) = metadata.value() else {
        return Ok(None);
    };
    let metadata: Metadata<'_> = serde_json::from_str(raw.get()).map_err(|_| {
        GatewayError::invalid_param(
            "metadata",
            "`metadata` must be an object whose `user_id` is a string.",
        )
    })?;
    Ok(metadata
        .user_id
        .filter(|user| !user.is_empty())
        .map(Cow::into_owned))
}

pub fn inspect_request(endpoint: Endpoint, body: &[u8]) -> Result<InspectedRequest, GatewayError> {
    let Some(open_brace) = body.iter().position(|byte| !byte.is_ascii_whitespace()) else {
        return Err(GatewayError::invalid_request(
            "The request body is empty; expected a JSON object.",
        ));
    };
    if body[open_brace] != b'{' {
        return Err(GatewayError::invalid_request(
            "The request body must be a JSON object.",
        ));
    }
    let head: RequestHead<'_> = serde_json::from_slice(body).map_err(|err| {
        GatewayError::invalid_request(format!("The request body is not valid JSON: {err}."))
            .with_code("invalid_json")
    })?;

    let model_raw = required(head.model, "model")?;
    let model: Cow<'_, str> = serde_json::from_str(model_raw.get()).map_err(|_| {
        GatewayError::invalid_param(
            "model",
            format!("`model` must be a string, got {}.", json_type(model_raw)),
        )
    })?;
    if model.trim().is_empty() {
        return Err(GatewayError::invalid_param(
            "model",
            "`model` must not be empty.",
        ));
    }

    match endpoint {
        Endpoint::ChatCompletions => {
            let messages = required(head.messages, "messages")?;
            if json_type(messages) != "array" {
                return Err(GatewayError::invalid_param(
                    "messages",
                    format!("`messages` must be an array, got {}.", json_type(messages)),
                ));
            }
        }
        Endpoint::Completions => {
            required(head.prompt, "prompt")?;
        }
        Endpoint::Embeddings => {
            required(head.input, "input")?;
        }
        Endpoint::Responses => {
            // `input` may be left out when `previous_response_id` or a prompt supplies it.
            if let Some(input) = head.input.value()
                && !matches!(json_type(input), "string" | "array")
            {
                return Err(GatewayError::invalid_param(
                    "input",
                    format!(
                        "`input` must be a string or an array, got {}.",
                        json_type(input)
                    ),
                ));
            }
        }
        Endpoint::Messages | Endpoint::CountTokens => {
            let messages = required(head.messages, "messages")?;
            if json_type(messages) != "array" {
                return Err(GatewayError::invalid_param(
                    "messages",
                    format!("`messages` must be an array, got {}.", json_type(messages)),
                ));
            }
            if endpoint == Endpoint::Messages {
                let max_tokens = required(head.max_tokens, "max_tokens")?;
                if json_type(max_tokens) != "number" {
                    return Err(GatewayError::invalid_param(
                        "max_tokens",
                        format!(
                            "`max_tokens` must be a number, got {}.",
                            json_type(max_tokens)
                        ),
                    ));
                }
            }
        }
    }

    let stream = match head.stream.value() {
        None => false,
        Some(raw) => match raw.get() {
            "true" => true,
            "false" => false,
            _ => {
                return Err(GatewayError::invalid_param(
                    "stream",
                    format!("`stream` must be a boolean, got {}.", json_type(raw)),
                ));
            }
        },
    };
    if stream && !endpoint.can_stream() {
        return Err(GatewayError::invalid_param(
            "stream",
            "This endpoint does not support streaming.",
        ));
    }

    let client_wants_usage = match head.stream_options.value() {
        None => false,
        Some(raw) => {
            let options: StreamOptions = serde_json::from_str(raw.get()).map_err(|_| {
                GatewayError::invalid_param(
                    "stream_options",
                    "`stream_options` must be an object such as {\"include_usage\": true}.",
                )
            })?;
            options.include_usage == Some(true)
        }
    };

    let fallbacks = match head.fallbacks.value() {
        None => None,
        Some(raw) => Some(request_fallbacks(raw)?),
    };

    let tags = match head.tags.value() {
        None => Vec::new(),
        Some(raw) => serde_json::from_str::<Vec<String>>(raw.get()).map_err(|_| {
            GatewayError::invalid_param(
                "tags",
                format!("`tags` must be a list of strings, got {}.", json_type(raw)),
            )
        })?,
    };

    let end_user = match head.user.value() {
        None => None,
        Some(raw) => match serde_json::from_str::<Cow<'_, str>>(raw.get()) {
            Ok(user) => (!user.is_empty()).then(|| user.into_owned()),
            Err(_) => {
                return Err(GatewayError::invalid_param(
                    "user",
                    format!("`user` must be a string, got {}.", json_type(raw)),
                ));
            }
        },
    };

    // Anthropic's clients name their end user in `metadata.user_id`.
    let end_user = match (end_user, endpoint) {
        (None, Endpoint::Messages | Endpoint::CountTokens) => metadata_user(head.metadata)?,
        (end_user, _) => end_user,
    };

    let max_output_tokens = [
        head.max_completion_tokens,
        head.max_tokens,
        head.max_output_tokens,
    ]
    .iter()
    .find_map(|field| field.value().and_then(|raw| raw.get().parse::<u64>().ok()));

    Ok(InspectedRequest {
        end_user,
        max_output_tokens,
        gateway_members: [head.fallbacks.get(), head.tags.get()]
            .into_iter()
            .flatten()
            .map(|raw| bare_member(body, span(body, raw)))
            .collect(),
        fallbacks,
        tags,
        model_span: span(body, model_raw),
        metadata_span: head.metadata.value().map(|raw| span(body, raw)),
        stream_options_span: head.stream_options.get().map(|raw| span(body, raw)),
        model: model.into_owned(),
        stream,
        client_wants_usage,
        insert_at: open_brace + 1,
    })
}

impl InspectedRequest {
    /// The request's `metadata` as its JSON text, when it has one.
    pub fn metadata<'b>(&self, body: &'b [u8]) -> Option<&'b [u8]> {
        self.metadata_span.clone().map(|range| &body[range])
    }
}

/// The body to send upstream: `model` replaced by `upstream_model`, and on streams
/// `stream_options.include_usage` set when `inject_usage` asks for it. Returns the client's own
/// bytes, uncopied, when nothing needs to change.
pub fn prepare_upstream_body(
    body: &Bytes,
    request: &InspectedRequest,
    upstream_model: &str,
    inject_usage: bool,
) -> Bytes {
    let mut edits: Vec<(Range<usize>, Cow<'_, str>)> = Vec::with_capacity(2);

    if request.model != upstream_model {
        let quoted = serde_json::to_string(upstream_model).expect("a string always serialises");
        edits.push((request.model_span.clone(), Cow::Owned(quoted)));
    }

    if request.stream && inject_usage && !request.client_wants_usage {
        match &request.stream_options_span {
            Some(options_span) => {
                let merged = merge_include_usage(&body[options_span.clone()]);
                edits.push((options_span.clone(), Cow::Owned(merged)));
            }
            None => edits.push((
                request.insert_at..request.insert_at,
                Cow::Borrowed(r#""stream_options":{"include_usage":true},"#),
            )),
        }
    }

    for removal in member_removals(body, &request.gateway_members) {
        edits.push((removal, Cow::Borrowed("")));
    }

    if edits.is_empty() {
        return body.clone();
    }
    // An insertion (an empty range) goes before a removal starting at the same place.
    edits.sort_by_key(|(range, _)| (range.start, range.end));
    let added: usize = edits.iter().map(|(_, text)| text.len()).sum();
    let mut out = BytesMut::with_capacity(body.len() + added);
    let mut copied_to = 0;
    for (range, replacement) in &edits {
        out.extend_from_slice(&body[copied_to..range.start]);
        out.extend_from_slice(replacement.as_bytes());
        copied_to = range.end;
    }
    out.extend_from_slice(&body[copied_to..]);
    out.freeze()
}

/// `stream_options` (an object or `null`) with `include_usage: true`, other keys kept.
fn merge_include_usage(original: &[u8]) -> String {
    let mut options: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(original).unwrap_or_default();
    options.insert("include_usage".into(), serde_json::Value::Bool(true));
    serde_json::Value::Object(options).to_string()
}

/// `fallbacks`: model names, or `{"model": name}` objects (LiteLLM takes both).
fn request_fallbacks(raw: &RawValue) -> Result<Vec<String>, GatewayError> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Entry {
        Name(String),
        Model { model: String },
    }
    let entries: Vec<Entry> = serde_json::from_str(raw.get()).map_err(|_| {
        GatewayError::invalid_param(
            "fallbacks",
            format!(
                "`fallbacks` must be a list of model names (or of {{\"model\": name}} objects), \
                 got {}.",
                json_type(raw)
            ),
        )
    })?;
    Ok(entries
        .into_iter()
        .map(|entry| match entry {
            Entry::Name(name) | Entry::Model { model: name } => name,
        })
        .collect())
}

fn required<'a>(field: RawField<'a>, name: &'static str) -> Result<&'a RawValue, GatewayError> {
    field.value().ok_or_else(|| {
        GatewayError::invalid_param(name, format!("Missing required parameter: `{name}`."))
            .with_code("missing_required_parameter")
    })
}

/// Where `raw` sits inside `body`. `raw` borrows from `body`, so the offset is exact.
fn span(body: &[u8], raw: &RawValue) -> Range<usize> {
    let start = raw.get().as_ptr() as usize - body.as_ptr() as usize;
    debug_assert!(start + raw.get().len() <= body.len());
    start..start + raw.get().len()
}

/// A member's text from its key's opening quote to the end of its `value`.
fn bare_member(body: &[u8], value: Range<usize>) -> Range<usize> {
    let mut start = value.start;
    while start > 0 && (is_json_space(body[start - 1]) || body[start - 1] == b':') {
        start -= 1;
    }
    // The key's closing quote, then its opening one: a key that decodes to a plain name holds
    // no quote of its own.
    start -= 1;
    while start > 0 && body[start - 1] != b'"' {
        start -= 1;
    }
    start - 1..value.end
}

/// What to cut to take `members` (bare, see [`bare_member`]) out of the object and leave it
/// valid JSON: neighbouring members go as one run, and each run takes one comma with it (the
/// one after it, else the one before).
fn member_removals(body: &[u8], members: &[Range<usize>]) -> Vec<Range<usize>> {
    let mut members = members.to_vec();
    members.sort_by_key(|member| member.start);
    let mut runs: Vec<Range<usize>> = Vec::with_capacity(members.len());
    for member in members {
        match runs.last_mut() {
            Some(run) if only_a_comma_between(&body[run.end..member.start]) => run.end = member.end,
            _ => runs.push(member),
        }
    }
    runs.into_iter()
        .map(|run| with_one_comma(body, run))
        .collect()
}

fn only_a_comma_between(text: &[u8]) -> bool {
    let mut commas = 0;
    for &byte in text {
        match byte {
            b',' => commas += 1,
            byte if is_json_space(byte) => {}
            _ => return false,
        }
    }
    commas == 1
}

fn with_one_comma(body: &[u8], run: Range<usize>) -> Range<usize> {
    let mut end = run.end;
    while end < body.len() && is_json_space(body[end]) {
        end += 1;
    }
    if body.get(end) == Some(&b',') {
        return run.start..end + 1;
    }
    let mut before = run.start;
    while before > 0 && is_json_space(body[before - 1]) {
        before -= 1;
    }
    if before > 0 && body[before - 1] == b',' {
        return before - 1..run.end;
    }
    run
}

fn is_json_space(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | b'\r')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edit(body: &str, upstream_model: &str, inject: bool) -> String {
        let body = Bytes::copy_from_slice(body.as_bytes());
        let request = inspect_request(Endpoint::ChatCompletions, &body).unwrap();
        let out = prepare_upstream_body(&body, &request, upstream_model, inject);
        String::from_utf8(out.to_vec()).unwrap()
    }

    #[test]
    fn replaces_only_the_model_and_keeps_every_other_byte() {
        let body = r#"{ "model" : "fast",  "messages":[{"role":"user","content":"hi"}], "x_vendor": {"k": [1, 2.50]} }"#;
        assert_eq!(
            edit(body, "gpt-4o-mini", true),
            r#"{ "model" : "gpt-4o-mini",  "messages":[{"role":"user","content":"hi"}], "x_vendor": {"k": [1, 2.50]} }"#
        );
    }

    #[test]
    fn forwards_the_same_bytes_when_nothing_changes() {
        let body = Bytes::from_static(br#"{"model":"gpt-4o","messages":[]}"#);
        let request = inspect_request(Endpoint::ChatCompletions, &body).unwrap();
        let out = prepare_upstream_body(&body, &request, "gpt-4o", true);
        assert_eq!(out.as_ptr(), body.as_ptr());
    }

    #[test]
    fn injects_include_usage_on_streams() {
        let body = r#"{"model":"m","stream":true,"messages":[]}"#;
        assert_eq!(
            edit(body, "m", true),
            r#"{"stream_options":{"include_usage":true},"model":"m","stream":true,"messages":[]}"#
        );
        let with_options = r#"{"model":"m","stream":true,"stream_options":{"x":1},"messages":[]}"#;
        let edited: serde_json::Value =
            serde_json::from_str(&edit(with_options, "m", true)).unwrap();
        assert_eq!(
            edited["stream_options"],
            serde_json::json!({"x": 1, "include_usage": true})
        );
        let null_options = r#"{"model":"m","stream":true,"stream_options":null,"messages":[]}"#;
        assert_eq!(
            edit(null_options, "m", true),
            r#"{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[]}"#
        );
    }

    #[test]
    fn leaves_streams_alone_when_the_client_asked_for_usage_or_injection_is_off() {
        let asked =
            r#"{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[]}"#;
        assert_eq!(edit(asked, "m", true), asked);
        let body = r#"{"model":"m","stream":true,"messages":[]}"#;
        assert_eq!(edit(body, "m", false), body);
        let not_streaming = r#"{"model":"m","messages":[]}"#;
        assert_eq!(edit(not_streaming, "m", true), not_streaming);
    }

    #[test]
    fn escaped_model_names_are_read_and_written_as_json() {
        let body = r#"{"model":"a\"b\u0041","messages":[]}"#;
        let request = inspect_request(Endpoint::ChatCompletions, body.as_bytes()).unwrap();
        assert_eq!(request.model, "a\"bA");
        assert_eq!(
            edit(body, "x\"y", false),
            r#"{"model":"x\"y","messages":[]}"#
        );
    }

    #[test]
    fn fallbacks_are_read_and_never_forwarded() {
        let cases = [
            (
                r#"{"fallbacks": ["b", {"model": "c"}], "model":"m","messages":[]}"#,
                r#"{ "model":"m","messages":[]}"#,
            ),
            (
                r#"{"model":"m","messages":[] , "fallbacks" :["b","c"] }"#,
                r#"{"model":"m","messages":[]  }"#,
            ),
            (
                r#"{"model":"m","fallbacks":["b","c"],"messages":[]}"#,
                r#"{"model":"m","messages":[]}"#,
            ),
        ];
        for (body, forwarded) in cases {
            let request = inspect_request(Endpoint::ChatCompletions, body.as_bytes()).unwrap();
            assert_eq!(
                request.fallbacks,
                Some(vec!["b".to_owned(), "c".to_owned()])
            );
            assert_eq!(edit(body, "m", false), forwarded);
            serde_json::from_str::<serde_json::Value>(&edit(body, "m", false)).unwrap();
        }
        // With the other edits: the stream-usage insertion and the model swap.
        let first = r#"{"fallbacks":["b"],"model":"m","stream":true,"messages":[]}"#;
        assert_eq!(
            edit(first, "up", true),
            r#"{"stream_options":{"include_usage":true},"model":"up","stream":true,"messages":[]}"#
        );
        let null = r#"{"model":"m","messages":[],"fallbacks":null}"#;
        let request = inspect_request(Endpoint::ChatCompletions, null.as_bytes()).unwrap();
        assert_eq!(request.fallbacks, None);
        assert_eq!(edit(null, "m", false), r#"{"model":"m","messages":[]}"#);

        let wrong = error(
            Endpoint::ChatCompletions,
            r#"{"model":"m","messages":[],"fallbacks":"b"}"#,
        );
        assert_eq!(wrong.param.as_deref(), Some("fallbacks"));
        assert!(wrong.message.contains("got string"));
    }

    #[test]
    fn tags_are_read_and_never_forwarded_beside_fallbacks() {
        let cases = [
            (
                r#"{"model":"m","messages":[],"tags":["a","b"]}"#,
                r#"{"model":"m","messages":[]}"#,
            ),
            (
                r#"{"tags":["a","b"],"model":"m","messages":[]}"#,
                r#"{"model":"m","messages":[]}"#,
            ),
            // Neighbours go together, whichever comes first and wherever they are.
            (
                r#"{"model":"m","messages":[],"fallbacks":["x"], "tags":["a","b"]}"#,
                r#"{"model":"m","messages":[]}"#,
            ),
            (
                r#"{"tags":["a","b"] ,"fallbacks":["x"],"model":"m","messages":[]}"#,
                r#"{"model":"m","messages":[]}"#,
            ),
            (
                r#"{"model":"m","tags":["a","b"],"fallbacks":["x"],"messages":[]}"#,
                r#"{"model":"m","messages":[]}"#,
            ),
            (
                r#"{"tags":["a","b"],"model":"m","messages":[],"fallbacks":["x"]}"#,
                r#"{"model":"m","messages":[]}"#,
            ),
        ];
        for (body, forwarded) in cases {
            let request = inspect_request(Endpoint::ChatCompletions, body.as_bytes()).unwrap();
            assert_eq!(request.tags, vec!["a".to_owned(), "b".to_owned()], "{body}");
            let upstream = edit(body, "m", false);
            assert_eq!(upstream, forwarded, "{body}");
            serde_json::from_str::<serde_json::Value>(&upstream).unwrap();
        }

        let wrong = error(
            Endpoint::ChatCompletions,
            r#"{"model":"m","messages":[],"tags":"a"}"#,
        );
        assert_eq!(wrong.param.as_deref(), Some("tags"));
        assert!(wrong.message.contains("list of strings"));
        let null = r#"{"model":"m","messages":[],"tags":null}"#;
        assert!(
            inspect_request(Endpoint::ChatCompletions, null.as_bytes())
                .unwrap()
                .tags
                .is_empty()
        );
        assert_eq!(edit(null, "m", false), r#"{"model":"m","messages":[]}"#);
    }

    #[test]
    fn the_output_limit_is_read_from_whichever_field_the_api_uses() {
        let limit = |endpoint, body: &str| {
            inspect_request(endpoint, body.as_bytes())
                .unwrap()
                .max_output_tokens
        };
        let chat = Endpoint::ChatCompletions;
        assert_eq!(limit(chat, r#"{"model":"m","messages":[]}"#), None);
        assert_eq!(
            limit(chat, r#"{"model":"m","messages":[],"max_tokens":64}"#),
            Some(64)
        );
        assert_eq!(
            limit(
                chat,
                r#"{"model":"m","messages":[],"max_tokens":64,"max_completion_tokens":32}"#
            ),
            Some(32)
        );
        assert_eq!(
            limit(
                chat,
                r#"{"model":"m","messages":[],"max_completion_tokens":null,"max_tokens":8}"#
            ),
            Some(8)
        );
        assert_eq!(
            limit(
                Endpoint::Responses,
                r#"{"model":"m","input":"hi","max_output_tokens":128}"#
            ),
            Some(128)
        );
    }

    fn error(endpoint: Endpoint, body: &str) -> GatewayError {
        inspect_request(endpoint, body.as_bytes()).unwrap_err()
    }

    #[test]
    fn names_the_field_that_is_missing_or_mistyped() {
        let missing = error(Endpoint::ChatCompletions, r#"{"messages":[]}"#);
        assert_eq!(missing.param.as_deref(), Some("model"));
        assert!(missing.message.contains("`model`"));

        let mistyped = error(Endpoint::ChatCompletions, r#"{"model":7,"messages":[]}"#);
        assert_eq!(mistyped.param.as_deref(), Some("model"));
        assert!(mistyped.message.contains("got number"));

        let stream = error(
            Endpoint::ChatCompletions,
            r#"{"model":"m","messages":[],"stream":"yes"}"#,
        );
        assert_eq!(stream.param.as_deref(), Some("stream"));

        let messages = error(
            Endpoint::ChatCompletions,
            r#"{"model":"m","messages":"hi"}"#,
        );
        assert_eq!(messages.param.as_deref(), Some("messages"));

        let input = error(Endpoint::Embeddings, r#"{"model":"m"}"#);
        assert_eq!(input.param.as_deref(), Some("input"));

        let streamed_embeddings = error(
            Endpoint::Embeddings,
            r#"{"model":"m","input":"x","stream":true}"#,
        );
        assert_eq!(streamed_embeddings.param.as_deref(), Some("stream"));
    }

    #[test]
    fn rejects_bodies_that_are_not_json_objects() {
        assert!(
            error(Endpoint::ChatCompletions, "")
                .message
                .contains("empty")
        );
        assert!(
            error(Endpoint::ChatCompletions, r#"["model"]"#)
                .message
                .contains("JSON object")
        );
        let broken = error(Endpoint::ChatCompletions, r#"{"model":"m","messages":[}"#);
        assert_eq!(broken.code.as_deref(), Some("invalid_json"));
        assert!(broken.message.contains("column"));
    }
}
