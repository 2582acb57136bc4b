//! `GET /v1/models` and `GET /v1/models/{id}`: the model groups this gateway serves.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use bytes::Bytes;
use http::HeaderValue;
use http::header::CONTENT_TYPE;
use tollgate_core::error::GatewayError;

use crate::app::Gateway;
use crate::error::ApiError;

pub(crate) async fn list(
    State(gateway): State<Arc<Gateway>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    gateway.auth.authenticate(&headers)?;
    Ok(json(gateway.models.list.clone()))
}

pub(crate) async fn retrieve(
    State(gateway): State<Arc<Gateway>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    gateway.auth.authenticate(&headers)?;
    match gateway.models.by_id.get(&id) {
        Some(model) => Ok(json(model.clone())),
        None => Err(GatewayError::model_not_found(&id).into()),
    }
}

fn json(body: Bytes) -> Response {
    let mut response = Response::new(Body::from(body));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
