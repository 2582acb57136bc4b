//! The outermost layer: a request id for every request, echoed as `x-request-id` and carried by
//! the lines logged while its handler runs, and the access log line for requests the inference
//! pipeline does not log itself.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use http::HeaderValue;
use http::header::HeaderName;
use tollgate_core::ids::new_request_id;
use tracing::Level;

use crate::access_log::AccessLine;
use crate::logging;

pub(crate) const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The id of the request being served, as the client sent it or as minted here.
#[derive(Debug, Clone)]
pub(crate) struct RequestId {
    pub(crate) id: Arc<str>,
    /// The client sent it: unique only if the client made it so.
    pub(crate) client_chosen: bool,
}

/// Marks a response whose access-log line the pipeline writes (when its body ends).
#[derive(Debug, Clone, Copy)]
pub(crate) struct LoggedByPipeline;

/// The longest client-chosen request id kept; longer ones are replaced by a fresh id.
const MAX_CLIENT_REQUEST_ID: usize = 200;

pub(crate) async fn request_context(mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let client_id: Option<Arc<str>> = request
        .headers()
        .get(&REQUEST_ID)
        .and_then(|value| value.to_str().ok())
        .filter(|id| !id.is_empty() && id.len() <= MAX_CLIENT_REQUEST_ID)
        .map(Arc::from);
    let client_chosen = client_id.is_some();
    let id = client_id.unwrap_or_else(|| Arc::from(new_request_id()));
    let method = request.method().clone();
    // A cheap clone: hyper's parsed URI shares the request buffer.
    let uri = request.uri().clone();
    request.extensions_mut().insert(RequestId {
        id: id.clone(),
        client_chosen,
    });

    let mut response = logging::for_request(id.clone(), next.run(request)).await;

    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    if response.extensions().get::<LoggedByPipeline>().is_none() {
        AccessLine::new(
            &id,
            method.as_str(),
            uri.path(),
            response.status().as_u16(),
            started,
        )
        .emit(Level::INFO);
    }
    response
}
