//! Prompt token estimates, for providers that cannot count them: OpenAI's `o200k_base`
//! encoding over the prompt's text, with OpenAI's per-message framing. Providers tokenize
//! differently, so this is an estimate — close for English text, within tens of percent for
//! other models' tokenizers.

use tollgate_wire::openai::ChatRequest;
use tollgate_wire::raw::TextOr;

mod o200k;

/// Tokens that frame each message (role and separators), and that prime the reply.
const PER_MESSAGE: u64 = 3;
const REPLY_PRIMING: u64 = 3;
/// An image of unknown size: OpenAI's price of a 1024×1024 image in high detail.
const PER_IMAGE: u64 = 765;

/// A request's prompt, flattened for counting: its text in one string, and what is counted
/// without tokenizing.
#[derive(Debug, Default)]
pub struct PromptText {
    pub text: String,
    pub fixed_tokens: u64,
}

impl PromptText {
    /// Everything the model reads: messages (text, tool calls and results, reasoning) and tool
    /// definitions.
    pub fn of(request: &ChatRequest<'_>) -> PromptText {
        let mut prompt = PromptText {
            fixed_tokens: REPLY_PRIMING,
            ..PromptText::default()
        };
        for message in &request.messages {
            prompt.fixed_tokens += PER_MESSAGE;
            prompt.push(&message.role);
            match &message.content {
                Some(TextOr::Text(text)) => prompt.push(text),
                Some(TextOr::List(parts)) => {
                    for part in parts {
                        if let Some(text) = &part.text {
                            prompt.push(text);
                        }
                        if part.image_url.is_some() {
                            prompt.fixed_tokens += PER_IMAGE;
                        }
                    }
                }
                None => {}
            }
            for call in message.tool_calls.iter().flatten() {
                prompt.push(&call.function.name);
                prompt.push(&call.function.arguments);
            }
            if let Some(reasoning) = &message.reasoning_content {
                prompt.push(reasoning);
            }
            for block in message.thinking_blocks.iter().flatten() {
                if let Some(thinking) = &block.thinking {
                    prompt.push(thinking);
                }
            }
        }
        for tool in request.tools.iter().flatten() {
            prompt.push(&tool.function.name);
            if let Some(description) = &tool.function.description {
                prompt.push(description);
            }
            if let Some(parameters) = tool.function.parameters {
                prompt.push(parameters.get());
            }
        }
        prompt
    }

    fn push(&mut self, text: &str) {
        if !self.text.is_empty() {
            self.text.push('\n');
        }
        self.text.push_str(text);
    }

    /// The estimate. Tokenizing is CPU work proportional to the prompt (and the first call
    /// loads the encoding): run it off the async workers.
    pub fn count(&self) -> u64 {
        self.fixed_tokens + o200k::count(&self.text)
    }
}

/// A text's tokens under the same encoding.
pub fn count_text(text: &str) -> u64 {
    o200k::count(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(json: &str) -> ChatRequest<'_> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn text_is_counted_with_openais_encoding_and_framing() {
        assert_eq!(count_text("Hello, world!"), 4);
        let body = r#"{"model":"m","messages":[{"role":"user","content":"Hello, world!"}]}"#;
        // 3 (priming) + 3 (message) + "user\nHello, world!" (6).
        assert_eq!(PromptText::of(&request(body)).count(), 12);
    }

    #[test]
    fn tools_calls_and_images_add_up() {
        let plain = r#"{"model":"m","messages":[{"role":"user","content":"weather?"}]}"#;
        let rich = r#"{"model":"m","messages":[
            {"role":"user","content":[{"type":"text","text":"weather?"},{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]},
            {"role":"assistant","tool_calls":[{"id":"c1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Oslo\"}"}}]},
            {"role":"tool","tool_call_id":"c1","content":"-3C"}],
            "tools":[{"type":"function","function":{"name":"get_weather","description":"Weather in a city","parameters":{"type":"object"}}}]}"#;
        let plain = PromptText::of(&request(plain)).count();
        let rich = PromptText::of(&request(rich)).count();
        assert!(
            rich > plain + PER_IMAGE + 2 * PER_MESSAGE + 10,
            "{plain} vs {rich}"
        );
    }
}
