//! The virtual-key management API, with LiteLLM's paths and field names: `/key/generate`,
//! `/key/info`, `/key/list`, `/key/update`, `/key/delete`, `/key/block`, `/key/unblock`,
//! `/key/regenerate`. Admins manage every key, team admins their team's, users their own (see
//! `tollgate_policy::management`). Each change is written to the store first, then to the
//! gateway's directory, so the very next request sees it.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tollgate_core::error::GatewayError;
use tollgate_policy::budgets::Budget;
use tollgate_policy::keys::{generate_key, hash_key, key_model_id, mask_key, now_ms, token_of};
use tollgate_policy::management::{Manager, forbidden};
use tollgate_store::{
    Action, BudgetRecord, EntityKind, KeyFilter, KeyRecord, ModelBudget, OrganizationRecord, Store,
    TeamRecord,
};

use crate::app::Gateway;
use crate::error::ApiError;
use crate::routes::admin::{
    Editor, check_budget_field, check_known, check_models, iso8601, limit, manager, not_found,
    number_param, parse, required, store_error,
};
use crate::routes::query_param;

/// A field that was given, perhaps as `null` (`Some(None)`), as opposed to left out (`None`,
/// by `#[serde(default)]`).
fn given<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// The fields a key is created or updated with. `None`: not given.
#[derive(Debug, Default, Deserialize)]
struct KeyFields {
    /// Generate: a key chosen by the caller instead of a generated one. Elsewhere: the key
    /// (or its token) the request is about.
    key: Option<String>,
    key_alias: Option<String>,
    models: Option<Vec<String>>,
    user_id: Option<String>,
    team_id: Option<String>,
    organization_id: Option<String>,
    /// `30d`, `12h`, …; `null` for no expiry.
    duration: Option<String>,
    /// Limits: left out, keep; `null`, remove.
    #[serde(default, deserialize_with = "given")]
    tpm_limit: Option<Option<u64>>,
    #[serde(default, deserialize_with = "given")]
    rpm_limit: Option<Option<u64>>,
    #[serde(default, deserialize_with = "given")]
    max_parallel_requests: Option<Option<u64>>,
    metadata: Option<Map<String, Value>>,
    tags: Option<Vec<String>>,
    aliases: Option<Map<String, Value>>,
    permissions: Option<Map<String, Value>>,
    blocked: Option<bool>,
    /// Budget: left out, keep; `null`, remove.
    #[serde(default, deserialize_with = "given")]
    max_budget: Option<Option<Value>>,
    #[serde(default, deserialize_with = "given")]
    soft_budget: Option<Option<Value>>,
    #[serde(default, deserialize_with = "given")]
    budget_duration: Option<Option<Value>>,
    #[serde(default, deserialize_with = "given")]
    budget_id: Option<Option<String>>,
    /// `{model: {"budget_limit": dollars, "time_period": "1d"}}` (or `{model: dollars}`).
    #[serde(default, deserialize_with = "given")]
    model_max_budget: Option<Option<Map<String, Value>>>,
}

#[derive(Debug, Deserialize)]
struct DeleteRequest {
    #[serde(default)]
    keys: Vec<String>,
    #[serde(default)]
    key_aliases: Vec<String>,
}

pub(crate) async fn generate(
    State(gateway): State<Arc<Gateway>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let (manager, editor) = manager(&gateway, &headers)?;
    let store = &editor;
    let mut fields: KeyFields = parse(&body)?;
    // A user making their own key need not name themselves.
    if fields.user_id.is_none() && !manager.is_admin() {
        fields.user_id = manager.user_id().map(str::to_owned);
    }
    if !manager.may_create_key(fields.user_id.as_deref(), fields.team_id.as_deref()) {
        return Err(forbidden(
            "You may create keys only for yourself, or for teams you administer.",
        )
        .into());
    }
    let key = match fields.key.take() {
        Some(key) if !key.starts_with("sk-") || key.len() < 8 => {
            return Err(GatewayError::invalid_param(
                "key",
                "`key` must start with `sk-` and be at least 8 characters.",
            )
            .into());
        }
        Some(key) => key,
        None => generate_key(),
    };
    let now = now_ms();
    let mut record = KeyRecord {
        token: hash_key(&key),
        key_name: mask_key(&key),
        key_alias: None,
        user_id: None,
        team_id: None,
        organization_id: None,
        models: Vec::new(),
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
        created_by: Some(creator(&manager)),
        budget: Default::default(),
        model_max_budget: Default::default(),
    };
    apply(&gateway, &mut record, fields, now)?;
    store
        .insert_key(&record, &store.change(Action::Created))
        .await
        .map_err(store_error("key_alias"))?;
    gateway.auth.directory.keys.put(record.clone());
    take_in_budget(&gateway, store, &record).await;
    let mut shown = key_json(&record);
    shown["key"] = json!(key);
    Ok(Json(shown))
}

pub(crate) async fn info(
    State(gateway): State<Arc<Gateway>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let (manager, editor) = manager(&gateway, &headers)?;
    let store = &editor;
    // Without `key`, the caller's own key, as LiteLLM answers; a key may always read itself
    // (what it has left to spend, say), whoever it belongs to.
    let own = editor.caller_key_hash();
    let asked = query_param(query.as_deref(), "key");
    let record = match own {
        Some(own) if asked.is_none() => find_token(store, own).await?,
        _ => find(store, &required(asked, "key")?).await?,
    };
    if !manager.sees_key(&record) && own != Some(record.token.as_str()) {
        return Err(not_found("No such key.").into());
    }
    let mut info = key_json(&record);
    let budget = crate::budgets::effective(&gateway, &record.budget);
    crate::budgets::show_spend(
        &gateway,
        store,
        &mut info,
        EntityKind::Key,
        &record.token,
        budget,
    )
    .await
    .map_err(store_error("key"))?;
    // What the key has spent this period on each model it has a budget for, as LiteLLM shows.
    let mut model_spend = Map::new();
    for (model, budget) in Budget::per_model(&record) {
        let id = key_model_id(&record.token, &model);
        let (spent, _) = gateway
            .budgets
            .standing(EntityKind::KeyModel, &id, &budget)
            .await;
        model_spend.insert(model, json!(spent.as_f64()));
    }
    info["model_spend"] = Value::Object(model_spend);
    Ok(Json(json!({"key": record.token, "info": info})))
}

pub(crate) async fn list(
    State(gateway): State<Arc<Gateway>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let (manager, editor) = manager(&gateway, &headers)?;
    let store = &editor;
    let query = query.as_deref();
    let page = number_param(query, "page", 1, u32::MAX)?;
    let size = number_param(query, "size", 10, 1000)?;
    let mut filter = KeyFilter {
        user_id: query_param(query, "user_id"),
        team_id: query_param(query, "team_id"),
        organization_id: query_param(query, "organization_id"),
        key_alias: query_param(query, "key_alias"),
    };
    // Others see their team's keys if they administer it, else only their own.
    if !manager.reads_all()
        && !filter
            .team_id
            .as_deref()
            .is_some_and(|team| manager.administers(team))
    {
        filter.user_id = Some(
            manager
                .user_id()
                .ok_or_else(|| forbidden("This key belongs to no user; it may list no keys."))?
                .to_owned(),
        );
    }
    let full = query_param(query, "return_full_object").is_some_and(|v| v == "true");
    let found = store
        .list_keys(&filter, page, size)
        .await
        .map_err(store_error("key"))?;
    let keys: Vec<Value> = found
        .keys
        .iter()
        .map(|record| {
            if full {
                key_json(record)
            } else {
                json!(record.token)
            }
        })
        .collect();
    Ok(Json(json!({
        "keys": keys,
        "total_count": found.total,
        "current_page": page,
        "total_pages": found.total.div_ceil(u64::from(size)),
    })))
}

pub(crate) async fn update(
    State(gateway): State<Arc<Gateway>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let (manager, editor) = manager(&gateway, &headers)?;
    let store = &editor;
    let mut fields: KeyFields = parse(&body)?;
    let mut record = changeable(&manager, store, &required(fields.key.take(), "key")?).await?;
    if (fields.user_id.is_some() || fields.team_id.is_some())
        && !manager.may_create_key(
            fields.user_id.as_deref().or(record.user_id.as_deref()),
            fields.team_id.as_deref().or(record.team_id.as_deref()),
        )
    {
        return Err(forbidden("You may not move this key to that user or team.").into());
    }
    let now = now_ms();
    apply(&gateway, &mut record, fields, now)?;
    save(&gateway, store, record, None, Action::Updated).await
}

pub(crate) async fn block(
    State(gateway): State<Arc<Gateway>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    set_blocked(gateway, headers, body, true).await
}

pub(crate) async fn unblock(
    State(gateway): State<Arc<Gateway>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    set_blocked(gateway, headers, body, false).await
}

async fn set_blocked(
    gateway: Arc<Gateway>,
    headers: HeaderMap,
    body: Bytes,
    blocked: bool,
) -> Result<Json<Value>, ApiError> {
    let (manager, editor) = manager(&gateway, &headers)?;
    let store = &editor;
    let fields: KeyFields = parse(&body)?;
    let mut record = changeable(&manager, store, &required(fields.key, "key")?).await?;
    record.blocked = blocked;
    record.updated_at = now_ms();
    let action = if blocked {
        Action::Blocked
    } else {
        Action::Unblocked
    };
    save(&gateway, store, record, None, action).await
}

/// `/key/regenerate` (`{"key": …}`) and `/key/{key}/regenerate`: a new key in place of the
/// old, which stops working at once; everything else about it is kept.
pub(crate) async fn regenerate(
    State(gateway): State<Arc<Gateway>>,
    headers: HeaderMap,
    path: Option<Path<String>>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let (manager, editor) = manager(&gateway, &headers)?;
    let store = &editor;
    let named = match path {
        Some(Path(key)) => key,
        None => required(parse::<KeyFields>(&body)?.key, "key")?,
    };
    let mut record = changeable(&manager, store, &named).await?;
    let old_token = record.token.clone();
    let key = generate_key();
    record.token = hash_key(&key);
    record.key_name = mask_key(&key);
    record.updated_at = now_ms();
    let Json(mut shown) = save(
        &gateway,
        store,
        record,
        Some(&old_token),
        Action::Regenerated,
    )
    .await?;
    shown["key"] = json!(key);
    Ok(Json(shown))
}

pub(crate) async fn delete(
    State(gateway): State<Arc<Gateway>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let (manager, editor) = manager(&gateway, &headers)?;
    let store = &editor;
    let request: DeleteRequest = parse(&body)?;
    if request.keys.is_empty() && request.key_aliases.is_empty() {
        return Err(GatewayError::invalid_param(
            "keys",
            "Give the keys to delete in `keys` (keys or their tokens) or `key_aliases`.",
        )
        .into());
    }
    let mut records = Vec::new();
    for key in &request.keys {
        records.extend(
            store
                .key(&token_of(key))
                .await
                .map_err(store_error("keys"))?,
        );
    }
    for alias in &request.key_aliases {
        let filter = KeyFilter {
            key_alias: Some(alias.clone()),
            ..KeyFilter::default()
        };
        let found = store
            .list_keys(&filter, 1, 1)
            .await
            .map_err(store_error("key_aliases"))?;
        records.extend(found.keys);
    }
    if let Some(record) = records
        .iter()
        .find(|record| !manager.may_change_key(record))
    {
        return Err(if manager.sees_key(record) {
            forbidden(format!("You may not delete key `{}`.", record.key_name))
        } else {
            not_found("None of these keys exists.")
        }
        .into());
    }
    let tokens: Vec<String> = records.into_iter().map(|record| record.token).collect();
    let deleted = store
        .delete_keys(&tokens, &store.change(Action::Deleted))
        .await
        .map_err(store_error("keys"))?;
    if deleted.is_empty() {
        return Err(not_found("None of these keys exists.").into());
    }
    for token in &deleted {
        gateway.auth.directory.keys.remove(token);
    }
    Ok(Json(json!({"deleted_keys": deleted})))
}

/// Deletes every key matching any of `filters` (the keys of deleted teams or users) from the
/// store and the directory; returns their tokens.
pub(crate) async fn delete_keys_matching(
    gateway: &Gateway,
    store: &Editor<'_>,
    filters: Vec<KeyFilter>,
) -> Result<Vec<String>, ApiError> {
    let mut tokens = Vec::new();
    for filter in filters {
        let found = store
            .list_keys(&filter, 1, u32::MAX)
            .await
            .map_err(store_error("keys"))?;
        tokens.extend(found.keys.into_iter().map(|key| key.token));
    }
    let deleted = store
        .delete_keys(&tokens, &store.change(Action::Deleted))
        .await
        .map_err(store_error("keys"))?;
    for token in &deleted {
        gateway.auth.directory.keys.remove(token);
    }
    Ok(deleted)
}

/// Who made a key, as its `created_by` says.
fn creator(manager: &Manager) -> String {
    manager.user_id().unwrap_or("master_key").to_owned()
}

async fn find(store: &Store, key: &str) -> Result<KeyRecord, ApiError> {
    find_token(store, &token_of(key)).await
}

async fn find_token(store: &Store, token: &str) -> Result<KeyRecord, ApiError> {
    store
        .key(token)
        .await
        .map_err(store_error("key"))?
        .ok_or_else(|| not_found("No such key.").into())
}

/// A key the caller may change: 404 when they may not even see it, 403 when they only may.
async fn changeable(manager: &Manager, store: &Store, key: &str) -> Result<KeyRecord, ApiError> {
    let record = find(store, key).await?;
    if manager.may_change_key(&record) {
        Ok(record)
    } else if manager.sees_key(&record) {
        Err(forbidden("You may not change this key.").into())
    } else {
        Err(not_found("No such key.").into())
    }
}

/// Writes `record` (stored under `old_token` until now, if it changed) and updates the cache.
async fn save(
    gateway: &Gateway,
    store: &Editor<'_>,
    record: KeyRecord,
    old_token: Option<&str>,
    action: Action,
) -> Result<Json<Value>, ApiError> {
    let stored_under = old_token.unwrap_or(&record.token);
    if !store
        .replace_key(stored_under, &record, &store.change(action))
        .await
        .map_err(store_error("key_alias"))?
    {
        return Err(not_found("No such key.").into());
    }
    if let Some(old) = old_token {
        gateway.auth.directory.keys.remove(old);
    }
    gateway.auth.directory.keys.put(record.clone());
    take_in_budget(gateway, store, &record).await;
    Ok(Json(key_json(&record)))
}

/// A key's budgets start from what the store says it has spent this period.
async fn take_in_budget(gateway: &Gateway, store: &Store, record: &KeyRecord) {
    for (kind, id, budget) in crate::budgets::key_budgets(gateway, record) {
        if let Err(err) = crate::budgets::load_one(gateway, store, kind, &id, &budget).await {
            tracing::warn!(error = %err, key = %record.key_name, "cannot read this key's spend so far from the store; its budget counts from this gateway's own figure");
        }
    }
}

/// A key's `model_max_budget`, each entry checked: a model this gateway serves, a budget that
/// reads.
fn model_budgets(
    gateway: &Gateway,
    given: Map<String, Value>,
) -> Result<BTreeMap<String, ModelBudget>, GatewayError> {
    let field = "model_max_budget";
    given
        .into_iter()
        .map(|(model, value)| {
            if gateway.router.group(&model).is_none() {
                return Err(GatewayError::invalid_param(
                    field,
                    format!("`{field}` names `{model}`, which is not a model on this gateway."),
                ));
            }
            let budget = ModelBudget::from_litellm(&value).map_err(|reason| {
                GatewayError::invalid_param(field, format!("`{field}.{model}`: {reason}."))
            })?;
            Ok((model, budget))
        })
        .collect()
}

/// Applies the given fields; a field left out keeps its value. Teams and organisations named
/// must exist.
fn apply(
    gateway: &Gateway,
    record: &mut KeyRecord,
    fields: KeyFields,
    now: i64,
) -> Result<(), GatewayError> {
    check_known::<TeamRecord>(gateway, "team_id", fields.team_id.as_deref())?;
    check_known::<OrganizationRecord>(
        gateway,
        "organization_id",
        fields.organization_id.as_deref(),
    )?;
    if let Some(alias) = fields.key_alias {
        record.key_alias = Some(alias);
    }
    if let Some(models) = fields.models {
        check_models(gateway, &models)?;
        record.models = models;
    }
    if fields.user_id.is_some() {
        record.user_id = fields.user_id;
    }
    if fields.team_id.is_some() {
        record.team_id = fields.team_id;
    }
    if fields.organization_id.is_some() {
        record.organization_id = fields.organization_id;
    }
    if let Some(duration) = fields.duration {
        let parsed = tollgate_core::duration::parse_duration(&duration).map_err(|reason| {
            GatewayError::invalid_param(
                "duration",
                format!("`duration` `{duration}` is not a duration like `30d` or `12h`: {reason}"),
            )
        })?;
        record.expires_at = Some(now + parsed.as_millis() as i64);
    }
    if let Some(tpm) = fields.tpm_limit {
        record.tpm_limit = limit(tpm, "tpm_limit")?;
    }
    if let Some(rpm) = fields.rpm_limit {
        record.rpm_limit = limit(rpm, "rpm_limit")?;
    }
    if let Some(parallel) = fields.max_parallel_requests {
        record.max_parallel_requests = limit(parallel, "max_parallel_requests")?;
    }
    let budget = [
        ("max_budget", fields.max_budget),
        ("soft_budget", fields.soft_budget),
        ("budget_duration", fields.budget_duration),
    ];
    for (field, given) in budget {
        let Some(value) = given else { continue };
        let value = value.unwrap_or(Value::Null);
        check_budget_field(field, &value)?;
        match field {
            "max_budget" => record.budget.max_budget = value.as_f64(),
            "soft_budget" => record.budget.soft_budget = value.as_f64(),
            _ => record.budget.budget_duration = value.as_str().map(str::to_owned),
        }
    }
    if let Some(budget_id) = fields.budget_id {
        check_known::<BudgetRecord>(gateway, "budget_id", budget_id.as_deref())?;
        record.budget.budget_id = budget_id;
    }
    if let Some(per_model) = fields.model_max_budget {
        record.model_max_budget = model_budgets(gateway, per_model.unwrap_or_default())?;
    }
    if let Some(metadata) = fields.metadata {
        record.metadata = metadata;
    }
    if let Some(tags) = fields.tags {
        record.tags = tags;
    }
    if let Some(aliases) = fields.aliases {
        if let Some((alias, _)) = aliases.iter().find(|(_, target)| !target.is_string()) {
            return Err(GatewayError::invalid_param(
                "aliases",
                format!("`aliases.{alias}` must be a model name."),
            ));
        }
        record.aliases = aliases;
    }
    if let Some(permissions) = fields.permissions {
        record.permissions = permissions;
    }
    if let Some(blocked) = fields.blocked {
        record.blocked = blocked;
    }
    record.updated_at = now;
    Ok(())
}

/// A key record as the API shows it: LiteLLM's fields, times as ISO 8601.
fn key_json(record: &KeyRecord) -> Value {
    let mut shown = serde_json::to_value(record).expect("a key record serialises");
    shown["expires"] = json!(record.expires_at.map(iso8601));
    shown["created_at"] = json!(iso8601(record.created_at));
    shown["updated_at"] = json!(iso8601(record.updated_at));
    if let Some(object) = shown.as_object_mut() {
        object.remove("expires_at");
    }
    shown
}
