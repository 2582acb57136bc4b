//! Health probes, open to unauthenticated callers as in LiteLLM: liveness says the process
//! answers; readiness says it takes traffic (503 once it is draining for shutdown).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::app::Gateway;

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
