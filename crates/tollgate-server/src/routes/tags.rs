//! Tags, with LiteLLM's paths and fields: `/tag/new`, `/tag/update`, `/tag/info`, `/tag/list`,
//! `/tag/delete`. Requests carry tags whether or not they are defined here (their spend is
//! counted either way); a tag defined here gives every request carrying it a budget —
//! `max_budget`, `soft_budget`, `budget_duration`, or a shared `budget_id`. Admins change
//! them; viewers read them.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use serde_json::{Map, Value, json};
use tollgate_core::error::GatewayError;
use tollgate_store::{EntityKind, TagRecord};

use crate::app::Gateway;
use crate::error::ApiError;
use crate::routes::admin::{
    ids_asked, manager, new_record, object, remove, required, shown, store_error, stored,
    text_field, update_record,
};

const UPDATABLE: &[&str] = &[
    "description",
    "metadata",
    "max_budget",
    "soft_budget",
    "budget_duration",
    "budget_id",
];

pub(crate) async fn new(
    State(gateway): State<Arc<Gateway>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    new_record(&gateway, &headers, &body, "name", UPDATABLE, |body, now| {
        refuse_unsupported(body)?;
        Ok(TagRecord {
            name: required(text_field(body, "name")?, "name")?,
            description: None,
            metadata: Map::new(),
            budget: Default::default(),
            created_at: now,
            updated_at: now,
        })
    })
    .await
}

pub(crate) async fn update(
    State(gateway): State<Arc<Gateway>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    refuse_unsupported(&object(&body)?)?;
    update_record(
        &gateway,
        &headers,
        &body,
        "name",
        UPDATABLE,
        |_: &TagRecord| Ok(()),
    )
    .await
}

/// What LiteLLM's tags take and Tollgate's do not act on is refused rather than saved and
/// ignored: `models` (for LiteLLM, the deployments tagged requests are routed to; an empty
/// list, what LiteLLM's UI sends, is fine) and rate limits.
fn refuse_unsupported(body: &Map<String, Value>) -> Result<(), GatewayError> {
    match body.get("models") {
        None | Some(Value::Null) => {}
        Some(Value::Array(models)) if models.is_empty() => {}
        Some(_) => {
            return Err(GatewayError::invalid_param(
                "models",
                "Routing tagged requests to particular deployments (`models` on a tag) is not supported; leave `models` empty.",
            ));
        }
    }
    for field in ["tpm_limit", "rpm_limit", "max_parallel_requests"] {
        if body.get(field).is_some_and(|value| !value.is_null()) {
            return Err(GatewayError::invalid_param(
                field,
                format!("Tags take budgets, not rate limits: `{field}` is not supported on a tag."),
            ));
        }
    }
    Ok(())
}

/// `POST {"names": [tags]}` as LiteLLM takes it, or `GET ?name=`: each tag by name, with its
/// `spend` (this budget period's when it resets) and `budget_reset_at`.
pub(crate) async fn info(
    State(gateway): State<Arc<Gateway>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let (manager, store) = manager(&gateway, &headers)?;
    manager.require_read_all()?;
    let names = ids_asked(query.as_deref(), "name", &body, "names")?;
    let mut found = Map::new();
    for name in names {
        let tag = stored::<TagRecord>(&store, &name).await?;
        let mut info = shown(&tag);
        let budget = crate::budgets::effective(&gateway, &tag.budget);
        crate::budgets::show_spend(&gateway, &store, &mut info, EntityKind::Tag, &name, budget)
            .await
            .map_err(store_error("names"))?;
        found.insert(name, info);
    }
    Ok(Json(Value::Object(found)))
}

/// Every defined tag, by name (LiteLLM answers a map).
pub(crate) async fn list(
    State(gateway): State<Arc<Gateway>>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let (manager, _) = manager(&gateway, &headers)?;
    manager.require_read_all()?;
    let all = gateway
        .auth
        .directory
        .tags
        .all()
        .iter()
        .map(|tag| (tag.record.name.clone(), shown(&tag.record)))
        .collect();
    Ok(Json(Value::Object(all)))
}

/// `{"name": …}`.
pub(crate) async fn delete(
    State(gateway): State<Arc<Gateway>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let (manager, editor) = manager(&gateway, &headers)?;
    manager.require_admin()?;
    let name = required(text_field(&object(&body)?, "name")?, "name")?;
    let deleted = remove::<TagRecord>(&gateway, &editor, std::slice::from_ref(&name)).await?;
    Ok(Json(json!({"deleted": deleted})))
}
