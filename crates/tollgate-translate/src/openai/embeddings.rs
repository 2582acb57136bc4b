//! OpenAI's embeddings format on the client side, for providers with their own: reading the
//! request's texts and options, and writing the `list` of embeddings back (as floats, or as
//! base64 little-endian `f32`s, which OpenAI's SDKs ask for by default).

use std::borrow::Cow;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use serde::Serialize;
use tollgate_core::error::GatewayError;
use tollgate_wire::openai::{EmbeddingInput, EmbeddingRequest};

use crate::canonical::TokenUsage;

/// An embeddings request ready for translation: its texts, in order.
pub struct TextEmbeddingRequest<'a> {
    pub request: EmbeddingRequest<'a>,
    pub texts: Vec<Cow<'a, str>>,
}

impl<'a> TextEmbeddingRequest<'a> {
    /// A provider-specific option from the request's extra keys (`task_type`, …), as text.
    pub fn option(&self, names: &[&str]) -> Option<&str> {
        names
            .iter()
            .find_map(|name| self.request.extra.get(*name)?.as_str())
    }

    pub fn wants_base64(&self) -> bool {
        self.request.encoding_format.as_deref() == Some("base64")
    }
}

/// Reads an embeddings request whose input must be text (providers other than OpenAI's
/// cannot take token ids).
pub fn decode_request<'a>(
    body: &'a [u8],
    provider: &str,
) -> Result<TextEmbeddingRequest<'a>, GatewayError> {
    let request: EmbeddingRequest<'a> = serde_json::from_slice(body).map_err(|err| {
        GatewayError::invalid_request(format!(
            "The request body is not a valid embeddings request: {err}."
        ))
    })?;
    let texts = match &request.input {
        EmbeddingInput::Text(text) => vec![text.clone()],
        EmbeddingInput::Texts(texts) => texts.clone(),
        EmbeddingInput::Tokens(_) | EmbeddingInput::TokenLists(_) => {
            return Err(GatewayError::invalid_param(
                "input",
                format!("{provider} embeds text only; `input` holds token ids."),
            ));
        }
    };
    if texts.is_empty() {
        return Err(GatewayError::invalid_param(
            "input",
            "`input` must not be empty.",
        ));
    }
    if let Some(format) = request
        .encoding_format
        .as_deref()
        .filter(|f| !matches!(*f, "float" | "base64"))
    {
        return Err(GatewayError::invalid_param(
            "encoding_format",
            format!("`encoding_format` must be float or base64, got `{format}`."),
        ));
    }
    Ok(TextEmbeddingRequest { request, texts })
}

/// Token count for providers that report none: about four characters a token.
pub fn estimate_tokens(texts: &[Cow<'_, str>]) -> u64 {
    texts
        .iter()
        .map(|text| (text.chars().count() as u64).div_ceil(4))
        .sum()
}

#[derive(Serialize)]
struct ListOut<'a> {
    object: &'static str,
    data: Vec<EmbeddingOut>,
    model: &'a str,
    usage: UsageOut,
}

#[derive(Serialize)]
struct EmbeddingOut {
    object: &'static str,
    index: usize,
    embedding: Vector,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Vector {
    Floats(Vec<f32>),
    Base64(String),
}

#[derive(Serialize)]
struct UsageOut {
    prompt_tokens: u64,
    total_tokens: u64,
}

/// The OpenAI `list` response for `vectors`, in input order.
pub fn encode_response(
    vectors: Vec<Vec<f32>>,
    model: &str,
    usage: TokenUsage,
    base64: bool,
) -> Bytes {
    let data = vectors
        .into_iter()
        .enumerate()
        .map(|(index, vector)| EmbeddingOut {
            object: "embedding",
            index,
            embedding: if base64 {
                let bytes: Vec<u8> = vector.iter().flat_map(|v| v.to_le_bytes()).collect();
                Vector::Base64(STANDARD.encode(bytes))
            } else {
                Vector::Floats(vector)
            },
        })
        .collect();
    let body = ListOut {
        object: "list",
        data,
        model,
        usage: UsageOut {
            prompt_tokens: usage.input,
            total_tokens: usage.input,
        },
    };
    Bytes::from(serde_json::to_vec(&body).expect("embeddings serialise"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_vectors_are_little_endian_f32s() {
        let usage = TokenUsage {
            input: 3,
            ..TokenUsage::default()
        };
        let body = encode_response(vec![vec![1.0, -0.5]], "m", usage, true);
        let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let encoded = value["data"][0]["embedding"].as_str().unwrap();
        let bytes = STANDARD.decode(encoded).unwrap();
        assert_eq!(bytes[..4], 1.0f32.to_le_bytes());
        assert_eq!(bytes[4..], (-0.5f32).to_le_bytes());
        assert_eq!(value["usage"]["prompt_tokens"], 3);
    }

    #[test]
    fn reads_texts_and_provider_options() {
        let request = decode_request(
            br#"{"model":"m","input":["a","b"],"task_type":"RETRIEVAL_QUERY","dimensions":256}"#,
            "Gemini",
        )
        .unwrap();
        assert_eq!(request.texts, ["a", "b"]);
        assert_eq!(request.option(&["task_type"]), Some("RETRIEVAL_QUERY"));
        assert_eq!(request.request.dimensions, Some(256));
    }

    #[test]
    fn token_inputs_are_refused() {
        let err = decode_request(br#"{"model":"m","input":[1,2,3]}"#, "Gemini")
            .err()
            .unwrap();
        assert_eq!(err.param.as_deref(), Some("input"));
    }
}
