//! `/audit`: the log of every change made through the management API, for admins and
//! viewers, newest first, with LiteLLM's field names.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use serde_json::Value;
use tollgate_core::calendar::MS_PER_DAY;
use tollgate_core::error::GatewayError;
use tollgate_store::{Action, AuditFilter, AuditRecord};

use crate::app::Gateway;
use crate::error::ApiError;
use crate::routes::admin::{
    date_param, iso8601, manager, not_found, number_param, paged, store_error,
};
use crate::routes::query_param;

/// `GET /audit?page=&page_size=&table_name=&object_id=&changed_by=&action=&start_date=&end_date=`
/// (dates `YYYY-MM-DD`, UTC, both included).
pub(crate) async fn list(
    State(gateway): State<Arc<Gateway>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let (manager, store) = manager(&gateway, &headers)?;
    manager.require_read_all()?;
    let query = query.as_deref();
    let page = number_param(query, "page", 1, u32::MAX)?;
    let size = number_param(query, "page_size", 50, 1000)?;
    let action = query_param(query, "action")
        .map(|action| {
            serde_json::from_value::<Action>(Value::String(action)).map_err(|_| {
                GatewayError::invalid_param(
                    "action",
                    "`action` must be one of created, updated, deleted, blocked, unblocked, regenerated.",
                )
            })
        })
        .transpose()?;
    let filter = AuditFilter {
        table_name: query_param(query, "table_name"),
        object_id: query_param(query, "object_id"),
        changed_by: query_param(query, "changed_by"),
        action,
        since: date_param(query, "start_date")?,
        until: date_param(query, "end_date")?.map(|day| day + MS_PER_DAY),
    };
    let found = store
        .audit_log(&filter, page, size)
        .await
        .map_err(store_error("audit"))?;
    let entries = found.entries.iter().map(shown).collect();
    Ok(Json(paged("audit_logs", entries, found.total, page, size)))
}

/// `GET /audit/{id}`.
pub(crate) async fn info(
    State(gateway): State<Arc<Gateway>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let (manager, store) = manager(&gateway, &headers)?;
    manager.require_read_all()?;
    let entry = store
        .audit_entry(&id)
        .await
        .map_err(store_error("id"))?
        .ok_or_else(|| not_found(format!("No audit log entry `{id}` exists.")))?;
    Ok(Json(shown(&entry)))
}

fn shown(entry: &AuditRecord) -> Value {
    let mut value = serde_json::to_value(entry).expect("audit entries serialise");
    value["updated_at"] = Value::String(iso8601(entry.updated_at));
    value
}
