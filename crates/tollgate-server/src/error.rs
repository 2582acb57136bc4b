//! Every gateway error leaves in its client's error shape: OpenAI's
//! `{"error":{"message","type","param","code"}}`, or Anthropic's
//! `{"type":"error","error":{"type","message"}}` on Anthropic routes.

use axum::response::{IntoResponse, Response};
use http::header::{CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use tollgate_core::endpoint::ClientFormat;
use tollgate_core::error::GatewayError;
use tollgate_translate::anthropic::errors::error_body as anthropic_error_body;

/// A `GatewayError` on its way to a client.
#[derive(Debug)]
pub struct ApiError {
    pub error: GatewayError,
    pub format: ClientFormat,
}

impl ApiError {
    pub fn new(error: GatewayError, format: ClientFormat) -> Self {
        ApiError { error, format }
    }
}

impl From<GatewayError> for ApiError {
    fn from(error: GatewayError) -> Self {
        ApiError {
            error,
            format: ClientFormat::OpenAi,
        }
    }
}

impl From<ApiError> for Response {
    fn from(ApiError { error, format }: ApiError) -> Response {
        let body = match format {
            ClientFormat::OpenAi | ClientFormat::Responses => error.to_json(),
            ClientFormat::Anthropic => anthropic_error_body(&error),
        };
        let mut response = Response::new(axum::body::Body::from(body));
        *response.status_mut() = error.status;
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(after) = error.retry_after {
            let seconds = after.as_secs() + u64::from(after.subsec_nanos() > 0);
            headers.insert(RETRY_AFTER, HeaderValue::from(seconds.max(1)));
        }
        response
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.into()
    }
}
