//! Gemini answers (`generateContent`, and `streamGenerateContent?alt=sse` chunks) → canonical.
//!
//! - parts marked `thought` are reasoning; a thought signature on a function call travels in
//!   the call's id (`<id>__thought__<signature>`); those on text parts (optional to return)
//!   are not kept;
//! - calls without Gemini's own id (before Gemini 3) get a generated `call_…` id;
//! - `STOP` with function calls is `tool_calls`; safety, recitation and blocklist stops, and a
//!   blocked prompt, are `content_filter`;
//! - usage: output counts thoughts too, as OpenAI's `completion_tokens` do, and the prompt
//!   includes the tool-use prompt, so input + output = Gemini's total.

use std::borrow::Cow;

use bytes::{Bytes, BytesMut};
use tollgate_core::error::GatewayError;
use tollgate_core::ids::new_tool_call_id;
use tollgate_wire::gemini::{
    CalledFunction, Candidate, GenerateContentResponse, ResponsePart, UsageMetadata,
};
use tollgate_wire::raw::JsonStr;

use super::THOUGHT_SEPARATOR;
use crate::canonical::{
    Completion, FinishReason, StreamDecoder, StreamEncoder, StreamEvent, TokenUsage, ToolCallOut,
};
use crate::sse::{EventFramer, event_data};

pub fn finish_reason(reason: &str) -> FinishReason {
    match reason {
        "MAX_TOKENS" => FinishReason::Length,
        "SAFETY"
        | "RECITATION"
        | "LANGUAGE"
        | "BLOCKLIST"
        | "PROHIBITED_CONTENT"
        | "SPII"
        | "IMAGE_SAFETY"
        | "IMAGE_PROHIBITED_CONTENT"
        | "IMAGE_RECITATION"
        | "MODEL_ARMOR" => FinishReason::ContentFilter,
        _ => FinishReason::Stop,
    }
}

pub fn token_usage(usage: &UsageMetadata) -> TokenUsage {
    let input = usage.prompt_token_count + usage.tool_use_prompt_token_count;
    // The Gemini API counts thoughts apart from candidates; some Vertex answers include them.
    let thoughts_apart = usage.total_token_count == 0
        || input + usage.candidates_token_count + usage.thoughts_token_count
            == usage.total_token_count;
    let output = if thoughts_apart {
        usage.candidates_token_count + usage.thoughts_token_count
    } else {
        usage.candidates_token_count
    };
    TokenUsage {
        input,
        output,
        cache_read: usage.cached_content_token_count,
        cache_write: 0,
        cache_write_1h: 0,
        reasoning: usage.thoughts_token_count,
    }
}

/// The OpenAI tool call id for a Gemini call: Gemini's id (or a new one), with the part's
/// thought signature appended so it returns with the call.
fn tool_call_id(call: &CalledFunction<'_>, signature: Option<&str>) -> String {
    let mut id = match call.id.as_deref().filter(|id| !id.is_empty()) {
        Some(id) => id.to_owned(),
        None => new_tool_call_id(),
    };
    if let Some(signature) = signature.filter(|s| !s.is_empty()) {
        id.push_str(THOUGHT_SEPARATOR);
        id.push_str(signature);
    }
    id
}

fn arguments<'a>(call: &CalledFunction<'a>) -> &'a str {
    call.args.map(|raw| raw.get()).unwrap_or("{}")
}

fn unreadable(err: serde_json::Error) -> GatewayError {
    GatewayError::upstream_unreachable(format!("Gemini's response could not be read: {err}."))
}

/// `countTokens`' answer: the prompt's `totalTokens`.
pub fn decode_token_count(body: &[u8]) -> Result<u64, GatewayError> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Counted {
        total_tokens: u64,
    }
    let counted: Counted = serde_json::from_slice(body).map_err(unreadable)?;
    Ok(counted.total_tokens)
}

pub fn decode_response<'a>(
    body: &'a [u8],
    fallback_model: &'a str,
) -> Result<Completion<'a>, GatewayError> {
    let response: GenerateContentResponse<'a> = serde_json::from_slice(body).map_err(unreadable)?;
    let mut completion = Completion {
        id: response.response_id.unwrap_or_else(|| {
            Cow::Owned(format!("chatcmpl-{}", tollgate_core::ids::new_request_id()))
        }),
        model: response
            .model_version
            .unwrap_or(Cow::Borrowed(fallback_model)),
        usage: response.usage_metadata.as_ref().map(token_usage),
        ..Completion::default()
    };
    let Some(candidate) = response.candidates.into_iter().next() else {
        // No candidate: the prompt itself was blocked.
        completion.finish_reason = Some(if response.prompt_feedback.is_some() {
            FinishReason::ContentFilter
        } else {
            FinishReason::Stop
        });
        return Ok(completion);
    };
    let Candidate {
        content,
        finish_reason: reason,
        ..
    } = candidate;
    let mut text = String::new();
    let mut reasoning = String::new();
    for part in content.map(|c| c.parts).unwrap_or_default() {
        let ResponsePart {
            text: part_text,
            thought,
            thought_signature,
            function_call,
            ..
        } = part;
        if let Some(call) = function_call {
            completion.tool_calls.push(ToolCallOut {
                id: Cow::Owned(tool_call_id(&call, thought_signature.as_deref())),
                arguments: Cow::Owned(arguments(&call).to_owned()),
                name: call.name,
            });
            continue;
        }
        let part_text: Cow<'_, str> = match part_text {
            Some(raw) => serde_json::from_str(raw.get()).map_err(unreadable)?,
            None => Cow::Borrowed(""),
        };
        if thought == Some(true) {
            reasoning.push_str(&part_text);
        } else {
            text.push_str(&part_text);
        }
    }
    let reason = reason.as_deref().map(finish_reason);
    completion.finish_reason = Some(match reason {
        Some(FinishReason::Stop) | None if !completion.tool_calls.is_empty() => {
            FinishReason::ToolCalls
        }
        Some(reason) => reason,
        None => FinishReason::Stop,
    });
    let filtered = completion.finish_reason == Some(FinishReason::ContentFilter);
    completion.text = (!text.is_empty() || (completion.tool_calls.is_empty() && !filtered))
        .then_some(Cow::Owned(text));
    completion.reasoning = (!reasoning.is_empty()).then_some(Cow::Owned(reasoning));
    Ok(completion)
}

/// Gemini's SSE chunks → canonical events. Each chunk holds only what is new; the finish
/// reason and final usage are sent once the body ends (Gemini has no end marker).
pub struct GeminiDecoder {
    fallback_model: String,
    events: EventFramer,
    started: bool,
    tools: usize,
    finish: Option<FinishReason>,
    usage: Option<UsageMetadata>,
}

impl GeminiDecoder {
    pub fn new(fallback_model: &str) -> Self {
        GeminiDecoder {
            fallback_model: fallback_model.to_owned(),
            events: EventFramer::default(),
            started: false,
            tools: 0,
            finish: None,
            usage: None,
        }
    }

    fn event(
        &mut self,
        event: &[u8],
        encoder: &mut dyn StreamEncoder,
        out: &mut BytesMut,
    ) -> Result<(), GatewayError> {
        let Some(data) = event_data(event) else {
            return Ok(());
        };
        let chunk: GenerateContentResponse<'_> =
            serde_json::from_slice(&data).map_err(unreadable)?;
        if chunk.error.is_some() {
            return Err(super::errors::provider_error(http::StatusCode::OK, &data));
        }
        if !self.started {
            self.started = true;
            let id = chunk.response_id.clone().unwrap_or_else(|| {
                Cow::Owned(format!("chatcmpl-{}", tollgate_core::ids::new_request_id()))
            });
            let model = chunk
                .model_version
                .clone()
                .unwrap_or(Cow::Borrowed(self.fallback_model.as_str()));
            encoder.event(StreamEvent::Start { id, model }, out);
        }
        if let Some(usage) = chunk.usage_metadata {
            self.usage = Some(usage);
        }
        if chunk.candidates.is_empty()
            && chunk
                .prompt_feedback
                .as_ref()
                .is_some_and(|feedback| feedback.block_reason.is_some())
        {
            self.finish = Some(FinishReason::ContentFilter);
        }
        for candidate in chunk.candidates.into_iter().filter(|c| c.index == 0) {
            for part in candidate.content.map(|c| c.parts).unwrap_or_default() {
                if let Some(call) = &part.function_call {
                    let index = self.tools;
                    self.tools += 1;
                    let id = tool_call_id(call, part.thought_signature.as_deref());
                    encoder.event(
                        StreamEvent::ToolCallStart {
                            index,
                            id: Cow::Owned(id),
                            name: call.name.clone(),
                        },
                        out,
                    );
                    encoder.event(
                        StreamEvent::ToolCallArguments {
                            index,
                            fragment: JsonStr::from_text(arguments(call)),
                        },
                        out,
                    );
                    continue;
                }
                if let Some(text) = part
                    .text
                    .and_then(JsonStr::from_raw)
                    .filter(|t| !t.is_empty())
                {
                    if part.thought == Some(true) {
                        encoder.event(StreamEvent::Reasoning(text), out);
                    } else {
                        encoder.event(StreamEvent::Text(text), out);
                    }
                }
            }
            if let Some(reason) = candidate.finish_reason.as_deref() {
                self.finish = Some(finish_reason(reason));
            }
        }
        Ok(())
    }
}

impl StreamDecoder for GeminiDecoder {
    fn decode(
        &mut self,
        chunk: Bytes,
        encoder: &mut dyn StreamEncoder,
        out: &mut BytesMut,
    ) -> Result<(), GatewayError> {
        self.events.push(&chunk);
        while let Some(event) = self.events.next_event() {
            self.event(&event, encoder, out)?;
        }
        Ok(())
    }

    fn end(
        &mut self,
        encoder: &mut dyn StreamEncoder,
        out: &mut BytesMut,
    ) -> Result<(), GatewayError> {
        if let Some(rest) = self.events.rest() {
            self.event(&rest, encoder, out)?;
        }
        let Some(finish) = self.finish else {
            return Err(GatewayError::upstream_unreachable(
                "Gemini's stream ended before its final chunk.",
            ));
        };
        let finish = match finish {
            FinishReason::Stop if self.tools > 0 => FinishReason::ToolCalls,
            other => other,
        };
        encoder.event(StreamEvent::Finish(finish), out);
        if let Some(usage) = &self.usage {
            encoder.event(StreamEvent::Usage(token_usage(usage)), out);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_counts_thoughts_as_output_once() {
        let apart = UsageMetadata {
            prompt_token_count: 10,
            candidates_token_count: 5,
            thoughts_token_count: 20,
            total_token_count: 35,
            cached_content_token_count: 4,
            ..UsageMetadata::default()
        };
        let usage = token_usage(&apart);
        assert_eq!(
            (usage.input, usage.output, usage.reasoning, usage.cache_read),
            (10, 25, 20, 4)
        );

        let included = UsageMetadata {
            prompt_token_count: 10,
            candidates_token_count: 25,
            thoughts_token_count: 20,
            total_token_count: 35,
            ..UsageMetadata::default()
        };
        assert_eq!(token_usage(&included).output, 25);
    }
}
