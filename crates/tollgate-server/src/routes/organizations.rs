//! Organisations, with LiteLLM's paths and fields: `/organization/new`, `/organization/info`,
//! `/organization/update`, `/organization/delete`, `/organization/list`. Admins only (viewers
//! read).

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use serde_json::{Map, Value, json};
use tollgate_core::error::GatewayError;
use tollgate_store::{EntityKind, OrganizationRecord};

use crate::app::Gateway;
use crate::error::ApiError;
use crate::routes::admin::{
    ids_field, list_all, manager, new_id, new_record, object, remove, required, shown, store_error,
    stored, text_field, update_record,
};
use crate::routes::query_param;

const UPDATABLE: &[&str] = &[
    "organization_alias",
    "models",
    "tpm_limit",
    "rpm_limit",
    "max_parallel_requests",
    "metadata",
    "blocked",
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
        "organization_id",
        UPDATABLE,
        |body, now| {
            Ok(OrganizationRecord {
                organization_id: new_id(text_field(body, "organization_id")?),
                organization_alias: required(
                    text_field(body, "organization_alias")?,
                    "organization_alias",
                )?,
                models: Vec::new(),
                tpm_limit: None,
                rpm_limit: None,
                max_parallel_requests: None,
                metadata: Map::new(),
                blocked: false,
                created_at: now,
                updated_at: now,
                budget: Default::default(),
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
        "organization_id",
        UPDATABLE,
        |_: &OrganizationRecord| Ok(()),
    )
    .await
}

pub(crate) async fn info(
    State(gateway): State<Arc<Gateway>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let (manager, editor) = manager(&gateway, &headers)?;
    let store = &editor;
    manager.require_read_all()?;
    let id = required(
        query_param(query.as_deref(), "organization_id"),
        "organization_id",
    )?;
    let organization = stored::<OrganizationRecord>(store, &id).await?;
    let mut answer = shown(&organization);
    let budget = crate::budgets::effective(&gateway, &organization.budget);
    let kind = EntityKind::Organization;
    crate::budgets::show_spend(&gateway, store, &mut answer, kind, &id, budget)
        .await
        .map_err(store_error("organization_id"))?;
    let teams: Vec<Value> = gateway
        .auth
        .directory
        .teams
        .all()
        .iter()
        .filter(|team| team.record.organization_id.as_deref() == Some(id.as_str()))
        .map(|team| json!({"team_id": team.record.team_id, "team_alias": team.record.team_alias}))
        .collect();
    answer["teams"] = Value::Array(teams);
    Ok(Json(answer))
}

pub(crate) async fn list(
    State(gateway): State<Arc<Gateway>>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    list_all::<OrganizationRecord>(&gateway, &headers)
}

/// Deletes organisations that no team or key belongs to any more.
pub(crate) async fn delete(
    State(gateway): State<Arc<Gateway>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let (manager, editor) = manager(&gateway, &headers)?;
    let store = &editor;
    manager.require_admin()?;
    let ids = ids_field(&object(&body)?, "organization_ids")?;
    let directory = &gateway.auth.directory;
    if let Some(team) = directory.teams.all().iter().find(|team| {
        team.record
            .organization_id
            .as_ref()
            .is_some_and(|org| ids.contains(org))
    }) {
        return Err(GatewayError::invalid_param(
            "organization_ids",
            format!(
                "Team `{}` still belongs to organization `{}`; delete or move its teams first.",
                team.record.team_id,
                team.record.organization_id.as_deref().unwrap_or_default()
            ),
        )
        .into());
    }
    let deleted = remove::<OrganizationRecord>(&gateway, store, &ids).await?;
    Ok(Json(json!({"deleted_organizations": deleted})))
}
