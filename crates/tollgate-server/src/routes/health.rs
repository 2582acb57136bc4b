//! Health: liveness and readiness, open to unauthenticated callers as in LiteLLM (liveness says
//! the process answers; readiness says it takes traffic, 503 once it is draining for
//! shutdown); and `/health`, for admins, which says which deployments answer.

use std::sync::Arc;

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use tollgate_core::error::GatewayError;
use tollgate_policy::keys::now_ms;
use tollgate_store::Backend;

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
        && !gateway
            .router
            .groups()
            .iter()
            .any(|group| &group.name == model)
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

/// 503 while draining, and once the store has been unreadable for longer than
/// `store_max_staleness` (virtual keys are refused then); a store that fails for less time
/// shows as `"db": "disconnected"` while keys already known keep working.
pub(crate) async fn readiness(State(gateway): State<Arc<Gateway>>) -> (StatusCode, Json<Value>) {
    let freshness = &gateway.auth.directory.freshness;
    let now = now_ms();
    let (status, state) = if gateway.is_draining() {
        (StatusCode::SERVICE_UNAVAILABLE, "draining")
    } else if freshness.is_stale(now) {
        (StatusCode::SERVICE_UNAVAILABLE, "store_stale")
    } else if gateway
        .spend
        .as_ref()
        .is_some_and(|ledger| ledger.journal.is_full())
    {
        (StatusCode::SERVICE_UNAVAILABLE, "spend_journal_full")
    } else {
        (StatusCode::OK, "healthy")
    };
    let mut body = json!({
        "status": state,
        "db": "Not connected",
        "version": env!("CARGO_PKG_VERSION"),
        "in_flight_requests": gateway.in_flight(),
    });
    // Informational: without Redis each replica counts limits and budgets on its own, but
    // it still serves.
    if let Some(shared) = &gateway.shared {
        body["redis"] = json!(if shared.ping().await {
            "connected"
        } else {
            "disconnected"
        });
    }
    if let Some(store) = &gateway.store {
        body["db"] = json!(if freshness.store_reachable() {
            "connected"
        } else {
            "disconnected"
        });
        body["store"] = json!({
            "backend": match store.backend() {
                Backend::Sqlite => "sqlite",
                Backend::Postgres => "postgres",
            },
            "synced_seconds_ago": (now - freshness.synced_at_ms()).max(0) / 1000,
        });
    }
    if let Some(ledger) = &gateway.spend {
        body["spend_journal"] = json!({
            "pending_bytes": ledger.journal.pending_bytes(),
            "max_bytes": ledger.journal.max_bytes(),
        });
    }
    (status, Json(body))
}
