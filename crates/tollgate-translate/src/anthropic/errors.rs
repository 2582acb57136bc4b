//! Anthropic error bodies to the gateway error, and the gateway error as Anthropic clients
//! expect it. Context-window and content-policy failures are recognised and marked with
//! OpenAI's codes, so routing can fall back on them.

use http::StatusCode;
pub use tollgate_core::error::{CONTENT_POLICY_VIOLATION, CONTEXT_LENGTH_EXCEEDED};
use tollgate_core::error::{ErrorKind, GatewayError};
use tollgate_wire::anthropic::ErrorEnvelope;

/// An Anthropic error response (or stream `error` event) as a gateway error.
pub fn provider_error(status: StatusCode, body: &[u8]) -> GatewayError {
    let Ok(envelope) = serde_json::from_slice::<ErrorEnvelope<'_>>(body) else {
        return crate::openai::errors::upstream_error(status, body);
    };
    let message = envelope.error.message.as_ref();
    // 529 overloaded and stream errors (which carry no status) are the provider's trouble.
    let status = match (status.as_u16(), envelope.error.kind.as_ref()) {
        (529, _) | (_, "overloaded_error") => StatusCode::SERVICE_UNAVAILABLE,
        (_, "rate_limit_error") => StatusCode::TOO_MANY_REQUESTS,
        (_, "invalid_request_error") if status.is_server_error() => StatusCode::BAD_REQUEST,
        _ => status,
    };
    let mut err = GatewayError::upstream_status(status, message.to_owned())
        .with_code(envelope.error.kind.to_string());
    let lower = message.to_ascii_lowercase();
    if lower.contains("prompt is too long")
        || lower.contains("exceed context limit")
        || lower.contains("context window")
    {
        err = err.with_code(CONTEXT_LENGTH_EXCEEDED);
    } else if lower.contains("content filtering policy") {
        err = err.with_code(CONTENT_POLICY_VIOLATION);
    }
    err
}

/// The Anthropic `error.type` for a gateway error.
pub fn error_type(err: &GatewayError) -> &'static str {
    match (err.status.as_u16(), err.kind) {
        (_, ErrorKind::Authentication) => "authentication_error",
        (_, ErrorKind::Permission) => "permission_error",
        (_, ErrorKind::NotFound) => "not_found_error",
        (413, _) => "request_too_large",
        (_, ErrorKind::RateLimit) => "rate_limit_error",
        (503 | 529, _) => "overloaded_error",
        (_, ErrorKind::InvalidRequest) => "invalid_request_error",
        (_, ErrorKind::Timeout) => "timeout_error",
        _ => "api_error",
    }
}

/// `{"type":"error","error":{"type","message"}}` for an Anthropic client.
pub fn error_body(err: &GatewayError) -> String {
    serde_json::json!({
        "type": "error",
        "error": {"type": error_type(err), "message": err.message},
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_context_length_and_content_policy() {
        let long = provider_error(
            StatusCode::BAD_REQUEST,
            br#"{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 208310 tokens > 200000 maximum"}}"#,
        );
        assert_eq!(long.status, StatusCode::BAD_REQUEST);
        assert_eq!(long.code.as_deref(), Some(CONTEXT_LENGTH_EXCEEDED));

        let blocked = provider_error(
            StatusCode::BAD_REQUEST,
            br#"{"type":"error","error":{"type":"invalid_request_error","message":"Output blocked by content filtering policy"}}"#,
        );
        assert_eq!(blocked.code.as_deref(), Some(CONTENT_POLICY_VIOLATION));
    }

    #[test]
    fn overloaded_is_a_503_and_rate_limits_a_429() {
        let overloaded = provider_error(
            StatusCode::from_u16(529).unwrap(),
            br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
        );
        assert_eq!(overloaded.status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(overloaded.is_retryable());
        let limited = provider_error(
            StatusCode::TOO_MANY_REQUESTS,
            br#"{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}"#,
        );
        assert_eq!(limited.kind.as_str(), "rate_limit_error");
    }
}
