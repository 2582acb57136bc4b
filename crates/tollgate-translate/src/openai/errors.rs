//! Provider error responses (OpenAI format and the looser shapes OpenAI-compatible servers use)
//! to the gateway error: same status, the provider's own message.

use http::StatusCode;
use tollgate_core::error::GatewayError;
use tollgate_wire::openai::{ErrorEnvelope, ErrorField};

/// Longest provider message relayed; error pages from proxies can be whole HTML documents.
const MAX_MESSAGE_CHARS: usize = 2_000;

/// The error a client receives for a provider's error response.
pub fn upstream_error(status: StatusCode, body: &[u8]) -> GatewayError {
    let envelope: Option<ErrorEnvelope> = serde_json::from_slice(body).ok();
    let mut code = None;
    let mut param = None;
    let message = match envelope {
        Some(ErrorEnvelope {
            error: Some(ErrorField::Object(object)),
            ..
        }) => {
            code = object.code.as_ref().and_then(scalar_text);
            param = object.param.as_ref().and_then(scalar_text);
            object.message
        }
        Some(ErrorEnvelope {
            error: Some(ErrorField::Text(text)),
            ..
        }) => Some(text),
        Some(ErrorEnvelope {
            message: Some(text),
            ..
        }) => Some(text),
        Some(ErrorEnvelope {
            detail: Some(detail),
            ..
        }) => Some(scalar_text(&detail).unwrap_or_else(|| detail.to_string())),
        _ => None,
    };
    let message = message
        .filter(|text| !text.trim().is_empty())
        .or_else(|| {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            (!text.is_empty()).then(|| text.to_owned())
        })
        .unwrap_or_else(|| {
            format!(
                "The provider answered HTTP {} with an empty body.",
                status.as_u16()
            )
        });

    let mut error = GatewayError::upstream_status(status, truncate(message));
    error.code = code.map(Into::into);
    error.param = param.map(Into::into);
    error
}

fn scalar_text(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::String(text) => Some(text.clone()),
        serde_json::Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

fn truncate(mut message: String) -> String {
    if let Some((cut, _)) = message.char_indices().nth(MAX_MESSAGE_CHARS) {
        message.truncate(cut);
        message.push('…');
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_an_openai_error_as_the_provider_wrote_it() {
        let body = br#"{"error":{"message":"Rate limit reached for gpt-4o","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#;
        let error = upstream_error(StatusCode::TOO_MANY_REQUESTS, body);
        assert_eq!(error.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(error.message, "Rate limit reached for gpt-4o");
        assert_eq!(error.code.as_deref(), Some("rate_limit_exceeded"));
        assert_eq!(error.kind.as_str(), "rate_limit_error");
    }

    #[test]
    fn reads_the_looser_shapes_of_compatible_servers() {
        let ollama = upstream_error(StatusCode::NOT_FOUND, br#"{"error":"model 'x' not found"}"#);
        assert_eq!(ollama.message, "model 'x' not found");
        let vllm = upstream_error(
            StatusCode::BAD_REQUEST,
            br#"{"object":"error","message":"too long","type":"BadRequestError","code":400}"#,
        );
        assert_eq!(vllm.message, "too long");
        let fastapi = upstream_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            br#"{"detail":"field required"}"#,
        );
        assert_eq!(fastapi.message, "field required");
        let html = upstream_error(StatusCode::BAD_GATEWAY, b"<html>bad gateway</html>");
        assert_eq!(html.message, "<html>bad gateway</html>");
        let empty = upstream_error(StatusCode::SERVICE_UNAVAILABLE, b"");
        assert!(empty.message.contains("503"));
    }
}
