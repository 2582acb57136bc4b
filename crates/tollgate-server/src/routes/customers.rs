//! End users ("customers": the `user` an application names in its requests), with LiteLLM's
//! paths and fields under `/customer/*` and `/end_user/*`: `new`, `info`, `update`, `delete`,
//! `list`, `block`, `unblock`. A blocked end user's requests are refused (403); an end user's
//! limits apply to every request naming them. Admins only (viewers read).

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use serde_json::{Map, Value, json};
use tollgate_policy::keys::now_ms;
use tollgate_store::{Action, CustomerRecord, EntityKind};

use crate::app::Gateway;
use crate::error::ApiError;
use crate::routes::admin::{
    create, ids_field, list_all, manager, new_record, object, remove, replace_as, required, shown,
    store_error, stored, text_field, update_record,
};
use crate::routes::query_param;

const UPDATABLE: &[&str] = &[
    "alias",
    "blocked",
    "tpm_limit",
    "rpm_limit",
    "max_parallel_requests",
    "allowed_model_region",
    "default_model",
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
    new_record(
        &gateway,
        &headers,
        &body,
        "user_id",
        UPDATABLE,
        |body, now| {
            let user_id = required(text_field(body, "user_id")?, "user_id")?;
            Ok(unblocked(user_id, now))
        },
    )
    .await
}

/// An end user with nothing set.
fn unblocked(user_id: String, now: i64) -> CustomerRecord {
    CustomerRecord {
        user_id,
        alias: None,
        blocked: false,
        tpm_limit: None,
        rpm_limit: None,
        max_parallel_requests: None,
        allowed_model_region: None,
        default_model: None,
        metadata: Map::new(),
        created_at: now,
        updated_at: now,
        budget: Default::default(),
    }
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
        "user_id",
        UPDATABLE,
        |_: &CustomerRecord| Ok(()),
    )
    .await
}

/// `?end_user_id=` (LiteLLM's name; `user_id` also taken).
pub(crate) async fn info(
    State(gateway): State<Arc<Gateway>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let (manager, editor) = manager(&gateway, &headers)?;
    let store = &editor;
    manager.require_read_all()?;
    let query = query.as_deref();
    let id = query_param(query, "end_user_id").or_else(|| query_param(query, "user_id"));
    let customer = stored::<CustomerRecord>(store, &required(id, "end_user_id")?).await?;
    let mut info = shown(&customer);
    let budget = crate::budgets::effective(&gateway, &customer.budget);
    let kind = EntityKind::EndUser;
    crate::budgets::show_spend(&gateway, store, &mut info, kind, &customer.user_id, budget)
        .await
        .map_err(store_error("end_user_id"))?;
    Ok(Json(info))
}

pub(crate) async fn list(
    State(gateway): State<Arc<Gateway>>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    list_all::<CustomerRecord>(&gateway, &headers)
}

pub(crate) async fn delete(
    State(gateway): State<Arc<Gateway>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let (manager, editor) = manager(&gateway, &headers)?;
    let store = &editor;
    manager.require_admin()?;
    let ids = ids_field(&object(&body)?, "user_ids")?;
    let deleted = remove::<CustomerRecord>(&gateway, store, &ids).await?;
    Ok(Json(json!({"deleted_customers": deleted})))
}

pub(crate) async fn block(
    State(gateway): State<Arc<Gateway>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    set_blocked(&gateway, &headers, &body, true).await
}

pub(crate) async fn unblock(
    State(gateway): State<Arc<Gateway>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    set_blocked(&gateway, &headers, &body, false).await
}

/// `{"user_ids": […]}`: end users not known yet are created blocked (or not), so an
/// application's user can be blocked before an admin has registered them.
async fn set_blocked(
    gateway: &Gateway,
    headers: &HeaderMap,
    body: &[u8],
    blocked: bool,
) -> Result<Json<Value>, ApiError> {
    let (manager, editor) = manager(gateway, headers)?;
    let store = &editor;
    manager.require_admin()?;
    let ids = ids_field(&object(body)?, "user_ids")?;
    let now = now_ms();
    for id in &ids {
        match store
            .get::<CustomerRecord>(id)
            .await
            .map_err(crate::routes::admin::store_error("user_ids"))?
        {
            Some(mut customer) => {
                customer.blocked = blocked;
                customer.updated_at = now;
                let action = if blocked {
                    Action::Blocked
                } else {
                    Action::Unblocked
                };
                replace_as(gateway, store, &customer, action).await?;
            }
            None => {
                let customer = CustomerRecord {
                    blocked,
                    ..unblocked(id.clone(), now)
                };
                create(gateway, store, &customer, "user_ids").await?;
            }
        }
    }
    Ok(Json(
        json!({"blocked_user_ids": if blocked { ids.clone() } else { Vec::new() }, "user_ids": ids}),
    ))
}
