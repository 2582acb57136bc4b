//! `GET /v1/models` and `GET /v1/models/{id}`: the model groups this gateway serves. Models
//! served through a wildcard `model_name` are not listed (any name the pattern matches would
//! be), but each can be retrieved by its name.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use bytes::Bytes;
use http::HeaderValue;
use http::header::CONTENT_TYPE;
use tollgate_core::error::GatewayError;
use tollgate_policy::auth::Caller;
use tollgate_wire::openai::Model;

use crate::app::Gateway;
use crate::error::ApiError;

pub(crate) async fn list(
    State(gateway): State<Arc<Gateway>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let caller = gateway.auth.authenticate(&headers)?;
    let models = gateway.models.load();
    let Caller::Key(principal) = caller else {
        return Ok(json(models.list.clone()));
    };
    // Only what this key may use.
    let visible: Vec<&Model> = models
        .entries
        .iter()
        .filter(|model| principal.may_use(&model.id))
        .collect();
    let list = serde_json::json!({"object": "list", "data": visible});
    Ok(json(Bytes::from(list.to_string())))
}

pub(crate) async fn retrieve(
    State(gateway): State<Arc<Gateway>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let caller = gateway.auth.authenticate(&headers)?;
    if !caller.may_use(&id) {
        return Err(GatewayError::model_not_found(&id).into());
    }
    let models = gateway.models.load();
    if let Some(model) = models.by_id.get(&id) {
        return Ok(json(model.clone()));
    }
    let Some((_, deployment)) = gateway.router.wildcard_for(&id) else {
        return Err(GatewayError::model_not_found(&id).into());
    };
    let model = Model {
        object: "model".into(),
        created: models.created,
        owned_by: deployment.config.provider.prefix.into(),
        id,
    };
    Ok(json(Bytes::from(
        serde_json::to_vec(&model).expect("serialisable"),
    )))
}

fn json(body: Bytes) -> Response {
    let mut response = Response::new(Body::from(body));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
