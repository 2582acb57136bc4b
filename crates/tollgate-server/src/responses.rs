//! The Responses API's state: responses kept for `GET /v1/responses/{id}`, `DELETE` and
//! `previous_response_id`, and the retrieve / delete / input-items routes.
//!
//! A bridged response (served by a provider without the Responses API) is kept whole: the
//! response object, and the turn's items (its input, then its output) to rebuild the
//! conversation of a later turn. A response from a provider that has the API natively is kept
//! there; the gateway only remembers which deployment holds it, so later calls reach it.
//!
//! The store lives in memory and is bounded (oldest responses go first); it does not survive
//! a restart or span replicas yet.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method};
use axum::response::Response;
use bytes::Bytes;
use http::StatusCode;
use http::header::{CONTENT_TYPE, HeaderValue};
use tollgate_core::endpoint::Operation;
use tollgate_core::error::GatewayError;

use crate::app::Gateway;
use crate::error::ApiError;

/// Responses kept at most, and their total size.
const MAX_ENTRIES: usize = 10_000;
const MAX_BYTES: usize = 512 * 1024 * 1024;
/// Longest `previous_response_id` chain followed.
const MAX_CHAIN: usize = 1_000;

#[derive(Debug, Clone)]
pub(crate) enum Stored {
    /// Served through chat: the gateway holds the response and its conversation.
    Bridged {
        response: Bytes,
        /// A JSON array: the turn's input items, then its output items.
        items: Bytes,
        previous: Option<String>,
    },
    /// Served by a provider's own Responses API: kept by that deployment.
    Native { deployment: String },
}

impl Stored {
    fn size(&self) -> usize {
        match self {
            Stored::Bridged {
                response, items, ..
            } => response.len() + items.len(),
            Stored::Native { deployment } => deployment.len(),
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct ResponseStore {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    entries: HashMap<String, Stored>,
    order: VecDeque<String>,
    bytes: usize,
}

impl ResponseStore {
    pub(crate) fn insert(&self, id: String, stored: Stored) {
        let mut inner = self.inner.lock().expect("response store lock poisoned");
        inner.bytes += stored.size();
        if let Some(old) = inner.entries.insert(id.clone(), stored) {
            inner.bytes -= old.size();
        } else {
            inner.order.push_back(id);
        }
        while inner.entries.len() > MAX_ENTRIES || inner.bytes > MAX_BYTES {
            let Some(oldest) = inner.order.pop_front() else {
                break;
            };
            if let Some(evicted) = inner.entries.remove(&oldest) {
                inner.bytes -= evicted.size();
            }
        }
    }

    pub(crate) fn get(&self, id: &str) -> Option<Stored> {
        let inner = self.inner.lock().expect("response store lock poisoned");
        inner.entries.get(id).cloned()
    }

    pub(crate) fn remove(&self, id: &str) -> Option<Stored> {
        let mut inner = self.inner.lock().expect("response store lock poisoned");
        let removed = inner.entries.remove(id)?;
        inner.bytes -= removed.size();
        inner.order.retain(|entry| entry != id);
        Some(removed)
    }

    pub(crate) fn is_bridged(&self, id: &str) -> bool {
        let inner = self.inner.lock().expect("response store lock poisoned");
        matches!(inner.entries.get(id), Some(Stored::Bridged { .. }))
    }

    /// The item arrays of `id`'s conversation, oldest turn first. An error names the response
    /// that is missing — `id` itself or an evicted ancestor: a conversation is never silently
    /// cut short.
    pub(crate) fn history(&self, id: &str) -> Result<Vec<Bytes>, GatewayError> {
        let inner = self.inner.lock().expect("response store lock poisoned");
        let mut turns = Vec::new();
        let mut next = Some(id.to_owned());
        while let Some(id) = next.take() {
            let Some(Stored::Bridged {
                items, previous, ..
            }) = inner.entries.get(&id)
            else {
                return Err(previous_not_found(&id));
            };
            if turns.len() == MAX_CHAIN {
                return Err(GatewayError::invalid_param(
                    "previous_response_id",
                    format!("The conversation is longer than {MAX_CHAIN} responses."),
                ));
            }
            turns.push(items.clone());
            next = previous.clone();
        }
        turns.reverse();
        Ok(turns)
    }
}

/// `previous_response_id` names nothing the gateway or the provider holds.
pub(crate) fn previous_not_found(id: &str) -> GatewayError {
    GatewayError::invalid_param(
        "previous_response_id",
        format!("Previous response with id '{id}' not found."),
    )
    .with_code("previous_response_not_found")
}

fn not_found(id: &str) -> GatewayError {
    GatewayError::new(
        StatusCode::NOT_FOUND,
        tollgate_core::error::Origin::Client,
        tollgate_core::error::ErrorKind::InvalidRequest,
        format!("Response with id '{id}' not found."),
    )
    .with_param("response_id")
}

fn json(status: StatusCode, body: Bytes) -> Response {
    let mut response = Response::new(axum::body::Body::from(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// `GET /v1/responses/{id}`.
pub(crate) async fn retrieve(
    State(gateway): State<Arc<Gateway>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    gateway.auth.authenticate(&headers)?;
    match gateway.responses.get(&id) {
        Some(Stored::Bridged { response, .. }) => Ok(json(StatusCode::OK, response)),
        Some(Stored::Native { deployment }) => {
            forward(&gateway, &deployment, Method::GET, &id).await
        }
        None => Err(not_found(&id).into()),
    }
}

/// `DELETE /v1/responses/{id}`.
pub(crate) async fn delete(
    State(gateway): State<Arc<Gateway>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    gateway.auth.authenticate(&headers)?;
    match gateway.responses.get(&id) {
        Some(Stored::Bridged { .. }) => {
            gateway.responses.remove(&id);
            let body = serde_json::json!({"id": id, "object": "response.deleted", "deleted": true});
            Ok(json(StatusCode::OK, Bytes::from(body.to_string())))
        }
        // Forgotten only once the provider has deleted it, so a failed delete can be retried.
        Some(Stored::Native { deployment }) => {
            forward(&gateway, &deployment, Method::DELETE, &id).await
        }
        None => Err(not_found(&id).into()),
    }
}

/// The page of input items asked for, in OpenAI's list parameters.
#[derive(Debug)]
struct ItemsPage {
    limit: usize,
    /// Oldest first (`order=asc`); newest first by default.
    ascending: bool,
    after: Option<String>,
}

impl ItemsPage {
    fn parse(query: Option<&str>) -> Result<Self, GatewayError> {
        let mut page = ItemsPage {
            limit: 20,
            ascending: false,
            after: None,
        };
        for (key, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            match key.as_ref() {
                "limit" => {
                    page.limit = value
                        .parse()
                        .ok()
                        .filter(|limit| (1..=100).contains(limit))
                        .ok_or_else(|| {
                            GatewayError::invalid_param(
                                "limit",
                                "`limit` must be between 1 and 100.",
                            )
                        })?
                }
                "order" => {
                    page.ascending = match value.as_ref() {
                        "asc" => true,
                        "desc" => false,
                        _ => {
                            return Err(GatewayError::invalid_param(
                                "order",
                                "`order` must be `asc` or `desc`.",
                            ));
                        }
                    }
                }
                "after" => page.after = Some(value.into_owned()),
                _ => {}
            }
        }
        Ok(page)
    }
}

/// `GET /v1/responses/{id}/input_items`: the items the response was given, newest first
/// unless `order=asc`, `limit` (1–100) at a time, after the item `after`.
pub(crate) async fn input_items(
    State(gateway): State<Arc<Gateway>>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    gateway.auth.authenticate(&headers)?;
    let page = ItemsPage::parse(query.as_deref())?;
    let Some(Stored::Bridged {
        response, items, ..
    }) = gateway.responses.get(&id)
    else {
        return match gateway.responses.get(&id) {
            Some(Stored::Native { deployment }) => {
                forward(
                    &gateway,
                    &deployment,
                    Method::GET,
                    &match &query {
                        Some(query) => format!("{id}/input_items?{query}"),
                        None => format!("{id}/input_items"),
                    },
                )
                .await
            }
            _ => Err(not_found(&id).into()),
        };
    };
    let items: Vec<serde_json::Value> = serde_json::from_slice(&items).unwrap_or_default();
    let response: serde_json::Value = serde_json::from_slice(&response).unwrap_or_default();
    let outputs = response["output"].as_array().map_or(0, Vec::len);
    let inputs = &items[..items.len().saturating_sub(outputs)];
    let mut data: Vec<serde_json::Value> = inputs
        .iter()
        .enumerate()
        .map(|(index, item)| {
            let mut item = item.clone();
            if item.get("id").is_none() {
                item["id"] = format!("item_{index}").into();
            }
            item
        })
        .collect();
    if !page.ascending {
        data.reverse();
    }
    if let Some(after) = &page.after {
        let start = data
            .iter()
            .position(|item| item["id"] == after.as_str())
            .map_or(data.len(), |position| position + 1);
        data.drain(..start);
    }
    let has_more = data.len() > page.limit;
    data.truncate(page.limit);
    let body = serde_json::json!({
        "object": "list",
        "first_id": data.first().map(|item| item["id"].clone()),
        "last_id": data.last().map(|item| item["id"].clone()),
        "data": data,
        "has_more": has_more,
    });
    Ok(json(StatusCode::OK, Bytes::from(body.to_string())))
}

/// Passes a retrieve or delete to the deployment holding the response.
async fn forward(
    gateway: &Gateway,
    deployment_id: &str,
    method: Method,
    path: &str,
) -> Result<Response, ApiError> {
    let deployment = gateway
        .router
        .deployment(deployment_id)
        .ok_or_else(|| not_found(path))?;
    let upstream = deployment
        .request(method.clone(), Operation::Responses, path)
        .await?;
    let status = upstream.status;
    let deadline = tokio::time::Instant::now() + deployment.config.timeout;
    let body = upstream.body.collect_until(deadline).await?;
    if !status.is_success() {
        return Err(crate::exchange::provider_error(&deployment, status, &body).into());
    }
    if method == Method::DELETE {
        gateway.responses.remove(path);
    }
    Ok(json(status, body))
}
