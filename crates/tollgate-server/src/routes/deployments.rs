//! `/model/new`, `/model/update`, `/model/delete`, `/model/info` and `/v1/model/info`
//! (LiteLLM's paths and shapes): deployments added, changed and removed at run time, and every
//! deployment — the config file's and the stored ones — described without its secrets.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use serde_json::{Map, Value, json};
use tollgate_core::error::GatewayError;
use tollgate_core::wildcard::Pattern;
use tollgate_policy::keys::now_ms;
use tollgate_policy::management::Manager;
use tollgate_router::Member;
use tollgate_store::{Action, ModelRecord, SECRET_FIELDS};

use crate::app::Gateway;
use crate::error::ApiError;
use crate::routes::admin::{
    Editor, manager, new_id, not_found, object, required, store_error, stored, text_field,
};
use crate::routes::query_param;

/// `{"model_name", "litellm_params": {…}, "model_info": {…}}`, as a `model_list` entry.
pub(crate) async fn new(
    State(gateway): State<Arc<Gateway>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let (manager, editor) = manager(&gateway, &headers)?;
    manager.require_admin()?;
    let body = object(&body)?;
    let model_name = required(text_field(&body, "model_name")?, "model_name")?;
    let params = object_field(&body, "litellm_params")?.ok_or_else(|| missing("litellm_params"))?;
    let mut info = object_field(&body, "model_info")?.unwrap_or_default();
    let id = match info.remove("id") {
        None | Some(Value::Null) => new_id(None),
        Some(Value::String(id)) if !id.is_empty() => id,
        Some(_) => {
            return Err(GatewayError::invalid_param(
                "model_info.id",
                "`model_info.id` must be a non-empty string.",
            )
            .into());
        }
    };
    if gateway.router.deployment(&id).is_some() {
        return Err(GatewayError::invalid_param(
            "model_info.id",
            format!("A deployment with id `{id}` already exists."),
        )
        .into());
    }
    let now = now_ms();
    let record = ModelRecord {
        litellm_params: gateway.runtime_models.sealed(&params)?,
        model_id: id,
        model_name,
        model_info: info,
        created_by: manager.user_id().map(str::to_owned),
        created_at: now,
        updated_at: now,
    };
    save(&gateway, &editor, &record, Action::Created).await?;
    Ok(Json(described(&gateway, &record.model_id)))
}

/// `{"model_id" (or "model_info": {"id"}), "model_name"?, "litellm_params"?, "model_info"?}`:
/// given params are written over the stored ones (a secret left out keeps its value).
pub(crate) async fn update(
    State(gateway): State<Arc<Gateway>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let (manager, editor) = manager(&gateway, &headers)?;
    manager.require_admin()?;
    let body = object(&body)?;
    let given_info = object_field(&body, "model_info")?.unwrap_or_default();
    let id = match text_field(&body, "model_id")? {
        Some(id) => id,
        None => given_info
            .get("id")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| missing("model_id"))?,
    };
    let mut record = stored_deployment(&gateway, &editor, &id).await?;
    if let Some(name) = text_field(&body, "model_name")? {
        record.model_name = name;
    }
    if let Some(params) = object_field(&body, "litellm_params")? {
        let sealed = gateway.runtime_models.sealed(&params)?;
        record.litellm_params.extend(sealed);
    }
    for (field, value) in given_info {
        if field != "id" {
            record.model_info.insert(field, value);
        }
    }
    record.updated_at = now_ms();
    save(&gateway, &editor, &record, Action::Updated).await?;
    Ok(Json(described(&gateway, &record.model_id)))
}

/// `{"id": …}`.
pub(crate) async fn delete(
    State(gateway): State<Arc<Gateway>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let (manager, editor) = manager(&gateway, &headers)?;
    manager.require_admin()?;
    let id = required(text_field(&object(&body)?, "id")?, "id")?;
    stored_deployment(&gateway, &editor, &id).await?;
    editor
        .delete::<ModelRecord>(std::slice::from_ref(&id), &editor.change(Action::Deleted))
        .await
        .map_err(store_error("id"))?;
    gateway.runtime_models.withdraw(&gateway, &id);
    Ok(Json(
        json!({"message": format!("Model `{id}` deleted."), "id": id}),
    ))
}

/// `GET /model/info[?litellm_model_id=…]` and `/v1/model/info`: every deployment the caller
/// may use (all of them for admins), without secrets.
pub(crate) async fn info(
    State(gateway): State<Arc<Gateway>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let caller = gateway.auth.authenticate(&headers)?;
    let reads_all =
        Manager::of(&caller, &gateway.auth.directory).is_ok_and(|manager| manager.reads_all());
    let only = query_param(query.as_deref(), "litellm_model_id");
    let data: Vec<Value> = gateway
        .router
        .groups()
        .iter()
        .filter(|group| reads_all || caller.may_use(&group.name))
        .flat_map(|group| group.members.iter())
        .filter(|member| only.as_ref().is_none_or(|id| &member.config.id == id))
        .map(|member| describe(&gateway, member))
        .collect();
    if let Some(id) = &only
        && data.is_empty()
    {
        return Err(not_found(format!("No deployment `{id}` exists.")).into());
    }
    Ok(Json(json!({"data": data})))
}

/// Checks a record by building it, stores it, and puts it into service.
async fn save(
    gateway: &Gateway,
    editor: &Editor<'_>,
    record: &ModelRecord,
    action: Action,
) -> Result<(), ApiError> {
    if Pattern::new(&record.model_name).is_some() {
        return Err(GatewayError::invalid_param(
            "model_name",
            "Wildcard model names are configured in the config file.",
        )
        .into());
    }
    let deployment = gateway.runtime_models.build(record)?;
    let change = editor.change(action);
    let written = match action {
        Action::Created => editor.insert(record, &change).await.map(|()| true),
        _ => editor.replace(record, &change).await,
    };
    if !written.map_err(store_error("model_info.id"))? {
        return Err(not_found(format!(
            "No stored deployment `{}` exists.",
            record.model_id
        ))
        .into());
    }
    // Ids were checked and the name is not a wildcard, so the router takes it.
    gateway
        .runtime_models
        .serve(gateway, deployment, record.updated_at);
    Ok(())
}

/// A stored deployment: 400 for one of the config file's (change the file instead), 404
/// for none.
async fn stored_deployment(
    gateway: &Gateway,
    editor: &Editor<'_>,
    id: &str,
) -> Result<ModelRecord, ApiError> {
    if gateway.router.deployment(id).is_some() && !gateway.runtime_models.is_stored(id) {
        return Err(GatewayError::invalid_param(
            "model_id",
            format!("Deployment `{id}` comes from the config file; change it there."),
        )
        .into());
    }
    stored::<ModelRecord>(editor, id).await
}

fn described(gateway: &Gateway, id: &str) -> Value {
    gateway
        .router
        .deployment(id)
        .map(|member| describe(gateway, &member))
        .unwrap_or(Value::Null)
}

/// A deployment in LiteLLM's `/model/info` shape, secrets left out.
fn describe(gateway: &Gateway, member: &Member) -> Value {
    let config = &member.config;
    let mut params = json!({
        "model": format!("{}/{}", config.provider.prefix, config.model),
        "api_base": config.api_base.as_ref().map(|url| url.as_str()),
        "api_version": config.api_version,
        "rpm": config.rpm,
        "tpm": config.tpm,
        "weight": config.weight,
        "order": config.order,
        "max_retries": config.max_retries,
        "timeout": config.timeout.as_secs_f64(),
        "stream_timeout": config.stream_timeout.as_secs_f64(),
    });
    if let Value::Object(fields) = &mut params {
        fields.retain(|_, value| !value.is_null());
        for secret in SECRET_FIELDS {
            fields.remove(*secret);
        }
    }
    let info = &config.model_info;
    let mut model_info = Map::new();
    model_info.extend(info.extra.clone());
    let known = json!({
        "id": config.id,
        "db_model": gateway.runtime_models.is_stored(&config.id),
        "mode": info.mode,
        "base_model": info.base_model,
        "max_tokens": info.max_tokens,
        "max_input_tokens": info.max_input_tokens,
        "max_output_tokens": info.max_output_tokens,
        "input_cost_per_token": info.input_cost_per_token,
        "output_cost_per_token": info.output_cost_per_token,
    });
    if let Value::Object(known) = known {
        model_info.extend(known.into_iter().filter(|(_, value)| !value.is_null()));
    }
    json!({
        "model_name": config.model_name,
        "litellm_params": params,
        "model_info": model_info,
    })
}

/// An object field of a body, if given.
fn object_field(
    body: &Map<String, Value>,
    field: &'static str,
) -> Result<Option<Map<String, Value>>, GatewayError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(fields)) => Ok(Some(fields.clone())),
        Some(_) => Err(GatewayError::invalid_param(
            field,
            format!("`{field}` must be an object."),
        )),
    }
}

fn missing(field: &'static str) -> GatewayError {
    GatewayError::invalid_param(field, format!("Missing required parameter: `{field}`."))
}
