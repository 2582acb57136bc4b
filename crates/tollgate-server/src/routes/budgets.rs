//! Shared budgets, with LiteLLM's paths and fields: `/budget/new`, `/budget/update`,
//! `/budget/info`, `/budget/list`, `/budget/delete`. A budget defined here is named by keys,
//! teams, users, organisations and end users through `budget_id`; each gets its limits and
//! keeps its own spend. Admins change them; viewers read them.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use serde_json::{Value, json};
use tollgate_core::error::GatewayError;
use tollgate_store::BudgetRecord;

use crate::app::Gateway;
use crate::error::ApiError;
use crate::routes::admin::{
    ids_asked, list_all, manager, new_id, new_record, object, remove, required, shown, stored,
    text_field, update_record,
};

const UPDATABLE: &[&str] = &[
    "max_budget",
    "soft_budget",
    "budget_duration",
    "tpm_limit",
    "rpm_limit",
    "max_parallel_requests",
];

pub(crate) async fn new(
    State(gateway): State<Arc<Gateway>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    new_record(
        &gateway,
        &headers,
        &body,
        "budget_id",
        UPDATABLE,
        |body, now| {
            Ok(BudgetRecord {
                budget_id: new_id(text_field(body, "budget_id")?),
                max_budget: None,
                soft_budget: None,
                budget_duration: None,
                tpm_limit: None,
                rpm_limit: None,
                max_parallel_requests: None,
                created_at: now,
                updated_at: now,
            })
        },
    )
    .await
}

pub(crate) async fn update(
    State(gateway): State<Arc<Gateway>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    update_record(
        &gateway,
        &headers,
        &body,
        "budget_id",
        UPDATABLE,
        |_: &BudgetRecord| Ok(()),
    )
    .await
}

/// `POST {"budgets": [ids]}` as LiteLLM takes it, or `GET ?budget_id=`.
pub(crate) async fn info(
    State(gateway): State<Arc<Gateway>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let (manager, store) = manager(&gateway, &headers)?;
    manager.require_read_all()?;
    let ids = ids_asked(query.as_deref(), "budget_id", &body, "budgets")?;
    let mut found = Vec::with_capacity(ids.len());
    for id in ids {
        found.push(shown(&stored::<BudgetRecord>(&store, &id).await?));
    }
    Ok(Json(Value::Array(found)))
}

pub(crate) async fn list(
    State(gateway): State<Arc<Gateway>>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    list_all::<BudgetRecord>(&gateway, &headers)
}

/// `{"id": …}` as LiteLLM takes it (`budget_id` also taken).
pub(crate) async fn delete(
    State(gateway): State<Arc<Gateway>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let (manager, editor) = manager(&gateway, &headers)?;
    manager.require_admin()?;
    let body = object(&body)?;
    let id = text_field(&body, "id")?.or(text_field(&body, "budget_id")?);
    let id = required(id, "id")?;
    // Deleting a budget still named would lift its limits from whoever names it, unseen.
    let holders = crate::budgets::holders(&gateway, &id);
    if !holders.is_empty() {
        return Err(GatewayError::invalid_param(
            "id",
            format!(
                "Budget {id} is in use by {}. Take it off them first (`budget_id: null` on their \
                 update), then delete it.",
                holders.join(", ")
            ),
        )
        .into());
    }
    let deleted = remove::<BudgetRecord>(&gateway, &editor, std::slice::from_ref(&id)).await?;
    Ok(Json(json!({"deleted": deleted})))
}
