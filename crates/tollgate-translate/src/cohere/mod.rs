//! Cohere's v2 API as a provider: chat (`chat`), embeddings (`embeddings`), and its errors.

pub mod chat;
pub mod embeddings;

use http::StatusCode;
use tollgate_core::error::GatewayError;
use tollgate_wire::cohere::ErrorBody;

use crate::anthropic::errors::CONTEXT_LENGTH_EXCEEDED;

/// A Cohere error response (`{"message"}`); "too many tokens" is a context overflow.
pub fn provider_error(status: StatusCode, body: &[u8]) -> GatewayError {
    let Ok(error) = serde_json::from_slice::<ErrorBody>(body) else {
        return crate::openai::errors::upstream_error(status, body);
    };
    // 498 (invalid token) and 499 (cancelled) are Cohere's own codes.
    let status = match status.as_u16() {
        498 => StatusCode::UNAUTHORIZED,
        499 => StatusCode::BAD_GATEWAY,
        _ => status,
    };
    let lower = error.message.to_ascii_lowercase();
    let err = GatewayError::upstream_status(status, error.message);
    if lower.contains("too many tokens") {
        err.with_code(CONTEXT_LENGTH_EXCEEDED)
    } else {
        err
    }
}
