//! Spend: what a request cost, its spend record written to the journal when it ends, and the
//! background task that moves the journal into the database.
//!
//! Cost comes from the provider's reported usage at the deployment's price. The record is
//! appended to the journal before the access log line and before the last byte reaches the
//! client, so a response the client saw always has its record, even if the process is
//! killed right after.

use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use tollgate_core::error::{ErrorKind, GatewayError, Origin};
use tollgate_pricing::{TokenUsage, Usd};
use tollgate_store::{Journal, SpendRecord, Store};

use crate::access_log::{AccessRecord, Outcome};
use crate::app::Gateway;

/// How long the flusher waits after the first new record, unless a full batch comes sooner, so
/// records travel in batches. A drain has a fixed cost (a segment file made and removed, a
/// transaction): at a few requests a second, draining four times a second was a third of the
/// gateway's CPU.
const BATCH_WAIT: Duration = Duration::from_secs(1);
/// Retry delays while the database is away.
const RETRY_FIRST: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(30);

/// The journal and the database it drains into.
#[derive(Debug)]
pub(crate) struct SpendLedger {
    pub(crate) journal: Journal,
    store: Store,
}

impl SpendLedger {
    pub(crate) fn new(journal: Journal, store: Store) -> Self {
        SpendLedger { journal, store }
    }

    /// Writes `record` to the journal; a failed write is logged (the record is kept in
    /// memory for the next drain).
    pub(crate) fn append(&self, record: SpendRecord) {
        if let Err(err) = self.journal.append(record) {
            tracing::error!(error = %err, "could not append to the spend journal; the record is held in memory until the database takes it");
        }
    }

    /// Refuses new work (503) once the journal is full: the database has been away so long
    /// that serving more would mean answering requests whose spend cannot be kept.
    pub(crate) fn check_room(&self) -> Result<(), GatewayError> {
        if !self.journal.is_full() {
            return Ok(());
        }
        Err(GatewayError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            Origin::Gateway,
            ErrorKind::Internal,
            format!(
                "The gateway cannot record spend: the database has been unreachable and the spend \
                 journal holds its limit of {} MB. Requests are refused until the database is back.",
                self.journal.max_bytes() / (1024 * 1024)
            ),
        )
        .with_code("spend_journal_full"))
    }

    /// Moves everything journaled so far into the database.
    pub(crate) async fn flush(
        &self,
    ) -> Result<tollgate_store::Drained, tollgate_store::JournalError> {
        self.journal.drain(&self.store).await
    }
}

impl AccessRecord {
    /// What the request cost at its deployment's price (zero when unpriced or without usage).
    pub(crate) fn cost(&self) -> Usd {
        let price = self
            .lease
            .as_ref()
            .and_then(|lease| lease.deployment.config.price.as_ref());
        match (price, &self.usage) {
            (Some(price), Some(usage)) => price.cost(usage, self.priced_duration_ms()),
            _ => Usd::ZERO,
        }
    }

    /// How long the request took, for prices by the second: fixed the first time it is asked
    /// (when the answer is in and first priced), so that the cost header, the budget's
    /// settlement and the spend record agree to the nano-dollar.
    pub(crate) fn priced_duration_ms(&self) -> u64 {
        *self
            .priced_duration_ms
            .get_or_init(|| u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX))
    }

    /// The request's spend record; `None` for requests that never got past authentication.
    pub(crate) fn spend_record(&self, end_ms: i64) -> Option<SpendRecord> {
        let caller = self.caller.as_ref()?;
        let deployment = self.lease.as_ref().map(|lease| &*lease.deployment);
        let usage = self.usage.unwrap_or_default();
        let mut record = SpendRecord {
            request_id: self.call_id().to_owned(),
            client_request_id: self.client_request_id().map(str::to_owned),
            call_type: self.endpoint.path().to_owned(),
            end_user: self.end_user.clone(),
            model_group: self.model.clone(),
            model: deployment.map(|d| d.config.model.clone()),
            deployment_id: deployment.map(|d| d.config.id.clone()),
            provider: deployment.map(|d| d.config.provider.prefix.to_owned()),
            api_base: deployment.map(|d| d.api_base_host.clone()),
            prompt_tokens: usage.input,
            completion_tokens: usage.output,
            cached_tokens: usage.cache_read,
            cache_write_tokens: usage.cache_write,
            reasoning_tokens: usage.reasoning,
            spend: self.cost().nanos(),
            estimated: self.usage_estimated,
            status: if self.outcome == Outcome::Completed {
                "success"
            } else {
                "failure"
            }
            .to_owned(),
            http_status: self.status,
            error_class: self.error_class(),
            start_time: self.started_ms,
            end_time: end_ms,
            first_token_ms: self
                .first_byte
                .map(|at| at.saturating_duration_since(self.started).as_millis() as i64),
            stream: self.stream,
            cache_hit: false,
            retries: self.retries,
            fallbacks: self.fallbacks,
            ..SpendRecord::default()
        };
        if let tollgate_policy::auth::Caller::Key(principal) = caller {
            let key = &principal.key.record;
            record.key_hash = Some(key.token.clone());
            record.key_alias = key.key_alias.clone();
            record.user_id = key.user_id.clone();
            record.team_id = key.team_id.clone();
            record.organization_id = key.organization_id.clone().or_else(|| {
                principal
                    .team
                    .as_ref()
                    .and_then(|team| team.record.organization_id.clone())
            });
            record.tags = key.tags.clone();
        }
        for tag in &self.request_tags {
            if !record.tags.contains(tag) {
                record.tags.push(tag.clone());
            }
        }
        if let Some(metadata) = &self.request_metadata {
            record.metadata = metadata.clone();
        }
        Some(record)
    }
}

/// The largest request `metadata` a spend record keeps whole.
const MAX_METADATA_BYTES: usize = 16 * 1024;

/// Tags in a header, comma-separated, as LiteLLM reads them.
const TAG_HEADERS: [&str; 2] = ["x-tollgate-tags", "x-litellm-tags"];

/// Takes the request's labels for its spend record: its `metadata` (LiteLLM's place for
/// `tags` and the caller's own fields) and the tags of the body's `tags`, `metadata.tags` and
/// the tag headers.
pub(crate) fn note_labels(
    access: &mut AccessRecord,
    headers: &http::HeaderMap,
    tags: Vec<String>,
    metadata: Option<&[u8]>,
) {
    access.request_tags.extend(tags);
    if let Some(raw) = metadata {
        let parsed = if raw.len() <= MAX_METADATA_BYTES {
            serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(raw).ok()
        } else {
            let mut note = serde_json::Map::new();
            note.insert("truncated".into(), serde_json::Value::Bool(true));
            Some(note)
        };
        if let Some(metadata) = parsed {
            if let Some(tags) = metadata.get("tags").and_then(|tags| tags.as_array()) {
                access.request_tags.extend(
                    tags.iter()
                        .filter_map(|tag| tag.as_str())
                        .map(str::to_owned),
                );
            }
            access.request_metadata = Some(metadata);
        }
    }
    for name in TAG_HEADERS {
        if let Some(value) = headers.get(name).and_then(|value| value.to_str().ok()) {
            access.request_tags.extend(
                value
                    .split(',')
                    .map(str::trim)
                    .filter(|tag| !tag.is_empty())
                    .map(str::to_owned),
            );
        }
    }
}

/// Charges a stream that ended without the provider's usage (the client went away, or the
/// provider broke off): its prompt as the gateway's tokenizer counts it, one token per event
/// relayed (streams carry about one token an event), flagged `estimated`. The prompt is
/// counted off the worker thread; the budget is settled and the record journaled after.
pub(crate) fn charge_estimate(access: &mut AccessRecord, body: bytes::Bytes) {
    let gateway = access.gateway().clone();
    let endpoint = access.endpoint;
    let price = access
        .lease
        .as_ref()
        .and_then(|lease| lease.deployment.config.price.clone());
    let reservation = access.reservation.take();
    let output = access.events_sent;
    let elapsed_ms = access.priced_duration_ms();
    let record = access.spend_record(tollgate_policy::keys::now_ms());
    let charge = async move {
        let prompt = crate::exchange::estimated_prompt_tokens(endpoint, &body)
            .await
            .unwrap_or(0);
        let usage = TokenUsage {
            input: prompt,
            output,
            ..TokenUsage::default()
        };
        let cost = price.map_or(Usd::ZERO, |price| price.cost(&usage, elapsed_ms));
        if let Some(reservation) = reservation {
            crate::budgets::settle(&gateway, reservation, cost);
        }
        if let (Some(ledger), Some(mut record)) = (&gateway.spend, record) {
            record.prompt_tokens = usage.input;
            record.completion_tokens = usage.output;
            record.spend = cost.nanos();
            record.estimated = true;
            ledger.append(record);
        }
    };
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => {
            runtime.spawn(charge);
        }
        Err(_) => tracing::warn!("a stream ended outside the runtime; its estimate is not charged"),
    }
}

/// Drains the journal whenever records arrive (in batches), retrying with backoff while the
/// database is away. Runs until dropped.
pub(crate) async fn run_flusher(gateway: Arc<Gateway>) {
    let Some(ledger) = gateway.spend.as_ref() else {
        return;
    };
    let mut retry_in = RETRY_FIRST;
    let mut failing = false;
    let mut nearly_full = false;
    loop {
        ledger.journal.appended().await;
        tokio::select! {
            _ = tokio::time::sleep(BATCH_WAIT) => {}
            _ = ledger.journal.batch_filled() => {}
        }
        match ledger.flush().await {
            Ok(drained) => {
                if failing {
                    tracing::info!(
                        records = drained.inserted,
                        "the database takes spend records again; the journal is drained"
                    );
                    failing = false;
                    nearly_full = false;
                }
                if drained.unreadable > 0 {
                    tracing::warn!(
                        lines = drained.unreadable,
                        "spend journal lines that were not records were skipped (a write cut short by a crash)"
                    );
                }
                retry_in = RETRY_FIRST;
            }
            Err(err) => {
                if !failing {
                    tracing::warn!(error = %err, pending_bytes = ledger.journal.pending_bytes(), "cannot store spend records; they stay in the journal until the database answers");
                    failing = true;
                }
                let (pending, max) = (ledger.journal.pending_bytes(), ledger.journal.max_bytes());
                if pending >= max / 5 * 4 && !nearly_full {
                    tracing::error!(
                        pending_bytes = pending,
                        max_bytes = max,
                        "ALERT: the spend journal is over 80% of spend_journal_max_mb; at the limit new requests are refused"
                    );
                    nearly_full = true;
                }
                tokio::time::sleep(retry_in).await;
                retry_in = (retry_in * 2).min(RETRY_MAX);
            }
        }
    }
}
