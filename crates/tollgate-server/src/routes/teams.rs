//! Teams, with LiteLLM's paths and fields: `/team/new`, `/team/update`, `/team/info`,
//! `/team/list`, `/team/delete`, `/team/member_add`, `/team/member_delete`, `/team/block`,
//! `/team/unblock`. Changes need an admin; a team's members may read it. A team's members are
//! kept on both sides: in the team's `members_with_roles` and in each user's `teams`.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use serde_json::{Map, Value, json};
use tollgate_core::error::GatewayError;
use tollgate_policy::keys::now_ms;
use tollgate_store::{
    EntityKind, KeyFilter, OrganizationRecord, TeamMember, TeamRecord, UserRecord, UserRole,
};

use crate::app::Gateway;
use crate::error::ApiError;
use crate::routes::admin::{
    Editor, check_known, check_models, create, ids_field, manager, merged, new_id, not_found,
    object, remove, replace, required, shown, store_error, stored, text_field, update_record,
};
use crate::routes::keys::delete_keys_matching;
use crate::routes::query_param;

/// Fields `/team/new` and `/team/update` take.
const UPDATABLE: &[&str] = &[
    "team_alias",
    "organization_id",
    "models",
    "tpm_limit",
    "rpm_limit",
    "max_parallel_requests",
    "team_member_tpm_limit",
    "team_member_rpm_limit",
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
    let (manager, editor) = manager(&gateway, &headers)?;
    let store = &editor;
    manager.require_admin()?;
    let body = object(&body)?;
    let now = now_ms();
    let blank = TeamRecord {
        team_id: new_id(text_field(&body, "team_id")?),
        team_alias: None,
        organization_id: None,
        models: Vec::new(),
        members_with_roles: Vec::new(),
        tpm_limit: None,
        rpm_limit: None,
        max_parallel_requests: None,
        team_member_tpm_limit: None,
        team_member_rpm_limit: None,
        metadata: Map::new(),
        blocked: false,
        created_at: now,
        updated_at: now,
        budget: Default::default(),
    };
    let mut team = merged(&blank, &body, UPDATABLE)?;
    check_models(&gateway, &team.models)?;
    check_known::<OrganizationRecord>(
        &gateway,
        "organization_id",
        team.organization_id.as_deref(),
    )?;
    let members = members_field(&body, "members_with_roles")?.unwrap_or_default();
    create(&gateway, store, &team, "team_id").await?;
    if !members.is_empty() {
        for member in members {
            add_member(&gateway, store, &mut team, member).await?;
        }
        replace(&gateway, store, &team).await?;
    }
    Ok(Json(shown(&team)))
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
        "team_id",
        UPDATABLE,
        |team: &TeamRecord| {
            check_known::<OrganizationRecord>(
                &gateway,
                "organization_id",
                team.organization_id.as_deref(),
            )
        },
    )
    .await
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

async fn set_blocked(
    gateway: &Gateway,
    headers: &HeaderMap,
    body: &[u8],
    blocked: bool,
) -> Result<Json<Value>, ApiError> {
    let (manager, editor) = manager(gateway, headers)?;
    let store = &editor;
    manager.require_admin()?;
    let body = object(body)?;
    let id = required(text_field(&body, "team_id")?, "team_id")?;
    let mut team = stored::<TeamRecord>(store, &id).await?;
    team.blocked = blocked;
    team.updated_at = now_ms();
    replace(gateway, store, &team).await?;
    Ok(Json(shown(&team)))
}

pub(crate) async fn info(
    State(gateway): State<Arc<Gateway>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let (manager, editor) = manager(&gateway, &headers)?;
    let store = &editor;
    let id = required(query_param(query.as_deref(), "team_id"), "team_id")?;
    if !manager.sees_team(&id) {
        return Err(not_found(format!("No team `{id}` exists.")).into());
    }
    let team = stored::<TeamRecord>(store, &id).await?;
    let filter = KeyFilter {
        team_id: Some(id.clone()),
        ..KeyFilter::default()
    };
    let keys = store
        .list_keys(&filter, 1, 1000)
        .await
        .map_err(store_error("team_id"))?;
    let mut info = shown(&team);
    let budget = crate::budgets::effective(&gateway, &team.budget);
    crate::budgets::show_spend(&gateway, store, &mut info, EntityKind::Team, &id, budget)
        .await
        .map_err(store_error("team_id"))?;
    Ok(Json(json!({
        "team_id": id,
        "team_info": info,
        "keys": keys.keys.iter().map(|key| json!({
            "token": key.token,
            "key_name": key.key_name,
            "key_alias": key.key_alias,
            "user_id": key.user_id,
        })).collect::<Vec<_>>(),
    })))
}

/// Every team the caller may see (`organization_id`, `user_id` filter), as LiteLLM: a list.
pub(crate) async fn list(
    State(gateway): State<Arc<Gateway>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let (manager, _) = manager(&gateway, &headers)?;
    let query = query.as_deref();
    let organization = query_param(query, "organization_id");
    let user = query_param(query, "user_id");
    let teams: Vec<Value> = gateway
        .auth
        .directory
        .teams
        .all()
        .iter()
        .map(|team| &team.record)
        .filter(|team| manager.sees_team(&team.team_id))
        .filter(|team| {
            organization.is_none() || team.organization_id.as_deref() == organization.as_deref()
        })
        .filter(|team| {
            user.as_deref()
                .is_none_or(|user| team.member(user).is_some())
        })
        .map(shown)
        .collect();
    Ok(Json(Value::Array(teams)))
}

/// Deletes teams and, as LiteLLM does, their keys; members' `teams` lose them.
pub(crate) async fn delete(
    State(gateway): State<Arc<Gateway>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let (manager, editor) = manager(&gateway, &headers)?;
    let store = &editor;
    manager.require_admin()?;
    let ids = ids_field(&object(&body)?, "team_ids")?;
    let filters: Vec<KeyFilter> = ids
        .iter()
        .map(|id| KeyFilter {
            team_id: Some(id.clone()),
            ..KeyFilter::default()
        })
        .collect();
    let deleted_keys = delete_keys_matching(&gateway, store, filters).await?;
    let deleted = remove::<TeamRecord>(&gateway, store, &ids).await?;
    for user in gateway.auth.directory.users.all() {
        if user.record.teams.iter().any(|team| deleted.contains(team)) {
            let mut record = user.record.clone();
            record.teams.retain(|team| !deleted.contains(team));
            record.updated_at = now_ms();
            replace(&gateway, store, &record).await?;
        }
    }
    Ok(Json(
        json!({"deleted_teams": deleted, "deleted_keys": deleted_keys}),
    ))
}

/// `{"team_id", "member": {role, user_id, user_email} or a list of them}`.
pub(crate) async fn member_add(
    State(gateway): State<Arc<Gateway>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let (manager, editor) = manager(&gateway, &headers)?;
    let store = &editor;
    manager.require_admin()?;
    let body = object(&body)?;
    let id = required(text_field(&body, "team_id")?, "team_id")?;
    let members = required(members_field(&body, "member")?, "member")?;
    let mut team = stored::<TeamRecord>(store, &id).await?;
    for member in members {
        add_member(&gateway, store, &mut team, member).await?;
    }
    team.updated_at = now_ms();
    replace(&gateway, store, &team).await?;
    Ok(Json(shown(&team)))
}

/// `{"team_id", "user_id"}` (or `"user_email"`).
pub(crate) async fn member_delete(
    State(gateway): State<Arc<Gateway>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let (manager, editor) = manager(&gateway, &headers)?;
    let store = &editor;
    manager.require_admin()?;
    let body = object(&body)?;
    let id = required(text_field(&body, "team_id")?, "team_id")?;
    let user_id = text_field(&body, "user_id")?;
    let email = text_field(&body, "user_email")?;
    if user_id.is_none() && email.is_none() {
        return Err(GatewayError::invalid_param(
            "user_id",
            "Give the member to remove as `user_id` or `user_email`.",
        )
        .into());
    }
    let mut team = stored::<TeamRecord>(store, &id).await?;
    let is_target = |member: &TeamMember| {
        (user_id.is_some() && member.user_id == user_id)
            || (email.is_some() && member.user_email == email)
    };
    let Some(removed) = team
        .members_with_roles
        .iter()
        .find(|m| is_target(m))
        .cloned()
    else {
        return Err(not_found(format!("That user is not a member of team `{id}`.")).into());
    };
    team.members_with_roles.retain(|member| !is_target(member));
    team.updated_at = now_ms();
    replace(&gateway, store, &team).await?;
    if let Some(user_id) = &removed.user_id
        && let Some(user) = gateway.auth.directory.users.get(user_id)
    {
        let mut record = user.record.clone();
        record.teams.retain(|team| *team != id);
        record.updated_at = now_ms();
        replace(&gateway, store, &record).await?;
    }
    Ok(Json(shown(&team)))
}

/// Adds `member` to `team` (not yet saved), creating its user if there is none and adding
/// the team to the user's `teams`; 400 when already a member.
async fn add_member(
    gateway: &Gateway,
    store: &Editor<'_>,
    team: &mut TeamRecord,
    mut member: TeamMember,
) -> Result<(), ApiError> {
    let directory = &gateway.auth.directory;
    if member.user_id.is_none()
        && let Some(email) = &member.user_email
    {
        member.user_id = directory
            .users
            .all()
            .iter()
            .find(|user| user.record.user_email.as_ref() == Some(email))
            .map(|user| user.record.user_id.clone());
    }
    let user_id = member
        .user_id
        .clone()
        .unwrap_or_else(tollgate_core::ids::new_request_id);
    member.user_id = Some(user_id.clone());
    if team.member(&user_id).is_some() {
        return Err(GatewayError::invalid_param(
            "member",
            format!(
                "User `{user_id}` is already a member of team `{}`.",
                team.team_id
            ),
        )
        .into());
    }
    let now = now_ms();
    match directory.users.get(&user_id) {
        Some(user) => {
            let mut record = user.record.clone();
            if !record.teams.contains(&team.team_id) {
                record.teams.push(team.team_id.clone());
            }
            record.updated_at = now;
            replace(gateway, store, &record).await?;
        }
        None => {
            let record = UserRecord {
                user_id: user_id.clone(),
                user_alias: None,
                user_email: member.user_email.clone(),
                user_role: UserRole::InternalUser,
                teams: vec![team.team_id.clone()],
                organization_id: team.organization_id.clone(),
                models: Vec::new(),
                tpm_limit: None,
                rpm_limit: None,
                max_parallel_requests: None,
                metadata: Map::new(),
                created_at: now,
                updated_at: now,
                budget: Default::default(),
            };
            create(gateway, store, &record, "member").await?;
        }
    }
    team.members_with_roles.push(member);
    Ok(())
}

/// One member or a list of them.
fn members_field(
    body: &Map<String, Value>,
    field: &'static str,
) -> Result<Option<Vec<TeamMember>>, GatewayError> {
    let invalid = |err: serde_json::Error| {
        GatewayError::invalid_param(
            field,
            format!(
                "`{field}` must be a member ({{\"user_id\", \"user_email\", \"role\": \"admin\" or \"user\"}}) or a list of them: {err}"
            ),
        )
    };
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(list)) => list
            .iter()
            .map(|item| serde_json::from_value(item.clone()).map_err(invalid))
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(one) => Ok(Some(vec![
            serde_json::from_value(one.clone()).map_err(invalid)?,
        ])),
    }
}
