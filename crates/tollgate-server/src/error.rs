//! Every gateway error leaves as an OpenAI-shaped body: `{"error":{"message","type","param","code"}}`.

use axum::response::{IntoResponse, Response};
use http::header::{CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use tollgate_core::error::GatewayError;

/// A `GatewayError` on its way to the client.
#[derive(Debug)]
pub struct ApiError(pub GatewayError);

impl From<GatewayError> for ApiError {
    fn from(err: GatewayError) -> Self {
        ApiError(err)
    }
}

impl From<ApiError> for Response {
    fn from(ApiError(err): ApiError) -> Response {
        let body = err.to_json();
        let mut response = Response::new(axum::body::Body::from(body));
        *response.status_mut() = err.status;
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(after) = err.retry_after {
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
