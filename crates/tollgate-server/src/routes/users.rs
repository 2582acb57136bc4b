//! Users, with LiteLLM's paths and fields: `/user/new` (which, as LiteLLM's, also makes the
//! user a key unless `auto_create_key` is false), `/user/info`, `/user/update`,
//! `/user/delete`, `/user/list`. Changes need an admin; users may read themselves.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use serde_json::{Map, Value, json};
use tollgate_core::error::GatewayError;
use tollgate_policy::keys::{generate_key, hash_key, mask_key, now_ms};
use tollgate_policy::management::forbidden;
use tollgate_store::{
    Action, EntityKind, KeyFilter, KeyRecord, OrganizationRecord, TeamRecord, UserRecord,
};

use crate::app::Gateway;
use crate::error::ApiError;
use crate::routes::admin::{
    check_known, check_models, create, ids_field, manager, merged, new_id, object, remove, replace,
    required, shown, store_error, stored, text_field, update_record,
};
use crate::routes::keys::delete_keys_matching;
use crate::routes::query_param;

const UPDATABLE: &[&str] = &[
    "user_alias",
    "user_email",
    "user_role",
    "organization_id",
    "models",
    "tpm_limit",
    "rpm_limit",
    "max_parallel_requests",
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
    let (manager, editor) = manager(&gateway, &headers)?;
    let store = &editor;
    manager.require_admin()?;
    let body = object(&body)?;
    let now = now_ms();
    let blank = UserRecord {
        user_id: new_id(text_field(&body, "user_id")?),
        user_alias: None,
        user_email: None,
        user_role: Default::default(),
        teams: Vec::new(),
        organization_id: None,
        models: Vec::new(),
        tpm_limit: None,
        rpm_limit: None,
        max_parallel_requests: None,
        metadata: Map::new(),
        created_at: now,
        updated_at: now,
        budget: Default::default(),
    };
    let user = merged(&blank, &body, UPDATABLE)?;
    check_models(&gateway, &user.models)?;
    check_known::<OrganizationRecord>(
        &gateway,
        "organization_id",
        user.organization_id.as_deref(),
    )?;
    // Teams are joined through /team/member_add, which keeps both sides in step.
    if body.get("teams").is_some_and(|teams| !teams.is_null()) {
        return Err(GatewayError::invalid_param(
            "teams",
            "Add users to teams with /team/member_add.",
        )
        .into());
    }
    create(&gateway, store, &user, "user_id").await?;
    let mut answer = shown(&user);
    if body.get("auto_create_key").and_then(Value::as_bool) != Some(false) {
        let key = generate_key();
        let record = KeyRecord {
            token: hash_key(&key),
            key_name: mask_key(&key),
            key_alias: text_field(&body, "key_alias")?,
            user_id: Some(user.user_id.clone()),
            team_id: None,
            organization_id: None,
            models: user.models.clone(),
            aliases: Map::new(),
            metadata: Map::new(),
            tags: Vec::new(),
            permissions: Map::new(),
            tpm_limit: None,
            rpm_limit: None,
            max_parallel_requests: None,
            blocked: false,
            expires_at: None,
            created_at: now,
            updated_at: now,
            created_by: Some("master_key".to_owned()),
            budget: Default::default(),
            model_max_budget: Default::default(),
        };
        store
            .insert_key(&record, &store.change(Action::Created))
            .await
            .map_err(store_error("key_alias"))?;
        gateway.auth.directory.keys.put(record);
        answer["key"] = json!(key);
    }
    Ok(Json(answer))
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
        |user: &UserRecord| {
            check_known::<OrganizationRecord>(
                &gateway,
                "organization_id",
                user.organization_id.as_deref(),
            )
        },
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
    let id =
        query_param(query.as_deref(), "user_id").or_else(|| manager.user_id().map(str::to_owned));
    let id = required(id, "user_id")?;
    if !manager.reads_all() && manager.user_id() != Some(id.as_str()) {
        return Err(forbidden("You may see only yourself.").into());
    }
    let user = stored::<UserRecord>(store, &id).await?;
    let filter = KeyFilter {
        user_id: Some(id.clone()),
        ..KeyFilter::default()
    };
    let keys = store
        .list_keys(&filter, 1, 1000)
        .await
        .map_err(store_error("user_id"))?;
    let directory = &gateway.auth.directory;
    let teams: Vec<Value> = user
        .teams
        .iter()
        .filter_map(|team| directory.teams.get(team))
        .map(|team| shown(&team.record))
        .collect();
    let mut info = shown(&user);
    let budget = crate::budgets::effective(&gateway, &user.budget);
    crate::budgets::show_spend(&gateway, store, &mut info, EntityKind::User, &id, budget)
        .await
        .map_err(store_error("user_id"))?;
    Ok(Json(json!({
        "user_id": id,
        "user_info": info,
        "keys": keys.keys.iter().map(|key| json!({
            "token": key.token,
            "key_name": key.key_name,
            "key_alias": key.key_alias,
            "team_id": key.team_id,
        })).collect::<Vec<_>>(),
        "teams": teams,
    })))
}

/// `?role=&user_ids=a,b&page=&page_size=` — admins and viewers only.
pub(crate) async fn list(
    State(gateway): State<Arc<Gateway>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let (manager, _) = manager(&gateway, &headers)?;
    manager.require_read_all()?;
    let query = query.as_deref();
    let role = query_param(query, "role");
    let ids: Option<Vec<String>> =
        query_param(query, "user_ids").map(|ids| ids.split(',').map(str::to_owned).collect());
    let number = |name: &'static str, default: usize| -> Result<usize, GatewayError> {
        match query_param(query, name) {
            None => Ok(default),
            Some(text) => text
                .parse::<usize>()
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| {
                    GatewayError::invalid_param(
                        name,
                        format!("`{name}` must be a whole number from 1."),
                    )
                }),
        }
    };
    let (page, page_size) = (number("page", 1)?, number("page_size", 25)?.min(1000));
    let users: Vec<UserRecord> = gateway
        .auth
        .directory
        .users
        .all()
        .iter()
        .map(|user| user.record.clone())
        .filter(|user| {
            role.as_deref().is_none_or(|role| {
                serde_json::to_value(user.user_role)
                    .ok()
                    .as_ref()
                    .and_then(Value::as_str)
                    == Some(role)
            })
        })
        .filter(|user| ids.as_ref().is_none_or(|ids| ids.contains(&user.user_id)))
        .collect();
    let total = users.len();
    let shown_users: Vec<Value> = users
        .iter()
        .skip((page - 1) * page_size)
        .take(page_size)
        .map(shown)
        .collect();
    Ok(Json(json!({
        "users": shown_users,
        "total": total,
        "page": page,
        "page_size": page_size,
        "total_pages": total.div_ceil(page_size),
    })))
}

/// Deletes users with their keys; teams lose them as members.
pub(crate) async fn delete(
    State(gateway): State<Arc<Gateway>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let (manager, editor) = manager(&gateway, &headers)?;
    let store = &editor;
    manager.require_admin()?;
    let ids = ids_field(&object(&body)?, "user_ids")?;
    let deleted = remove::<UserRecord>(&gateway, store, &ids).await?;
    let filters: Vec<KeyFilter> = deleted
        .iter()
        .map(|id| KeyFilter {
            user_id: Some(id.clone()),
            ..KeyFilter::default()
        })
        .collect();
    let deleted_keys = delete_keys_matching(&gateway, store, filters).await?;
    for team in gateway.auth.directory.teams.all() {
        let is_deleted = |member: &tollgate_store::TeamMember| {
            member
                .user_id
                .as_ref()
                .is_some_and(|id| deleted.contains(id))
        };
        if team.record.members_with_roles.iter().any(is_deleted) {
            let mut record: TeamRecord = team.record.clone();
            record
                .members_with_roles
                .retain(|member| !is_deleted(member));
            record.updated_at = now_ms();
            replace(&gateway, store, &record).await?;
        }
    }
    Ok(Json(
        json!({"deleted_users": deleted, "deleted_keys": deleted_keys}),
    ))
}
