//! Health: liveness and readiness, open to unauthenticated callers as in LiteLLM (liveness says
//! the process answers; readiness says it takes traffic, 503 once it is draining for
//! shutdown); and `/health`, for admins, which says which deployments answer.

use std::sync::Arc;

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use tollgate_core::error::GatewayError;

use crate::app::Gateway;
use crate::error::ApiError;
use crate::health_checks;
use crate::routes::query_param;

/// `GET /health[?model=group]`: probes the deployments now, or shows the latest background
/// round when `background_health_checks` is on.
pub(crate) async fn deployments(
    State(gateway): State<Arc<Gateway>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    gateway.auth.authenticate(&headers)?;
    let model = query_param(query.as_deref(), "model");
    if let Some(model) = &model
        && !gateway.router.groups().any(|group| &group.name == model)
    {
        return Err(GatewayError::model_not_found(model).into());
    }
    if gateway.health_checks.background
        && model.is_none()
        && let Some(latest) = gateway.latest_health()
    {
        return Ok(Json(Value::clone(&latest)));
    }
    let probes = health_checks::check(&gateway, model.as_deref()).await;
    Ok(Json(health_checks::report(&probes)))
}

pub(crate) async fn liveness() -> Json<&'static str> {
    Json("I'm alive!")
}

pub(crate) async fn readiness(State(gateway): State<Arc<Gateway>>) -> (StatusCode, Json<Value>) {
    let draining = gateway.is_draining();
    let status = if draining {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    let body = json!({
        "status": if draining { "draining" } else { "healthy" },
        "db": "Not connected",
        "version": env!("CARGO_PKG_VERSION"),
        "in_flight_requests": gateway.in_flight(),
    });
    (status, Json(body))
}
