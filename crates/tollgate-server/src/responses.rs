//! The Responses API's state: responses kept for `GET /v1/responses/{id}`, `DELETE` and
//! `previous_response_id`, and the retrieve / delete / input-items routes.
//!
//! A bridged response (served by a provider without the Responses API) is kept whole: the
//! response object, and the turn's items (its input, then its output) to rebuild the
//! conversation of a later turn. A response from a provider that has the API natively is kept
//! there; the gateway only remembers which deployment holds it, so later calls reach it.
//!
//! Each replica keeps the responses it has seen in memory (bounded: oldest go first), and,
//! with a store, writes each to the database in the background, so a conversation continues
//! on any replica and after a restart, for `responses_retention`. A response is read from the
//! database when memory does not have it; one a replica has only just answered may still be on
//! its way there, so a miss is looked up again for a moment before it counts as not found.
//!
//! A response belongs to the team of the key that made it (to the key, if it has no team), as
//! OpenAI's belong to a project: other callers are told it does not exist. The master key reads
//! every response.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method};
use axum::response::Response;
use bytes::Bytes;
use http::StatusCode;
use http::header::{CONTENT_TYPE, HeaderValue};
use tollgate_core::endpoint::Operation;
use tollgate_core::error::GatewayError;
use tollgate_policy::auth::Caller;
use tollgate_store::{KeptResponse, Store};

use crate::app::Gateway;
use crate::error::ApiError;

/// Responses kept at most, and their total size.
const MAX_ENTRIES: usize = 10_000;
const MAX_BYTES: usize = 512 * 1024 * 1024;
/// Longest `previous_response_id` chain followed.
const MAX_CHAIN: usize = 1_000;
/// How long a response not found is looked for again in the database: another replica may
/// have answered it a moment ago and be writing it still.
const MISS_PATIENCE: Duration = Duration::from_secs(1);
const MISS_RETRY_EVERY: Duration = Duration::from_millis(50);

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

    fn kept(&self, id: &str, owner: &str) -> KeptResponse {
        let text = |bytes: &Bytes| String::from_utf8_lossy(bytes).into_owned();
        let (deployment, response, items, previous_id) = match self {
            Stored::Bridged {
                response,
                items,
                previous,
            } => (
                None,
                Some(text(response)),
                Some(text(items)),
                previous.clone(),
            ),
            Stored::Native { deployment } => (Some(deployment.clone()), None, None, None),
        };
        KeptResponse {
            id: id.to_owned(),
            owner: owner.to_owned(),
            deployment,
            response,
            items,
            previous_id,
            created_at: tollgate_policy::keys::now_ms(),
        }
    }

    fn from_kept(kept: KeptResponse) -> Option<Stored> {
        match (kept.deployment, kept.response, kept.items) {
            (Some(deployment), _, _) => Some(Stored::Native { deployment }),
            (None, Some(response), Some(items)) => Some(Stored::Bridged {
                response: Bytes::from(response),
                items: Bytes::from(items),
                previous: kept.previous_id,
            }),
            _ => None,
        }
    }
}

/// Whose responses a caller reads, and under whose name the responses it makes are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ResponseScope {
    /// The master key (or an open gateway): every response.
    All,
    /// A team (`team:…`) or a key without one (`key:…`).
    Owner(String),
}

impl ResponseScope {
    pub(crate) fn of(caller: &Caller) -> Self {
        match caller {
            Caller::Key(principal) => {
                let key = &principal.key.record;
                ResponseScope::Owner(match &key.team_id {
                    Some(team) => format!("team:{team}"),
                    None => format!("key:{}", key.token),
                })
            }
            Caller::Master | Caller::Anonymous => ResponseScope::All,
        }
    }

    /// The name responses made in this scope are kept under (empty: the master key's).
    fn owner(&self) -> &str {
        match self {
            ResponseScope::All => "",
            ResponseScope::Owner(owner) => owner,
        }
    }

    fn reads(&self, owner: &str) -> bool {
        match self {
            ResponseScope::All => true,
            ResponseScope::Owner(mine) => mine == owner,
        }
    }
}

/// A request's place among kept responses: whose it reads and keeps, and the response it
/// continues (`previous_response_id`), looked up once, whatever the attempts.
#[derive(Debug, Clone)]
pub(crate) struct Turn {
    pub(crate) scope: ResponseScope,
    pub(crate) previous: Option<Stored>,
}

impl Turn {
    /// Not a Responses request, or a health probe: it neither reads nor keeps responses.
    pub(crate) fn none() -> Self {
        Turn {
            scope: ResponseScope::All,
            previous: None,
        }
    }

    /// A Responses request's turn: the response it continues, if `scope` may read it.
    pub(crate) async fn of(
        gateway: &Gateway,
        body: &[u8],
        scope: ResponseScope,
    ) -> Result<Self, GatewayError> {
        let previous = match crate::exchange::previous_response_id(body) {
            Some(id) => gateway.responses.get(&id, &scope).await?,
            None => None,
        };
        Ok(Turn { scope, previous })
    }
}

#[derive(Debug, Default)]
pub(crate) struct ResponseStore {
    inner: Mutex<Inner>,
    /// Where responses outlive this replica's memory, when there is a store.
    kept: Option<Store>,
}

#[derive(Debug, Default)]
struct Inner {
    entries: HashMap<String, Entry>,
    order: VecDeque<String>,
    bytes: usize,
}

#[derive(Debug, Clone)]
struct Entry {
    stored: Stored,
    owner: String,
    /// Whether the database has it. Held locked while this replica's write is on its way, so
    /// a delete waits for the write instead of being overtaken by it.
    written: Arc<tokio::sync::Mutex<bool>>,
}

impl Entry {
    /// Whether the database has it now (a write on its way, or failed: not yet).
    fn is_written(&self) -> bool {
        self.written.try_lock().is_ok_and(|written| *written)
    }
}

impl ResponseStore {
    /// Responses kept in `store` too, read by every replica.
    pub(crate) fn kept_in(store: Store) -> Self {
        ResponseStore {
            inner: Mutex::default(),
            kept: Some(store),
        }
    }

    /// Keeps `stored` as `id`, made in `scope`: in memory at once, in the database in the
    /// background.
    pub(crate) fn insert(&self, id: String, stored: Stored, scope: &ResponseScope) {
        let written = Arc::new(tokio::sync::Mutex::new(self.kept.is_none()));
        if let Some(store) = self.kept.clone() {
            let kept = stored.kept(&id, scope.owner());
            let mut done = written
                .clone()
                .try_lock_owned()
                .expect("a new entry's lock is free");
            let write = async move {
                match store.keep_response(&kept).await {
                    Ok(()) => *done = true,
                    Err(err) => {
                        tracing::warn!(response_id = %kept.id, error = %err, "cannot keep a response in the database: only this replica can continue it, until it restarts")
                    }
                }
            };
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    runtime.spawn(write);
                }
                Err(_) => tracing::warn!(
                    "a response was answered outside the runtime; only this replica keeps it"
                ),
            }
        }
        self.remember(
            id,
            Entry {
                stored,
                owner: scope.owner().to_owned(),
                written,
            },
        );
    }

    fn remember(&self, id: String, entry: Entry) {
        let mut inner = self.inner.lock().expect("response store lock poisoned");
        inner.bytes += entry.stored.size();
        if let Some(old) = inner.entries.insert(id.clone(), entry) {
            inner.bytes -= old.stored.size();
        } else {
            inner.order.push_back(id);
        }
        while inner.entries.len() > MAX_ENTRIES || inner.bytes > MAX_BYTES {
            let Some(oldest) = inner.order.pop_front() else {
                break;
            };
            if let Some(evicted) = inner.entries.remove(&oldest) {
                inner.bytes -= evicted.stored.size();
            }
        }
    }

    fn cached(&self, id: &str) -> Option<Entry> {
        let inner = self.inner.lock().expect("response store lock poisoned");
        inner.entries.get(id).cloned()
    }

    fn forget_here(&self, id: &str) {
        let mut inner = self.inner.lock().expect("response store lock poisoned");
        if let Some(removed) = inner.entries.remove(id) {
            inner.bytes -= removed.stored.size();
            inner.order.retain(|entry| entry != id);
        }
    }

    /// `id` as the database has it (then cached here).
    async fn read(&self, store: &Store, id: &str) -> Result<Option<Entry>, GatewayError> {
        let kept = store.kept_response(id).await.map_err(|err| {
            GatewayError::store_unavailable(format!(
                "Response '{id}' cannot be read from the database: {err}."
            ))
        })?;
        let Some(kept) = kept else {
            return Ok(None);
        };
        let owner = kept.owner.clone();
        let stored = Stored::from_kept(kept).ok_or_else(|| {
            GatewayError::internal(format!("stored response '{id}' is unreadable"))
        })?;
        let entry = Entry {
            stored,
            owner,
            written: Arc::new(tokio::sync::Mutex::new(true)),
        };
        self.remember(id.to_owned(), entry.clone());
        Ok(Some(entry))
    }

    /// `id`, if `scope` may read it. With a store, the database says whether it exists (it may
    /// have been deleted through another replica), this replica's copy standing in while its
    /// own write is on its way or the database cannot answer; a miss is looked for again for a
    /// moment, as another replica may be writing it still.
    pub(crate) async fn get(
        &self,
        id: &str,
        scope: &ResponseScope,
    ) -> Result<Option<Stored>, GatewayError> {
        let readable = |entry: Entry| scope.reads(&entry.owner).then_some(entry.stored);
        let cached = self.cached(id);
        let Some(store) = &self.kept else {
            return Ok(cached.and_then(readable));
        };
        let give_up = tokio::time::Instant::now() + MISS_PATIENCE;
        loop {
            match self.read(store, id).await {
                Ok(Some(entry)) => return Ok(readable(entry)),
                Ok(None) => match &cached {
                    Some(entry) if !entry.is_written() => {
                        return Ok(readable(entry.clone()));
                    }
                    Some(_) => {
                        // Written, and gone since: deleted (or pruned) through another replica.
                        self.forget_here(id);
                        return Ok(None);
                    }
                    None => {}
                },
                Err(err) => return cached.map(readable).ok_or(err),
            }
            if tokio::time::Instant::now() >= give_up {
                return Ok(None);
            }
            tokio::time::sleep(MISS_RETRY_EVERY).await;
        }
    }

    /// An earlier turn of a conversation: this replica's copy, else the database's. Turns
    /// never change once kept, so the copy needs no check.
    async fn earlier(
        &self,
        id: &str,
        scope: &ResponseScope,
    ) -> Result<Option<Stored>, GatewayError> {
        let entry = match (self.cached(id), &self.kept) {
            (Some(entry), _) => Some(entry),
            (None, Some(store)) => self.read(store, id).await?,
            (None, None) => None,
        };
        Ok(entry.and_then(|entry| scope.reads(&entry.owner).then_some(entry.stored)))
    }

    /// Forgets `id`, here and in the database (once this replica's write of it has landed, so
    /// the write cannot bring it back).
    pub(crate) async fn remove(&self, id: &str) -> Result<(), GatewayError> {
        let pending = self.cached(id);
        self.forget_here(id);
        if let Some(store) = &self.kept {
            if let Some(entry) = pending {
                drop(entry.written.lock().await);
            }
            store.forget_response(id).await.map_err(|err| {
                GatewayError::store_unavailable(format!(
                    "Response '{id}' cannot be deleted from the database: {err}."
                ))
            })?;
        }
        Ok(())
    }

    /// Forgets the responses kept longer than `retention`; how many.
    pub(crate) async fn prune(
        &self,
        retention: Duration,
    ) -> Result<u64, tollgate_store::StoreError> {
        let Some(store) = &self.kept else {
            return Ok(0);
        };
        let before = tollgate_policy::keys::now_ms()
            - i64::try_from(retention.as_millis()).unwrap_or(i64::MAX / 2);
        store.prune_responses(before).await
    }

    /// The item arrays of the conversation `head` ends (the response `id` continues), oldest
    /// turn first. An error names the response that is missing — `id` itself or an evicted
    /// ancestor: a conversation is never silently cut short.
    pub(crate) async fn history(
        &self,
        id: &str,
        head: Option<&Stored>,
        scope: &ResponseScope,
    ) -> Result<Vec<Bytes>, GatewayError> {
        let mut turns = Vec::new();
        let mut next = Some(id.to_owned());
        let mut first = head.cloned();
        while let Some(id) = next.take() {
            let turn = match first.take() {
                Some(head) => Some(head),
                None => self.earlier(&id, scope).await?,
            };
            let Some(Stored::Bridged {
                items, previous, ..
            }) = turn
            else {
                return Err(previous_not_found(&id));
            };
            if turns.len() == MAX_CHAIN {
                return Err(GatewayError::invalid_param(
                    "previous_response_id",
                    format!("The conversation is longer than {MAX_CHAIN} responses."),
                ));
            }
            turns.push(items);
            next = previous;
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
    let scope = ResponseScope::of(&gateway.auth.authenticate(&headers)?);
    match gateway.responses.get(&id, &scope).await? {
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
    let scope = ResponseScope::of(&gateway.auth.authenticate(&headers)?);
    match gateway.responses.get(&id, &scope).await? {
        Some(Stored::Bridged { .. }) => {
            gateway.responses.remove(&id).await?;
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
    let scope = ResponseScope::of(&gateway.auth.authenticate(&headers)?);
    let page = ItemsPage::parse(query.as_deref())?;
    let (response, items) = match gateway.responses.get(&id, &scope).await? {
        Some(Stored::Bridged {
            response, items, ..
        }) => (response, items),
        Some(Stored::Native { deployment }) => {
            return forward(
                &gateway,
                &deployment,
                Method::GET,
                &match &query {
                    Some(query) => format!("{id}/input_items?{query}"),
                    None => format!("{id}/input_items"),
                },
            )
            .await;
        }
        None => return Err(not_found(&id).into()),
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
        gateway.responses.remove(path).await?;
    }
    Ok(json(status, body))
}
