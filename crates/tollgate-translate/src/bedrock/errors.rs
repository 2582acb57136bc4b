//! Bedrock error bodies (`{"message"}`, the type in `x-amzn-ErrorType`) and in-stream
//! exceptions to the gateway error. Context-window overflows, which Bedrock reports as
//! validation errors, are marked `context_length_exceeded`.

use http::StatusCode;
use tollgate_core::error::GatewayError;
use tollgate_wire::bedrock::ErrorBody;

use crate::anthropic::errors::CONTEXT_LENGTH_EXCEEDED;

const CONTEXT_OVERFLOW: &[&str] = &[
    "input is too long",
    "exceed context limit",
    "too many total text bytes",
    "prompt is too long",
    "context window",
];

/// A Bedrock error response.
pub fn provider_error(status: StatusCode, body: &[u8]) -> GatewayError {
    let message = serde_json::from_slice::<ErrorBody>(body)
        .ok()
        .and_then(|body| body.message)
        .filter(|message| !message.trim().is_empty());
    let Some(message) = message else {
        return crate::openai::errors::upstream_error(status, body);
    };
    let status = match status.as_u16() {
        // Model errors (424) are the provider's failure, not the client's.
        424 => StatusCode::BAD_GATEWAY,
        _ => status,
    };
    mark(GatewayError::upstream_status(status, message))
}

/// An exception frame inside a stream: `kind` is its `:exception-type`.
pub fn stream_exception(kind: &str, payload: &[u8]) -> GatewayError {
    let status = match kind {
        "throttlingException" | "modelNotReadyException" => StatusCode::TOO_MANY_REQUESTS,
        "validationException" => StatusCode::BAD_REQUEST,
        "serviceUnavailableException" => StatusCode::SERVICE_UNAVAILABLE,
        "modelTimeoutException" => StatusCode::GATEWAY_TIMEOUT,
        "modelStreamErrorException" => StatusCode::BAD_GATEWAY,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let message = serde_json::from_slice::<ErrorBody>(payload)
        .ok()
        .and_then(|body| body.message)
        .unwrap_or_else(|| format!("Bedrock ended the stream with {kind}."));
    mark(GatewayError::upstream_status(status, message).with_code(kind.to_owned()))
}

fn mark(err: GatewayError) -> GatewayError {
    let lower = err.message.to_ascii_lowercase();
    if CONTEXT_OVERFLOW
        .iter()
        .any(|fragment| lower.contains(fragment))
    {
        err.with_code(CONTEXT_LENGTH_EXCEEDED)
    } else {
        err
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_overflows_and_stream_exceptions() {
        let err = provider_error(
            StatusCode::BAD_REQUEST,
            br#"{"message":"Input is too long for requested model."}"#,
        );
        assert_eq!(err.status, StatusCode::BAD_REQUEST);
        assert_eq!(err.code.as_deref(), Some(CONTEXT_LENGTH_EXCEEDED));

        let err = stream_exception("throttlingException", br#"{"message":"Too many requests"}"#);
        assert_eq!(err.status, StatusCode::TOO_MANY_REQUESTS);
        assert!(err.is_retryable());
        assert_eq!(err.message, "Too many requests");
    }
}
