//! What every management route shares: who is calling and what they may do, request bodies
//! read with errors that name the field, store failures as API errors, records as shown.

use std::borrow::Cow;
use std::ops::Deref;

use axum::Json;
use axum::http::{HeaderMap, StatusCode};
use serde::Serialize;
use serde_json::Map;
use serde_json::Value;
use tollgate_core::calendar::BudgetPeriod;
pub(crate) use tollgate_core::calendar::{day_start_ms, iso8601};
use tollgate_core::error::{ErrorKind, GatewayError, Origin};
use tollgate_policy::auth::Caller;
use tollgate_policy::directory::{ALL_TEAM_MODELS, Listed};
use tollgate_policy::management::Manager;
use tollgate_store::{Action, Actor, BudgetRecord, Change, Entity, Store, StoreError};

use crate::app::Gateway;
use crate::error::ApiError;

/// The budget fields every budgeted record takes.
pub(crate) const BUDGET_FIELDS: [&str; 3] = ["max_budget", "soft_budget", "budget_duration"];

/// A budget field's value, checked: amounts are non-negative dollars, durations like `30d`,
/// `1mo`, `24h`.
pub(crate) fn check_budget_field(field: &str, value: &Value) -> Result<(), GatewayError> {
    let fine = match (field, value) {
        (_, Value::Null) => true,
        ("budget_duration", Value::String(text)) => BudgetPeriod::parse(text).is_some(),
        ("budget_duration", _) => false,
        (_, Value::Number(number)) => number
            .as_f64()
            .is_some_and(|amount| amount.is_finite() && amount >= 0.0),
        _ => false,
    };
    if fine {
        return Ok(());
    }
    let expected = if field == "budget_duration" {
        "a period like `30d`, `7d`, `1d`, `1mo`, `24h` or `30m`"
    } else {
        "a non-negative amount of dollars"
    };
    Err(
        GatewayError::invalid_request(format!("`{field}` must be {expected}, got {value}."))
            .with_param(field.to_owned())
            .with_code("invalid_value"),
    )
}

/// The store as one management caller changes it: reads go straight through, every write is
/// audited under the caller's name.
pub(crate) struct Editor<'g> {
    store: &'g Store,
    actor: Actor,
}

impl Editor<'_> {
    /// A change by this caller, now.
    pub(crate) fn change(&self, action: Action) -> Change<'_> {
        self.actor.change(action)
    }

    /// The hash of the virtual key the caller authenticated with (none for the master key).
    pub(crate) fn caller_key_hash(&self) -> Option<&str> {
        self.actor.changed_by_api_key.as_deref()
    }
}

impl Deref for Editor<'_> {
    type Target = Store;

    fn deref(&self) -> &Store {
        self.store
    }
}

/// Who a caller is in the audit log: the user behind their key (else its alias, else its
/// masked form) and the key's hash; `master_key` for the master key.
fn actor(caller: &Caller) -> Actor {
    match caller {
        Caller::Key(principal) => {
            let key = &principal.key.record;
            Actor {
                changed_by: key
                    .user_id
                    .clone()
                    .or_else(|| key.key_alias.clone())
                    .unwrap_or_else(|| key.key_name.clone()),
                changed_by_api_key: Some(key.token.clone()),
            }
        }
        Caller::Master | Caller::Anonymous => Actor {
            changed_by: "master_key".to_owned(),
            changed_by_api_key: None,
        },
    }
}

/// The caller's management powers, and the store as they change it (503 when the gateway
/// runs without one).
pub(crate) fn manager<'g>(
    gateway: &'g Gateway,
    headers: &HeaderMap,
) -> Result<(Manager, Editor<'g>), ApiError> {
    let caller = gateway.auth.authenticate(headers)?;
    let manager = Manager::of(&caller, &gateway.auth.directory)?;
    let store = gateway.store.as_ref().ok_or_else(|| {
        GatewayError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            Origin::Gateway,
            ErrorKind::Internal,
            "This gateway runs without a database; the management API needs one.",
        )
    })?;
    let actor = actor(&caller);
    Ok((manager, Editor { store, actor }))
}

/// A request body, with errors naming the field.
pub(crate) fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, GatewayError> {
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

/// A required field that was left out.
pub(crate) fn required<T>(value: Option<T>, field: &'static str) -> Result<T, GatewayError> {
    value.ok_or_else(|| {
        GatewayError::invalid_param(field, format!("Missing required parameter: `{field}`."))
    })
}

pub(crate) fn not_found(message: impl Into<Cow<'static, str>>) -> GatewayError {
    GatewayError::new(
        StatusCode::NOT_FOUND,
        Origin::Client,
        ErrorKind::NotFound,
        message,
    )
}

/// A store failure as the API answers it: a taken unique value is the caller's 400 on
/// `field`; anything else is logged and a 503.
pub(crate) fn store_error(field: &'static str) -> impl Fn(StoreError) -> ApiError {
    move |err| match err {
        StoreError::Conflict(what) => {
            GatewayError::invalid_param(field, format!("{what} already exists.")).into()
        }
        other => {
            tracing::error!(error = %other, "store failed");
            GatewayError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                Origin::Gateway,
                ErrorKind::Internal,
                "The store is unavailable; try again.",
            )
            .into()
        }
    }
}

/// `base` with the `updatable` fields of `body` written over it: the one way records are
/// created (over a blank) and updated (over the stored one). Fields outside `updatable` are
/// ignored, as LiteLLM ignores fields it does not know; a field of the wrong type, or a
/// negative limit, is a 400 naming it.
pub(crate) fn merged<E: Entity>(
    base: &E,
    body: &Map<String, Value>,
    updatable: &[&str],
) -> Result<E, GatewayError> {
    let mut value = serde_json::to_value(base).expect("records serialise");
    for (field, given) in body {
        if !updatable.contains(&field.as_str()) {
            continue;
        }
        let is_limit = field.ends_with("_limit") || field == "max_parallel_requests";
        if is_limit && given.as_i64().is_some_and(|n| n < 0) {
            return Err(
                GatewayError::invalid_request(format!("`{field}` must not be negative."))
                    .with_param(field.clone()),
            );
        }
        if BUDGET_FIELDS.contains(&field.as_str()) {
            check_budget_field(field, given)?;
        }
        value[field.as_str()] = given.clone();
    }
    serde_path_to_error::deserialize(value).map_err(|err| {
        let path = err.path().to_string();
        GatewayError::invalid_request(format!("Invalid request body: `{path}`: {}", err.inner()))
            .with_param(path)
    })
}

/// A JSON object body.
pub(crate) fn object(body: &[u8]) -> Result<Map<String, Value>, GatewayError> {
    parse::<Map<String, Value>>(body)
}

/// A string field of a body.
pub(crate) fn text_field(
    body: &Map<String, Value>,
    field: &'static str,
) -> Result<Option<String>, GatewayError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) if !text.is_empty() => Ok(Some(text.clone())),
        Some(_) => Err(GatewayError::invalid_param(
            field,
            format!("`{field}` must be a non-empty string."),
        )),
    }
}

/// A list-of-ids field of a body (required, non-empty).
pub(crate) fn ids_field(
    body: &Map<String, Value>,
    field: &'static str,
) -> Result<Vec<String>, GatewayError> {
    let ids: Option<Vec<String>> = body
        .get(field)
        .map(|value| serde_json::from_value(value.clone()))
        .transpose()
        .map_err(|_| {
            GatewayError::invalid_param(field, format!("`{field}` must be a list of ids."))
        })?;
    match ids {
        Some(ids) if !ids.is_empty() => Ok(ids),
        _ => Err(GatewayError::invalid_param(
            field,
            format!("Missing required parameter: `{field}` (a list of ids)."),
        )),
    }
}

/// The records an `/…/info` call asks about, as LiteLLM takes them: one by `?{param}=`, else
/// the body's `{field}` list (required, non-empty).
pub(crate) fn ids_asked(
    query: Option<&str>,
    param: &'static str,
    body: &[u8],
    field: &'static str,
) -> Result<Vec<String>, GatewayError> {
    match crate::routes::query_param(query, param) {
        Some(id) => Ok(vec![id]),
        None => ids_field(&object(body)?, field),
    }
}

/// The stored record with this id: 404 when there is none.
pub(crate) async fn stored<E: Entity>(store: &Store, id: &str) -> Result<E, ApiError> {
    store
        .get::<E>(id)
        .await
        .map_err(store_error("id"))?
        .ok_or_else(|| not_found(format!("No {} `{id}` exists.", E::NAME)).into())
}

/// Adds a record to the store, then to the directory.
pub(crate) async fn create<E: Listed>(
    gateway: &Gateway,
    store: &Editor<'_>,
    record: &E,
    id_field: &'static str,
) -> Result<(), ApiError> {
    check_shared_budget(gateway, record)?;
    store
        .insert(record, &store.change(Action::Created))
        .await
        .map_err(store_error(id_field))?;
    E::table(&gateway.auth.directory).put(record.clone());
    crate::budgets::take_in(gateway, store, record).await;
    Ok(())
}

/// Rewrites a record in the store, then in the directory.
pub(crate) async fn replace<E: Listed>(
    gateway: &Gateway,
    store: &Editor<'_>,
    record: &E,
) -> Result<(), ApiError> {
    replace_as(gateway, store, record, Action::Updated).await
}

/// `replace`, logged as `action`.
pub(crate) async fn replace_as<E: Listed>(
    gateway: &Gateway,
    store: &Editor<'_>,
    record: &E,
    action: Action,
) -> Result<(), ApiError> {
    check_shared_budget(gateway, record)?;
    let replaced = store
        .replace(record, &store.change(action))
        .await
        .map_err(store_error("id"))?;
    if !replaced {
        return Err(not_found(format!("No {} `{}` exists.", E::NAME, record.id())).into());
    }
    E::table(&gateway.auth.directory).put(record.clone());
    crate::budgets::take_in(gateway, store, record).await;
    Ok(())
}

/// Deletes records from the store, then from the directory; 404 when none existed.
pub(crate) async fn remove<E: Listed>(
    gateway: &Gateway,
    store: &Editor<'_>,
    ids: &[String],
) -> Result<Vec<String>, ApiError> {
    let deleted = store
        .delete::<E>(ids, &store.change(Action::Deleted))
        .await
        .map_err(store_error("id"))?;
    if deleted.is_empty() {
        return Err(not_found(format!("None of these {}s exists.", E::NAME)).into());
    }
    for id in &deleted {
        E::table(&gateway.auth.directory).remove(id);
    }
    Ok(deleted)
}

/// 400 naming `budget_id` when a record names a shared budget that does not exist.
fn check_shared_budget<E: Entity>(gateway: &Gateway, record: &E) -> Result<(), GatewayError> {
    let named = record
        .budget()
        .and_then(|fields| fields.budget_id.as_deref());
    check_known::<BudgetRecord>(gateway, "budget_id", named)
}

/// A new record's id: the one given, else a fresh UUID-like one.
pub(crate) fn new_id(given: Option<String>) -> String {
    given.unwrap_or_else(tollgate_core::ids::new_request_id)
}

/// 400 unless the record `id` refers to (in `field`) exists.
pub(crate) fn check_known<E: Listed>(
    gateway: &Gateway,
    field: &'static str,
    id: Option<&str>,
) -> Result<(), GatewayError> {
    match id {
        Some(id) if E::table(&gateway.auth.directory).get(id).is_none() => Err(
            GatewayError::invalid_param(field, format!("No {} `{id}` exists.", E::NAME)),
        ),
        _ => Ok(()),
    }
}

/// 400 naming `models` unless each entry is a model this gateway serves (a group, an alias, a
/// name a wildcard deployment serves), a `*` pattern, or `all-team-models`.
pub(crate) fn check_models(gateway: &Gateway, models: &[String]) -> Result<(), GatewayError> {
    let unknown = models.iter().find(|model| {
        model.as_str() != ALL_TEAM_MODELS
            && !model.contains('*')
            && gateway.router.group(model).is_none()
    });
    match unknown {
        Some(model) => Err(GatewayError::invalid_param(
            "models",
            format!("`models` names `{model}`, which is not a model on this gateway."),
        )),
        None => Ok(()),
    }
}

/// `check_models` on the record's models, when the body gives them.
fn check_given_models<E: Entity>(
    gateway: &Gateway,
    body: &Map<String, Value>,
    record: &E,
) -> Result<(), GatewayError> {
    if body.get("models").is_some_and(|models| !models.is_null()) {
        check_models(gateway, record.models())?;
    }
    Ok(())
}

/// An admin's `/…/new`: `blank` (made from the body and the time) with the body's
/// `updatable` fields written over it, saved under `id_field`.
pub(crate) async fn new_record<E: Listed>(
    gateway: &Gateway,
    headers: &HeaderMap,
    body: &[u8],
    id_field: &'static str,
    updatable: &[&str],
    blank: impl FnOnce(&Map<String, Value>, i64) -> Result<E, GatewayError>,
) -> Result<Json<Value>, ApiError> {
    let (manager, store) = manager(gateway, headers)?;
    manager.require_admin()?;
    let store = &store;
    let body = object(body)?;
    let record = merged(
        &blank(&body, tollgate_policy::keys::now_ms())?,
        &body,
        updatable,
    )?;
    check_given_models(gateway, &body, &record)?;
    create(gateway, store, &record, id_field).await?;
    Ok(Json(shown(&record)))
}

/// An admin's `/…/update`: the stored record named by `id_field` with the body's `updatable`
/// fields written over it, `check`ed, saved.
pub(crate) async fn update_record<E: Listed>(
    gateway: &Gateway,
    headers: &HeaderMap,
    body: &[u8],
    id_field: &'static str,
    updatable: &[&str],
    check: impl Fn(&E) -> Result<(), GatewayError>,
) -> Result<Json<Value>, ApiError> {
    let (manager, store) = manager(gateway, headers)?;
    manager.require_admin()?;
    let store = &store;
    let body = object(body)?;
    let id = required(text_field(&body, id_field)?, id_field)?;
    let mut record = merged(&stored::<E>(store, &id).await?, &body, updatable)?;
    check_given_models(gateway, &body, &record)?;
    check(&record)?;
    record.set_updated_at(tollgate_policy::keys::now_ms());
    replace(gateway, store, &record).await?;
    Ok(Json(shown(&record)))
}

/// Every record of a kind, for those who read everything.
pub(crate) fn list_all<E: Listed>(
    gateway: &Gateway,
    headers: &HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let (manager, _) = manager(gateway, headers)?;
    manager.require_read_all()?;
    let all = E::table(&gateway.auth.directory)
        .all()
        .iter()
        .map(|cached| shown(&cached.record))
        .collect();
    Ok(Json(Value::Array(all)))
}

/// A whole-number query parameter from 1 to `max`; `default` when absent.
/// A `YYYY-MM-DD` query parameter, as the first millisecond of that day (UTC).
pub(crate) fn date_param(
    query: Option<&str>,
    name: &'static str,
) -> Result<Option<i64>, GatewayError> {
    crate::routes::query_param(query, name)
        .map(|text| {
            day_start_ms(&text).ok_or_else(|| {
                GatewayError::invalid_param(name, format!("`{name}` must be a date: YYYY-MM-DD."))
            })
        })
        .transpose()
}

/// One page of a listing, as LiteLLM's paged endpoints answer: the items under `name`, and
/// where the page stands.
pub(crate) fn paged(name: &str, items: Vec<Value>, total: u64, page: u32, size: u32) -> Value {
    serde_json::json!({
        name: items,
        "total": total,
        "page": page,
        "page_size": size,
        "total_pages": total.div_ceil(u64::from(size)),
    })
}

pub(crate) fn number_param(
    query: Option<&str>,
    name: &'static str,
    default: u32,
    max: u32,
) -> Result<u32, GatewayError> {
    match crate::routes::query_param(query, name) {
        None => Ok(default),
        Some(text) => match text.parse::<u32>() {
            Ok(value) if (1..=max).contains(&value) => Ok(value),
            _ => Err(GatewayError::invalid_param(
                name,
                format!("`{name}` must be a whole number from 1 to {max}."),
            )),
        },
    }
}

/// A limit given to the API, as stored.
pub(crate) fn limit(value: Option<u64>, field: &'static str) -> Result<Option<i64>, GatewayError> {
    value
        .map(|v| {
            i64::try_from(v)
                .map_err(|_| GatewayError::invalid_param(field, format!("`{field}` is too large.")))
        })
        .transpose()
}

/// A record as the API shows it: its fields, with `created_at` and `updated_at` as ISO 8601.
pub(crate) fn shown<T: Serialize>(record: &T) -> Value {
    let mut value = serde_json::to_value(record).expect("records serialise");
    for field in ["created_at", "updated_at"] {
        if let Some(ms) = value.get(field).and_then(Value::as_i64) {
            value[field] = Value::String(iso8601(ms));
        }
    }
    value
}
