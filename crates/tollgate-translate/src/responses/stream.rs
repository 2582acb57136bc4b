//! Canonical stream events → the Responses API's event stream, in the order OpenAI sends it
//! and its SDKs check: `response.created`, `response.in_progress`, then per output item
//! `output_item.added`, its deltas (`reasoning_summary_text.delta`, `output_text.delta`,
//! `function_call_arguments.delta`) and closing events ending in `output_item.done`, and last
//! `response.completed` carrying the full output and usage. Every event has a
//! `sequence_number` from 0; there is no `[DONE]`.

use bytes::{BufMut, BytesMut};
use serde_json::{Value, json};
use tollgate_core::error::GatewayError;
use tollgate_wire::openai::ThinkingBlock;

use super::request::encode_thinking;
use super::response::{
    ResponseContext, call_item, message_item, new_id, reasoning_item, status_of,
};
use crate::canonical::{FinishReason, StreamEncoder, StreamEvent, TokenUsage, ToolCallOut};

/// Called with the final response object once the stream completes (to store it).
pub type OnComplete = Box<dyn FnOnce(&Value) + Send>;

enum Item {
    Reasoning {
        id: String,
        /// All the item's reasoning text, shown as its summary.
        text: String,
        /// Where the text of the block now being streamed starts: a signature covers only its
        /// own block's text.
        block_start: usize,
        blocks: Vec<ThinkingBlock<'static>>,
    },
    Message {
        id: String,
        text: String,
    },
    Call {
        id: String,
        /// The canonical tool-call index.
        index: usize,
        call_id: String,
        name: String,
        arguments: String,
    },
}

struct Slot {
    item: Item,
    done: Option<Value>,
}

pub struct ResponsesEncoder {
    context: ResponseContext,
    sequence: u64,
    started: bool,
    items: Vec<Slot>,
    /// The item text or reasoning goes to, while it is the latest.
    current: Option<usize>,
    finish: Option<FinishReason>,
    usage: Option<TokenUsage>,
    on_complete: Option<OnComplete>,
}

impl ResponsesEncoder {
    pub fn new(context: ResponseContext, on_complete: Option<OnComplete>) -> Self {
        ResponsesEncoder {
            context,
            sequence: 0,
            started: false,
            items: Vec::new(),
            current: None,
            finish: None,
            usage: None,
            on_complete,
        }
    }

    fn write(&mut self, out: &mut BytesMut, mut event: Value) {
        event["sequence_number"] = self.sequence.into();
        self.sequence += 1;
        let kind = event["type"].as_str().unwrap_or_default().to_owned();
        out.put_slice(b"event: ");
        out.put_slice(kind.as_bytes());
        out.put_slice(b"\ndata: ");
        out.put_slice(event.to_string().as_bytes());
        out.put_slice(b"\n\n");
    }

    fn start(&mut self, out: &mut BytesMut) {
        if self.started {
            return;
        }
        self.started = true;
        let response = self
            .context
            .response_json("in_progress", Vec::new(), None, None, None);
        self.write(
            out,
            json!({"type": "response.created", "response": response}),
        );
        let response = self
            .context
            .response_json("in_progress", Vec::new(), None, None, None);
        self.write(
            out,
            json!({"type": "response.in_progress", "response": response}),
        );
    }

    /// Opens a new output item (after closing the text or reasoning item in progress).
    fn open(&mut self, item: Item, out: &mut BytesMut) -> usize {
        self.start(out);
        self.close_current(out);
        let index = self.items.len();
        let added = match &item {
            Item::Reasoning { id, .. } => json!({"id": id, "type": "reasoning", "summary": []}),
            Item::Message { id, .. } => {
                json!({"id": id, "type": "message", "status": "in_progress",
                                               "role": "assistant", "content": []})
            }
            Item::Call {
                id, call_id, name, ..
            } => {
                let call = ToolCallOut {
                    id: call_id.clone().into(),
                    name: name.clone().into(),
                    arguments: "".into(),
                };
                call_item(&self.context.plan, id, &call, "in_progress")
            }
        };
        self.write(
            out,
            json!({"type": "response.output_item.added", "output_index": index, "item": added}),
        );
        match &item {
            Item::Reasoning { id, .. } => self.write(out, json!({"type": "response.reasoning_summary_part.added",
                "item_id": id, "output_index": index, "summary_index": 0, "part": {"type": "summary_text", "text": ""}})),
            Item::Message { id, .. } => self.write(out, json!({"type": "response.content_part.added",
                "item_id": id, "output_index": index, "content_index": 0,
                "part": {"type": "output_text", "text": "", "annotations": [], "logprobs": []}})),
            Item::Call { .. } => {}
        }
        self.items.push(Slot { item, done: None });
        index
    }

    fn close_current(&mut self, out: &mut BytesMut) {
        if let Some(index) = self.current.take() {
            self.close(index, out);
        }
    }

    fn close(&mut self, index: usize, out: &mut BytesMut) {
        if self.items[index].done.is_some() {
            return;
        }
        let (events, done) = match &self.items[index].item {
            Item::Reasoning {
                id, text, blocks, ..
            } => {
                let done = reasoning_item(id, text, encode_thinking(blocks));
                let events = vec![
                    json!({"type": "response.reasoning_summary_text.done", "item_id": id, "output_index": index,
                           "summary_index": 0, "text": text}),
                    json!({"type": "response.reasoning_summary_part.done", "item_id": id, "output_index": index,
                           "summary_index": 0, "part": {"type": "summary_text", "text": text}}),
                ];
                (events, done)
            }
            Item::Message { id, text } => {
                let done = message_item(id, text, "completed");
                let events = vec![
                    json!({"type": "response.output_text.done", "item_id": id, "output_index": index,
                           "content_index": 0, "text": text, "logprobs": []}),
                    json!({"type": "response.content_part.done", "item_id": id, "output_index": index,
                           "content_index": 0, "part": {"type": "output_text", "text": text, "annotations": [], "logprobs": []}}),
                ];
                (events, done)
            }
            Item::Call {
                id,
                call_id,
                name,
                arguments,
                ..
            } => {
                let arguments = if arguments.is_empty() {
                    "{}".to_owned()
                } else {
                    arguments.clone()
                };
                let call = ToolCallOut {
                    id: call_id.clone().into(),
                    name: name.clone().into(),
                    arguments: arguments.clone().into(),
                };
                let done = call_item(&self.context.plan, id, &call, "completed");
                let events = if done["type"] == "function_call" {
                    vec![
                        json!({"type": "response.function_call_arguments.done", "item_id": id,
                                "output_index": index, "name": name, "arguments": arguments}),
                    ]
                } else {
                    vec![
                        json!({"type": "response.custom_tool_call_input.done", "item_id": id,
                                "output_index": index, "input": done["input"]}),
                    ]
                };
                (events, done)
            }
        };
        for event in events {
            self.write(out, event);
        }
        self.write(
            out,
            json!({"type": "response.output_item.done", "output_index": index, "item": done}),
        );
        self.items[index].done = Some(done);
    }

    /// The open reasoning item, opened if the latest item is something else.
    fn reasoning(&mut self, out: &mut BytesMut) -> usize {
        match self.current {
            Some(index) if matches!(self.items[index].item, Item::Reasoning { .. }) => index,
            _ => {
                let item = Item::Reasoning {
                    id: new_id("rs"),
                    text: String::new(),
                    block_start: 0,
                    blocks: Vec::new(),
                };
                let index = self.open(item, out);
                self.current = Some(index);
                index
            }
        }
    }
}

impl StreamEncoder for ResponsesEncoder {
    fn event(&mut self, event: StreamEvent<'_>, out: &mut BytesMut) {
        match event {
            StreamEvent::Start { .. } => self.start(out),
            StreamEvent::Reasoning(text) => {
                let index = self.reasoning(out);
                let decoded = text.decode();
                let Item::Reasoning {
                    id, text: so_far, ..
                } = &mut self.items[index].item
                else {
                    return;
                };
                so_far.push_str(&decoded);
                let id = id.clone();
                self.write(out, json!({"type": "response.reasoning_summary_text.delta", "item_id": id,
                                       "output_index": index, "summary_index": 0, "delta": decoded}));
            }
            StreamEvent::ReasoningSignature(signature) => {
                let index = self.reasoning(out);
                if let Item::Reasoning {
                    text,
                    block_start,
                    blocks,
                    ..
                } = &mut self.items[index].item
                {
                    let own = text[*block_start..].to_owned();
                    *block_start = text.len();
                    blocks.push(ThinkingBlock {
                        kind: "thinking".into(),
                        thinking: Some(own.into()),
                        signature: Some(signature.decode().into_owned().into()),
                        data: None,
                    });
                }
            }
            StreamEvent::RedactedReasoning(data) => {
                let index = self.reasoning(out);
                if let Item::Reasoning { blocks, .. } = &mut self.items[index].item {
                    blocks.push(ThinkingBlock {
                        kind: "redacted_thinking".into(),
                        thinking: None,
                        signature: None,
                        data: Some(data.decode().into_owned().into()),
                    });
                }
            }
            StreamEvent::Text(text) => {
                let index = match self.current {
                    Some(index) if matches!(self.items[index].item, Item::Message { .. }) => index,
                    _ => {
                        let item = Item::Message {
                            id: new_id("msg"),
                            text: String::new(),
                        };
                        let index = self.open(item, out);
                        self.current = Some(index);
                        index
                    }
                };
                let decoded = text.decode();
                let Item::Message { id, text: so_far } = &mut self.items[index].item else {
                    return;
                };
                so_far.push_str(&decoded);
                let id = id.clone();
                self.write(out, json!({"type": "response.output_text.delta", "item_id": id, "output_index": index,
                                       "content_index": 0, "delta": decoded, "logprobs": []}));
            }
            StreamEvent::ToolCallStart { index, id, name } => {
                // Some servers repeat a call's id and name on later chunks: still one call.
                let open = self.items.iter().any(|slot| {
                    matches!(slot.item, Item::Call { index: call, .. } if call == index)
                        && slot.done.is_none()
                });
                if open {
                    return;
                }
                let item = Item::Call {
                    id: new_id("fc"),
                    index,
                    call_id: id.into_owned(),
                    name: name.into_owned(),
                    arguments: String::new(),
                };
                self.open(item, out);
            }
            StreamEvent::ToolCallArguments { index, fragment } => {
                let slot = self.items.iter().position(|slot| {
                    matches!(slot.item, Item::Call { index: call, .. } if call == index)
                        && slot.done.is_none()
                });
                let Some(position) = slot else {
                    return;
                };
                let decoded = fragment.decode();
                let custom = {
                    let Item::Call {
                        arguments, name, ..
                    } = &mut self.items[position].item
                    else {
                        return;
                    };
                    arguments.push_str(&decoded);
                    self.context.plan.custom_tools.contains(name.as_str())
                };
                // A custom tool's input is only whole once its arguments are.
                if !custom && let Item::Call { id, .. } = &self.items[position].item {
                    let id = id.clone();
                    self.write(
                        out,
                        json!({"type": "response.function_call_arguments.delta", "item_id": id,
                                           "output_index": position, "delta": decoded}),
                    );
                }
            }
            StreamEvent::Finish(reason) => self.finish = Some(reason),
            StreamEvent::Usage(usage) => self.usage = Some(usage),
        }
    }

    fn finish(&mut self, out: &mut BytesMut) {
        self.start(out);
        for index in 0..self.items.len() {
            self.close(index, out);
        }
        let output: Vec<Value> = self
            .items
            .iter()
            .filter_map(|slot| slot.done.clone())
            .collect();
        let (status, reason) = status_of(self.finish);
        let usage = self.usage.unwrap_or_default();
        let response = self
            .context
            .response_json(status, output, Some(&usage), reason, None);
        if let Some(on_complete) = self.on_complete.take() {
            on_complete(&response);
        }
        self.write(
            out,
            json!({"type": "response.completed", "response": response}),
        );
    }

    fn error(&mut self, err: &GatewayError, out: &mut BytesMut) {
        self.start(out);
        let code = err.code.as_deref().unwrap_or(err.kind.as_str()).to_owned();
        self.write(
            out,
            json!({"type": "error", "code": code, "message": err.message, "param": err.param}),
        );
        let error = json!({"code": code, "message": err.message});
        let output: Vec<Value> = self
            .items
            .iter()
            .filter_map(|slot| slot.done.clone())
            .collect();
        let response =
            self.context
                .response_json("failed", output, self.usage.as_ref(), None, Some(error));
        self.write(
            out,
            json!({"type": "response.failed", "response": response}),
        );
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;
    use std::sync::{Arc, Mutex};

    use tollgate_wire::raw::JsonStr;

    use super::*;
    use crate::responses::request::{Plan, decode_thinking};

    /// Runs `events` through an encoder; returns the stream's completed response.
    fn completed(events: Vec<StreamEvent<'static>>) -> Value {
        let context = ResponseContext {
            id: "resp_test".to_owned(),
            created_at: 1,
            model: "m".to_owned(),
            echo: serde_json::Map::new(),
            plan: Plan::default(),
        };
        let saved = Arc::new(Mutex::new(Value::Null));
        let sink = saved.clone();
        let on_complete: OnComplete =
            Box::new(move |response| *sink.lock().unwrap() = response.clone());
        let mut encoder = ResponsesEncoder::new(context, Some(on_complete));
        let mut out = BytesMut::new();
        for event in events {
            encoder.event(event, &mut out);
        }
        encoder.finish(&mut out);
        saved.lock().unwrap().clone()
    }

    fn start() -> StreamEvent<'static> {
        StreamEvent::Start {
            id: Cow::Borrowed("x"),
            model: Cow::Borrowed("m"),
        }
    }

    #[test]
    fn a_repeated_call_start_does_not_open_a_second_call() {
        let call_start = || StreamEvent::ToolCallStart {
            index: 0,
            id: Cow::Borrowed("call_1"),
            name: Cow::Borrowed("get_weather"),
        };
        let arguments = |fragment: &str| StreamEvent::ToolCallArguments {
            index: 0,
            fragment: JsonStr::from_text(fragment),
        };
        let response = completed(vec![
            start(),
            call_start(),
            arguments("{\"city\":"),
            call_start(),
            arguments("\"Oslo\"}"),
            StreamEvent::Finish(FinishReason::ToolCalls),
        ]);
        let output = response["output"].as_array().unwrap();
        assert_eq!(output.len(), 1, "{response}");
        assert_eq!(output[0]["arguments"], "{\"city\":\"Oslo\"}");
    }

    #[test]
    fn each_thinking_block_keeps_only_its_own_text_under_its_signature() {
        let response = completed(vec![
            start(),
            StreamEvent::Reasoning(JsonStr::from_text("first ")),
            StreamEvent::ReasoningSignature(JsonStr::from_text("sig-1")),
            StreamEvent::Reasoning(JsonStr::from_text("second")),
            StreamEvent::ReasoningSignature(JsonStr::from_text("sig-2")),
            StreamEvent::Text(JsonStr::from_text("answer")),
            StreamEvent::Finish(FinishReason::Stop),
        ]);
        let reasoning = &response["output"][0];
        assert_eq!(reasoning["summary"][0]["text"], "first second");
        let blocks = decode_thinking(reasoning["encrypted_content"].as_str().unwrap()).unwrap();
        let texts: Vec<_> = blocks
            .iter()
            .map(|block| {
                (
                    block.thinking.as_deref().unwrap(),
                    block.signature.as_deref().unwrap(),
                )
            })
            .collect();
        assert_eq!(texts, [("first ", "sig-1"), ("second", "sig-2")]);
        assert_eq!(response["output"][1]["content"][0]["text"], "answer");
    }
}
