//! Google API error bodies (`{"error":{"code","message","status","details"}}`) to the gateway
//! error. Context-window overflows are marked `context_length_exceeded`, and an invalid API
//! key (which Google answers with a 400) becomes the 401 it is.

use http::StatusCode;
use tollgate_wire::gemini::ErrorEnvelope;

use crate::anthropic::errors::CONTEXT_LENGTH_EXCEEDED;
use tollgate_core::error::GatewayError;

/// A Gemini / Vertex AI error response, or an error sent inside a stream (`status` then is
/// the stream's 200 and the error's own code decides).
pub fn provider_error(status: StatusCode, body: &[u8]) -> GatewayError {
    // Without `alt=sse`, errors come wrapped in an array; accept both.
    let wrapped = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[');
    let envelope = if wrapped {
        serde_json::from_slice::<[ErrorEnvelope<'_>; 1]>(body).map(|[envelope]| envelope)
    } else {
        serde_json::from_slice::<ErrorEnvelope<'_>>(body)
    };
    let Ok(envelope) = envelope else {
        return crate::openai::errors::upstream_error(status, body);
    };
    let detail = envelope.error;
    let status = if status.is_success() {
        StatusCode::from_u16(detail.code)
            .ok()
            .filter(|code| code.is_client_error() || code.is_server_error())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    } else {
        status
    };
    let api_key_invalid = memchr::memmem::find(body, b"API_KEY_INVALID").is_some();
    let status = if api_key_invalid {
        StatusCode::UNAUTHORIZED
    } else {
        status
    };
    let message = if detail.message.is_empty() {
        format!("The provider answered HTTP {}.", status.as_u16())
    } else {
        detail.message.into_owned()
    };
    let lower = message.to_ascii_lowercase();
    let mut err = GatewayError::upstream_status(status, message);
    if !detail.status.is_empty() {
        err = err.with_code(detail.status.to_ascii_lowercase());
    }
    if lower.contains("exceeds the maximum number of tokens") || lower.contains("input token count")
    {
        err = err.with_code(CONTEXT_LENGTH_EXCEEDED);
    }
    err
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_overflow_invalid_key_and_stream_errors() {
        let long = provider_error(
            StatusCode::BAD_REQUEST,
            br#"{"error":{"code":400,"message":"The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).","status":"INVALID_ARGUMENT"}}"#,
        );
        assert_eq!(long.status, StatusCode::BAD_REQUEST);
        assert_eq!(long.code.as_deref(), Some(CONTEXT_LENGTH_EXCEEDED));

        let key = provider_error(
            StatusCode::BAD_REQUEST,
            br#"{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID"}]}}"#,
        );
        assert_eq!(key.status, StatusCode::UNAUTHORIZED);

        let in_stream = provider_error(
            StatusCode::OK,
            br#"{"error":{"code":503,"message":"The model is overloaded.","status":"UNAVAILABLE"}}"#,
        );
        assert_eq!(in_stream.status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(in_stream.is_retryable());
        assert_eq!(in_stream.code.as_deref(), Some("unavailable"));

        let wrapped = provider_error(
            StatusCode::TOO_MANY_REQUESTS,
            br#"[{"error":{"code":429,"message":"Resource exhausted.","status":"RESOURCE_EXHAUSTED"}}]"#,
        );
        assert_eq!(wrapped.message, "Resource exhausted.");
        assert_eq!(wrapped.kind.as_str(), "rate_limit_error");
    }
}
