//! The virtual-key management API, with LiteLLM's paths and field names (master key only):
//! `/key/generate`, `/key/info`, `/key/list`, `/key/update`, `/key/delete`, `/key/block`,
//! `/key/unblock`, `/key/regenerate`. Each change is written to the store first, then to the
//! gateway's key cache, so the very next request sees it.

use std::borrow::Cow;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tollgate_core::error::{ErrorKind, GatewayError, Origin};
use tollgate_policy::keys::{generate_key, hash_key, mask_key, now_ms, token_of};
use tollgate_store::{KeyFilter, KeyRecord, Store, StoreError};

use crate::app::Gateway;
use crate::error::ApiError;
use crate::routes::query_param;

/// Budget fields LiteLLM takes on keys; refused until budgets exist, rather than accepted and
/// silently not enforced.
const NOT_YET: &[&str] = &[
    "max_budget",
    "soft_budget",
    "budget_duration",
    "model_max_budget",
    "budget_id",
];

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
    tpm_limit: Option<u64>,
    rpm_limit: Option<u64>,
    max_parallel_requests: Option<u64>,
    metadata: Option<Map<String, Value>>,
    tags: Option<Vec<String>>,
    aliases: Option<Map<String, Value>>,
    permissions: Option<Map<String, Value>>,
    blocked: Option<bool>,
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
    let store = admin(&gateway, &headers)?;
    let mut fields: KeyFields = parse(&body)?;
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
        created_by: Some("master_key".to_owned()),
    };
    apply(&mut record, fields, now)?;
    store.insert_key(&record).await.map_err(store_error)?;
    gateway.auth.keys.put(record.clone());
    let mut shown = key_json(&record);
    shown["key"] = json!(key);
    Ok(Json(shown))
}

pub(crate) async fn info(
    State(gateway): State<Arc<Gateway>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let store = admin(&gateway, &headers)?;
    let key = query_param(query.as_deref(), "key")
        .ok_or_else(|| GatewayError::invalid_param("key", "Missing required parameter: `key`."))?;
    let record = find(store, &key).await?;
    Ok(Json(
        json!({"key": record.token, "info": key_json(&record)}),
    ))
}

pub(crate) async fn list(
    State(gateway): State<Arc<Gateway>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let store = admin(&gateway, &headers)?;
    let query = query.as_deref();
    let number = |name: &'static str, default: u32, max: u32| -> Result<u32, GatewayError> {
        match query_param(query, name) {
            None => Ok(default),
            Some(text) => match text.parse::<u32>() {
                Ok(value) if (1..=max).contains(&value) => Ok(value),
                _ => Err(GatewayError::invalid_param(
                    name,
                    format!("`{name}` must be a whole number from 1 to {max}."),
                )),
            },
        }
    };
    let page = number("page", 1, u32::MAX)?;
    let size = number("size", 10, 1000)?;
    let filter = KeyFilter {
        user_id: query_param(query, "user_id"),
        team_id: query_param(query, "team_id"),
        organization_id: query_param(query, "organization_id"),
        key_alias: query_param(query, "key_alias"),
    };
    let full = query_param(query, "return_full_object").is_some_and(|v| v == "true");
    let found = store
        .list_keys(&filter, page, size)
        .await
        .map_err(store_error)?;
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
    let store = admin(&gateway, &headers)?;
    let mut fields: KeyFields = parse(&body)?;
    let mut record = find(store, &required_key(fields.key.take())?).await?;
    let now = now_ms();
    apply(&mut record, fields, now)?;
    save(&gateway, store, record, None).await
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
    let store = admin(&gateway, &headers)?;
    let fields: KeyFields = parse(&body)?;
    let mut record = find(store, &required_key(fields.key)?).await?;
    record.blocked = blocked;
    record.updated_at = now_ms();
    save(&gateway, store, record, None).await
}

/// `/key/regenerate` (`{"key": …}`) and `/key/{key}/regenerate`: a new key in place of the
/// old, which stops working at once; everything else about it is kept.
pub(crate) async fn regenerate(
    State(gateway): State<Arc<Gateway>>,
    headers: HeaderMap,
    path: Option<Path<String>>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let store = admin(&gateway, &headers)?;
    let named = match path {
        Some(Path(key)) => key,
        None => required_key(parse::<KeyFields>(&body)?.key)?,
    };
    let mut record = find(store, &named).await?;
    let old_token = record.token.clone();
    let key = generate_key();
    record.token = hash_key(&key);
    record.key_name = mask_key(&key);
    record.updated_at = now_ms();
    let Json(mut shown) = save(&gateway, store, record, Some(&old_token)).await?;
    shown["key"] = json!(key);
    Ok(Json(shown))
}

pub(crate) async fn delete(
    State(gateway): State<Arc<Gateway>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let store = admin(&gateway, &headers)?;
    let request: DeleteRequest = parse(&body)?;
    if request.keys.is_empty() && request.key_aliases.is_empty() {
        return Err(GatewayError::invalid_param(
            "keys",
            "Give the keys to delete in `keys` (keys or their tokens) or `key_aliases`.",
        )
        .into());
    }
    let mut tokens: Vec<String> = request.keys.iter().map(|key| token_of(key)).collect();
    for alias in &request.key_aliases {
        let filter = KeyFilter {
            key_alias: Some(alias.clone()),
            ..KeyFilter::default()
        };
        let found = store.list_keys(&filter, 1, 1).await.map_err(store_error)?;
        tokens.extend(found.keys.into_iter().map(|record| record.token));
    }
    let deleted = store.delete_keys(&tokens).await.map_err(store_error)?;
    if deleted.is_empty() {
        return Err(not_found("None of these keys exists.").into());
    }
    for token in &deleted {
        gateway.auth.keys.remove(token);
    }
    Ok(Json(json!({"deleted_keys": deleted})))
}

fn required_key(key: Option<String>) -> Result<String, GatewayError> {
    key.ok_or_else(|| GatewayError::invalid_param("key", "Missing required parameter: `key`."))
}

/// The store, for a caller with the master key.
fn admin<'g>(gateway: &'g Gateway, headers: &HeaderMap) -> Result<&'g Store, ApiError> {
    gateway.auth.authenticate(headers)?.require_admin()?;
    gateway.store.as_ref().ok_or_else(|| {
        GatewayError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            Origin::Gateway,
            ErrorKind::Internal,
            "This gateway runs without a database; virtual keys need one.",
        )
        .into()
    })
}

async fn find(store: &Store, key: &str) -> Result<KeyRecord, ApiError> {
    store
        .key(&token_of(key))
        .await
        .map_err(store_error)?
        .ok_or_else(|| not_found("No such key.").into())
}

/// Writes `record` (stored under `old_token` until now, if it changed) and updates the cache.
async fn save(
    gateway: &Gateway,
    store: &Store,
    record: KeyRecord,
    old_token: Option<&str>,
) -> Result<Json<Value>, ApiError> {
    let stored_under = old_token.unwrap_or(&record.token);
    if !store
        .replace_key(stored_under, &record)
        .await
        .map_err(store_error)?
    {
        return Err(not_found("No such key.").into());
    }
    if let Some(old) = old_token {
        gateway.auth.keys.remove(old);
    }
    gateway.auth.keys.put(record.clone());
    Ok(Json(key_json(&record)))
}

/// Applies the given fields; a field left out keeps its value.
fn apply(record: &mut KeyRecord, fields: KeyFields, now: i64) -> Result<(), GatewayError> {
    let limit = |value: Option<u64>, name: &'static str| -> Result<Option<i64>, GatewayError> {
        value
            .map(|v| {
                i64::try_from(v).map_err(|_| {
                    GatewayError::invalid_param(name, format!("`{name}` is too large."))
                })
            })
            .transpose()
    };
    if let Some(alias) = fields.key_alias {
        record.key_alias = Some(alias);
    }
    if let Some(models) = fields.models {
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
    if fields.tpm_limit.is_some() {
        record.tpm_limit = limit(fields.tpm_limit, "tpm_limit")?;
    }
    if fields.rpm_limit.is_some() {
        record.rpm_limit = limit(fields.rpm_limit, "rpm_limit")?;
    }
    if fields.max_parallel_requests.is_some() {
        record.max_parallel_requests =
            limit(fields.max_parallel_requests, "max_parallel_requests")?;
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

/// A request body, with errors naming the field; budget fields are refused until budgets
/// are enforced.
fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, GatewayError> {
    if let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(body)
        && let Some(field) = NOT_YET
            .iter()
            .find(|name| fields.get(**name).is_some_and(|value| !value.is_null()))
    {
        return Err(GatewayError::invalid_param(
            field,
            format!("`{field}` is not supported yet: budgets arrive with spend tracking."),
        ));
    }
    let deserializer = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(deserializer).map_err(|err| {
        let path = err.path().to_string();
        let message = format!("Invalid request body: `{path}`: {}", err.inner());
        match path.as_str() {
            "." | "" => GatewayError::invalid_request(message),
            _ => GatewayError::invalid_request(message).with_param(path),
        }
    })
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

fn not_found(message: &'static str) -> GatewayError {
    GatewayError::new(
        StatusCode::NOT_FOUND,
        Origin::Client,
        ErrorKind::NotFound,
        message,
    )
}

fn store_error(err: StoreError) -> ApiError {
    match err {
        StoreError::Conflict(what) => GatewayError::invalid_param(
            "key_alias",
            Cow::Owned(format!("{what}: key aliases are unique.")),
        )
        .into(),
        other => {
            tracing::error!(error = %other, "key store failed");
            GatewayError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                Origin::Gateway,
                ErrorKind::Internal,
                "The key store is unavailable; try again.",
            )
            .into()
        }
    }
}

/// Milliseconds since the epoch as `2026-11-21T09:30:00.000Z` (civil-from-days, proleptic
/// Gregorian).
fn iso8601(ms: i64) -> String {
    let (days, ms_of_day) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let seconds = ms_of_day / 1000;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60,
        ms_of_day % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_iso_8601_utc() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601(1_795_255_845_123), "2026-11-21T10:10:45.123Z");
        assert_eq!(iso8601(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }
}
