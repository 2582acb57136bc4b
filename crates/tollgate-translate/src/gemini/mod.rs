//! Google's Gemini format (the Gemini API, and Gemini models on Vertex AI) as a provider:
//! requests out (`request`), answers and streams back (`response`), the JSON Schema subset
//! it accepts (`schema`), and its error bodies.

pub mod embeddings;
pub mod errors;
pub mod request;
pub mod response;
pub mod schema;

/// Joins a tool call's id and the thought signature it carries (LiteLLM's convention, so
/// conversations move between the two gateways).
pub const THOUGHT_SEPARATOR: &str = "__thought__";

/// The major version in a Gemini model name (`gemini-2.5-flash` → 2), when it has one.
pub fn generation(model: &str) -> Option<u32> {
    let name = model.rsplit('/').next().unwrap_or(model);
    let rest = name.strip_prefix("gemini-")?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::generation;

    #[test]
    fn reads_the_generation_from_model_names() {
        assert_eq!(generation("gemini-2.5-flash"), Some(2));
        assert_eq!(generation("gemini-3-pro-preview"), Some(3));
        assert_eq!(generation("models/gemini-3.1-flash"), Some(3));
        assert_eq!(generation("gemini-10-ultra"), Some(10));
        assert_eq!(generation("gemma-3-27b-it"), None);
    }
}
