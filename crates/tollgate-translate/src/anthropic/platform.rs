//! Claude on Vertex AI and Bedrock take Anthropic's Messages body with differences: no
//! `model` (the URL names it), the platform's `anthropic_version` in the body, no
//! `cache_control.scope`, and only the beta flags each platform knows — an unknown flag is a
//! 400 there, so the rest are dropped. Bedrock also takes no `stream` (the URL decides) and
//! wants the flags in the body (`anthropic_beta`); Vertex takes them as the header.

use bytes::Bytes;
use serde_json::Value;
use tollgate_core::error::GatewayError;

use super::outbound::Flavor;

/// Beta flags Vertex AI accepts for Claude.
const VERTEX_BETAS: &[&str] = &[
    "context-1m-2025-08-07",
    "context-management-2025-06-27",
    "compact-2026-01-12",
    "computer-use-2025-01-24",
    "computer-use-2025-11-24",
    "interleaved-thinking-2025-05-14",
    "web-search-2025-03-05",
    "tool-search-tool-2025-10-19",
];

/// Beta flags Bedrock's InvokeModel accepts for Claude.
const BEDROCK_BETAS: &[&str] = &[
    "computer-use-2025-01-24",
    "computer-use-2025-11-24",
    "context-1m-2025-08-07",
    "context-management-2025-06-27",
    "compact-2026-01-12",
    "effort-2025-11-24",
    "fine-grained-tool-streaming-2025-05-14",
    "tool-search-tool-2025-10-19",
];

/// `anthropic_version` in the body, for the platforms that want it there.
pub(crate) fn api_version(flavor: Flavor) -> Option<&'static str> {
    match flavor {
        Flavor::Anthropic => None,
        Flavor::Vertex => Some("vertex-2023-10-16"),
        Flavor::Bedrock => Some("bedrock-2023-05-31"),
    }
}

/// The flags of an `anthropic-beta` header value the platform accepts, in order.
pub fn accepted_betas(flavor: Flavor, header: &str) -> Vec<&'static str> {
    let known = match flavor {
        Flavor::Anthropic => return Vec::new(),
        Flavor::Vertex => VERTEX_BETAS,
        Flavor::Bedrock => BEDROCK_BETAS,
    };
    let mut accepted = Vec::new();
    for beta in header.split(',').map(str::trim) {
        // Anthropic renamed the tool-search beta; the platforms know the older name.
        let beta = if beta == "advanced-tool-use-2025-11-20" {
            "tool-search-tool-2025-10-19"
        } else {
            beta
        };
        if let Some(known) = known.iter().find(|known| **known == beta)
            && !accepted.contains(known)
        {
            accepted.push(*known);
        }
    }
    accepted
}

/// An Anthropic client's own request, for Claude on Vertex AI or Bedrock. `betas` is the
/// client's `anthropic-beta` header.
pub fn adapt_native_request(
    body: &[u8],
    flavor: Flavor,
    betas: Option<&str>,
) -> Result<Bytes, GatewayError> {
    // Checked as for Anthropic itself, so errors read the same.
    super::inbound::decode_request(body)?;
    let mut request: Value = serde_json::from_slice(body).map_err(|err| {
        GatewayError::invalid_request(format!("The request body is not valid JSON: {err}."))
    })?;
    let object = request
        .as_object_mut()
        .ok_or_else(|| GatewayError::invalid_request("The request body must be a JSON object."))?;
    object.remove("model");
    if let Some(version) = api_version(flavor) {
        object.insert("anthropic_version".into(), version.into());
    }
    if flavor == Flavor::Bedrock {
        object.remove("stream");
        let accepted = betas.map(|h| accepted_betas(flavor, h)).unwrap_or_default();
        if !accepted.is_empty() {
            object.insert("anthropic_beta".into(), accepted.into());
        }
    }
    strip_cache_scope(&mut request);
    let bytes = serde_json::to_vec(&request).map_err(|err| {
        GatewayError::internal(format!("could not encode the Anthropic request: {err}"))
    })?;
    Ok(Bytes::from(bytes))
}

/// Removes `scope` from every `cache_control` (the platforms refuse it).
fn strip_cache_scope(value: &mut Value) {
    match value {
        Value::Object(object) => {
            for (key, child) in object.iter_mut() {
                if key == "cache_control"
                    && let Value::Object(control) = child
                {
                    control.remove("scope");
                } else {
                    strip_cache_scope(child);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(strip_cache_scope),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_platform_keeps_only_the_betas_it_knows() {
        let header = "claude-code-20250219, interleaved-thinking-2025-05-14, context-1m-2025-08-07, advanced-tool-use-2025-11-20, effort-2025-11-24";
        assert_eq!(
            accepted_betas(Flavor::Vertex, header),
            [
                "interleaved-thinking-2025-05-14",
                "context-1m-2025-08-07",
                "tool-search-tool-2025-10-19"
            ]
        );
        assert_eq!(
            accepted_betas(Flavor::Bedrock, header),
            [
                "context-1m-2025-08-07",
                "tool-search-tool-2025-10-19",
                "effort-2025-11-24"
            ]
        );
    }

    #[test]
    fn bodies_lose_model_stream_and_cache_scope_on_bedrock() {
        let body = br#"{"model":"claude","max_tokens":10,"stream":true,"system":[{"type":"text","text":"s","cache_control":{"type":"ephemeral","ttl":"1h","scope":"global"}}],"messages":[{"role":"user","content":"hi"}]}"#;
        let adapted =
            adapt_native_request(body, Flavor::Bedrock, Some("context-1m-2025-08-07")).unwrap();
        let value: Value = serde_json::from_slice(&adapted).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"max_tokens": 10, "system": [{"type": "text", "text": "s", "cache_control": {"type": "ephemeral", "ttl": "1h"}}],
                               "messages": [{"role": "user", "content": "hi"}], "anthropic_version": "bedrock-2023-05-31",
                               "anthropic_beta": ["context-1m-2025-08-07"]})
        );
    }
}
