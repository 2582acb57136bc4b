//! Spend reporting with LiteLLM's paths: `/spend/logs` (one record per request),
//! `/global/spend/report` (totals grouped by key, team, user, model or day) and
//! `/spend/calculate` (what a request or response costs at a model's price).

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use serde_json::{Value, json};
use tollgate_core::calendar::{MS_PER_DAY, iso8601};
use tollgate_core::endpoint::Endpoint;
use tollgate_core::error::GatewayError;
use tollgate_policy::keys::{now_ms, token_of};
use tollgate_pricing::{TokenUsage, Usd};
use tollgate_store::{SpendFilter, SpendGrouping, SpendRecord};
use tollgate_translate::canonical::OpenAiUsage;

use crate::app::Gateway;
use crate::error::ApiError;
use crate::routes::admin::{
    date_param, manager, number_param, paged, parse, required, store_error,
};
use crate::routes::query_param;

/// `GET /spend/logs?api_key=&user_id=&team_id=&end_user=&model=&request_id=&start_date=&end_date=&page=&page_size=`
/// (dates `YYYY-MM-DD`, UTC, both included), newest first.
pub(crate) async fn logs(
    State(gateway): State<Arc<Gateway>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let (manager, store) = manager(&gateway, &headers)?;
    manager.require_read_all()?;
    let query = query.as_deref();
    let page = number_param(query, "page", 1, u32::MAX)?;
    let size = number_param(query, "page_size", 50, 1000)?;
    let filter = SpendFilter {
        request_id: query_param(query, "request_id"),
        key_hash: query_param(query, "api_key").map(|key| token_of(&key)),
        user_id: query_param(query, "user_id"),
        team_id: query_param(query, "team_id"),
        end_user: query_param(query, "end_user"),
        model_group: query_param(query, "model"),
        since: date_param(query, "start_date")?,
        until: date_param(query, "end_date")?.map(|day| day + MS_PER_DAY),
    };
    let found = store
        .spend_logs(&filter, page, size)
        .await
        .map_err(store_error("spend"))?;
    let records = found.records.iter().map(shown).collect();
    Ok(Json(paged("data", records, found.total, page, size)))
}

/// `GET /global/spend/report?group_by=team|key|user|model|day&start_date=&end_date=`: spend
/// over the range (default: the last 30 days, today included), most spent first (by day:
/// in date order).
pub(crate) async fn report(
    State(gateway): State<Arc<Gateway>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let (manager, store) = manager(&gateway, &headers)?;
    manager.require_read_all()?;
    let query = query.as_deref();
    let grouping = match query_param(query, "group_by").as_deref() {
        None | Some("team") => SpendGrouping::Team,
        Some("key" | "api_key") => SpendGrouping::Key,
        Some("user") => SpendGrouping::User,
        Some("model") => SpendGrouping::Model,
        Some("day") => SpendGrouping::Day,
        Some(other) => {
            return Err(GatewayError::invalid_param(
                "group_by",
                format!("`group_by` must be one of team, key, user, model, day; got `{other}`."),
            )
            .into());
        }
    };
    let today = now_ms().div_euclid(MS_PER_DAY) * MS_PER_DAY;
    let until = date_param(query, "end_date")?.unwrap_or(today) + MS_PER_DAY;
    let since = date_param(query, "start_date")?.unwrap_or(until - 30 * MS_PER_DAY);
    if since >= until {
        return Err(GatewayError::invalid_param(
            "start_date",
            "`start_date` must not be after `end_date`.",
        )
        .into());
    }
    let groups = store
        .spend_report(grouping, since, until)
        .await
        .map_err(store_error("spend"))?;
    let name = match grouping {
        SpendGrouping::Key => "api_key",
        SpendGrouping::Team => "team_id",
        SpendGrouping::User => "user_id",
        SpendGrouping::Model => "model",
        SpendGrouping::Day => "date",
    };
    let rows: Vec<Value> = groups
        .iter()
        .map(|group| {
            json!({
                name: group.group,
                "spend": Usd::from_nanos(group.spend).as_f64(),
                "requests": group.requests,
                "failed_requests": group.failed_requests,
                "prompt_tokens": group.prompt_tokens,
                "completion_tokens": group.completion_tokens,
                "total_tokens": group.prompt_tokens + group.completion_tokens,
            })
        })
        .collect();
    Ok(Json(json!({
        "group_by": name,
        "start_date": iso8601(since),
        "end_date": iso8601(until - 1),
        "data": rows,
    })))
}

#[derive(serde::Deserialize)]
struct CalculateRequest {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    messages: Option<Value>,
    #[serde(default)]
    completion_response: Option<Value>,
    /// How long the request took, for deployments priced by the second.
    #[serde(default)]
    response_time_ms: Option<u64>,
}

/// `POST /spend/calculate` with `{model, messages}` (the prompt, counted with the gateway's
/// tokenizer, no output) or `{completion_response}` (a chat completion: its `model` and
/// `usage`), as LiteLLM takes them: `{"cost": dollars}` at the model group's price.
pub(crate) async fn calculate(
    State(gateway): State<Arc<Gateway>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    gateway.auth.authenticate(&headers)?;
    let request: CalculateRequest = parse(&body)?;
    let response = request.completion_response.as_ref();
    let model = request
        .model
        .clone()
        .or_else(|| response?.get("model")?.as_str().map(str::to_owned));
    let model = required(model, "model")?;
    let (usage, estimated) = match response.and_then(|r| r.get("usage")) {
        Some(usage) => {
            let usage = serde_json::from_value(usage.clone()).map_err(|err| {
                GatewayError::invalid_param(
                    "completion_response.usage",
                    format!("`completion_response.usage` is not an OpenAI usage object: {err}"),
                )
            })?;
            (TokenUsage::from_openai(&usage), false)
        }
        None => {
            let messages = required(request.messages, "messages")?;
            let body = serde_json::to_vec(&json!({"model": model, "messages": messages}))
                .expect("JSON serialises");
            let prompt = crate::exchange::estimated_prompt_tokens(Endpoint::ChatCompletions, &body)
                .await
                .ok_or_else(|| {
                    GatewayError::invalid_param(
                        "messages",
                        "`messages` must be a list of chat messages.",
                    )
                })?;
            let usage = TokenUsage {
                input: prompt,
                ..TokenUsage::default()
            };
            (usage, true)
        }
    };
    let group = gateway.router.group(&model).ok_or_else(|| {
        GatewayError::invalid_param("model", format!("No model group `{model}` is configured."))
    })?;
    let price = group.first().config.price.clone();
    let cost = price.map_or(Usd::ZERO, |price| {
        price.cost(&usage, request.response_time_ms.unwrap_or(0))
    });
    Ok(Json(json!({
        "cost": cost.as_f64(),
        "cost_usd": cost.to_string(),
        "model": model,
        "priced": group.first().config.price.is_some(),
        "prompt_tokens": usage.input,
        "completion_tokens": usage.output,
        "estimated": estimated,
    })))
}

/// A spend record with LiteLLM's field names (`api_key` is the key's hash, `spend` dollars).
pub(crate) fn shown(record: &SpendRecord) -> Value {
    json!({
        "request_id": record.request_id,
        "client_request_id": record.client_request_id,
        "call_type": record.call_type,
        "api_key": record.key_hash,
        "key_alias": record.key_alias,
        "user": record.user_id,
        "team_id": record.team_id,
        "organization_id": record.organization_id,
        "end_user": record.end_user,
        "model_group": record.model_group,
        "model": record.model,
        "model_id": record.deployment_id,
        "custom_llm_provider": record.provider,
        "api_base": record.api_base,
        "prompt_tokens": record.prompt_tokens,
        "completion_tokens": record.completion_tokens,
        "total_tokens": record.prompt_tokens + record.completion_tokens,
        "cached_tokens": record.cached_tokens,
        "cache_creation_tokens": record.cache_write_tokens,
        "reasoning_tokens": record.reasoning_tokens,
        "spend": Usd::from_nanos(record.spend).as_f64(),
        "spend_usd": Usd::from_nanos(record.spend).to_string(),
        "estimated": record.estimated,
        "status": record.status,
        "http_status": record.http_status,
        "error_class": record.error_class,
        "startTime": iso8601(record.start_time),
        "endTime": iso8601(record.end_time),
        "completionStartTime": record.first_token_ms.map(|ms| iso8601(record.start_time + ms)),
        "stream": record.stream,
        "cache_hit": record.cache_hit,
        "retries": record.retries,
        "fallbacks": record.fallbacks,
        "request_tags": record.tags,
        "metadata": record.metadata,
    })
}
