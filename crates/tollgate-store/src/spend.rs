//! Spend records: one per request, written in batches from the spend journal. A batch inserts
//! its records (a request id already stored is skipped, so replaying a batch changes nothing)
//! and adds what the new ones cost to the running totals and daily aggregates, in one
//! transaction.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};
use tollgate_core::calendar::{MS_PER_DAY, utc_day};

use crate::selection::Selection;
use crate::{Backend, Store, StoreError};

pub const SPEND_TABLE: &str = "tollgate_spend_logs";

/// One request, as its spend record keeps it. Money is in nano-dollars.
///
/// Serialised only into the spend journal, where a field holding its default is left out: the
/// record is written on every request's path and read back by the drain, and most fields are
/// empty for most requests.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SpendRecord {
    /// The gateway's own id for the request: unique, so a record is stored once.
    pub request_id: String,
    /// The id the client gave (`x-request-id`), which need not be unique.
    #[serde(default, skip_serializing_if = "is_default")]
    pub client_request_id: Option<String>,
    /// The endpoint: `/v1/chat/completions`, `/v1/messages`…
    pub call_type: String,
    /// The SHA-256 of the virtual key (none for the master key or an open gateway).
    #[serde(default, skip_serializing_if = "is_default")]
    pub key_hash: Option<String>,
    #[serde(default, skip_serializing_if = "is_default")]
    pub key_alias: Option<String>,
    #[serde(default, skip_serializing_if = "is_default")]
    pub user_id: Option<String>,
    #[serde(default, skip_serializing_if = "is_default")]
    pub team_id: Option<String>,
    #[serde(default, skip_serializing_if = "is_default")]
    pub organization_id: Option<String>,
    #[serde(default, skip_serializing_if = "is_default")]
    pub end_user: Option<String>,
    /// The model the client asked for.
    #[serde(default, skip_serializing_if = "is_default")]
    pub model_group: Option<String>,
    /// The provider's model that answered.
    #[serde(default, skip_serializing_if = "is_default")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "is_default")]
    pub deployment_id: Option<String>,
    #[serde(default, skip_serializing_if = "is_default")]
    pub provider: Option<String>,
    #[serde(default, skip_serializing_if = "is_default")]
    pub api_base: Option<String>,
    #[serde(default, skip_serializing_if = "is_default")]
    pub prompt_tokens: u64,
    #[serde(default, skip_serializing_if = "is_default")]
    pub completion_tokens: u64,
    #[serde(default, skip_serializing_if = "is_default")]
    pub cached_tokens: u64,
    #[serde(default, skip_serializing_if = "is_default")]
    pub cache_write_tokens: u64,
    #[serde(default, skip_serializing_if = "is_default")]
    pub reasoning_tokens: u64,
    /// Nano-dollars.
    #[serde(default, skip_serializing_if = "is_default")]
    pub spend: u64,
    /// The token counts are the gateway's estimate: the provider reported none.
    #[serde(default, skip_serializing_if = "is_default")]
    pub estimated: bool,
    /// `success` or `failure`.
    pub status: String,
    pub http_status: u16,
    /// What kind of failure: `rate_limit`, `upstream_timeout`, `client_disconnected`…
    #[serde(default, skip_serializing_if = "is_default")]
    pub error_class: Option<String>,
    /// Milliseconds since the Unix epoch.
    pub start_time: i64,
    pub end_time: i64,
    /// Milliseconds from the request to the first byte (stream: first event) of the answer.
    #[serde(default, skip_serializing_if = "is_default")]
    pub first_token_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "is_default")]
    pub stream: bool,
    #[serde(default, skip_serializing_if = "is_default")]
    pub cache_hit: bool,
    #[serde(default, skip_serializing_if = "is_default")]
    pub retries: u32,
    #[serde(default, skip_serializing_if = "is_default")]
    pub fallbacks: u32,
    #[serde(default, skip_serializing_if = "is_default")]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "is_default")]
    pub metadata: Map<String, Value>,
}

fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

impl SpendRecord {
    pub fn succeeded(&self) -> bool {
        self.status == "success"
    }

    /// Whom the record's spend counts against: its key, user, team, organisation, end user,
    /// team member (`team/user`) and tags.
    pub fn entities(&self) -> Vec<(EntityKind, String)> {
        let mut entities = Vec::with_capacity(6 + self.tags.len());
        let named = [
            (EntityKind::Key, &self.key_hash),
            (EntityKind::User, &self.user_id),
            (EntityKind::Team, &self.team_id),
            (EntityKind::Organization, &self.organization_id),
            (EntityKind::EndUser, &self.end_user),
        ];
        for (kind, id) in named {
            if let Some(id) = id {
                entities.push((kind, id.clone()));
            }
        }
        if let (Some(team), Some(user)) = (&self.team_id, &self.user_id) {
            entities.push((EntityKind::TeamMember, format!("{team}/{user}")));
        }
        for tag in &self.tags {
            entities.push((EntityKind::Tag, tag.clone()));
        }
        entities
    }
}

/// What a spend total or aggregate belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EntityKind {
    Key,
    User,
    Team,
    Organization,
    EndUser,
    TeamMember,
    Tag,
    /// A key's spend on one model (`{key hash}/{model group}`), for per-model budgets: read
    /// from the key's daily aggregates and records, never stored under this kind.
    KeyModel,
    /// Everything through the gateway (daily aggregates only, per model group).
    Gateway,
}

impl EntityKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EntityKind::Key => "key",
            EntityKind::User => "user",
            EntityKind::Team => "team",
            EntityKind::Organization => "organization",
            EntityKind::EndUser => "end_user",
            EntityKind::TeamMember => "team_member",
            EntityKind::Tag => "tag",
            EntityKind::KeyModel => "key_model",
            EntityKind::Gateway => "gateway",
        }
    }
}

/// What `/spend/logs` filters on. Times are milliseconds since the Unix epoch, `until`
/// exclusive.
#[derive(Debug, Default, Clone)]
pub struct SpendFilter {
    /// The gateway's id of the request, or the id its client gave.
    pub request_id: Option<String>,
    pub key_hash: Option<String>,
    pub user_id: Option<String>,
    pub team_id: Option<String>,
    pub end_user: Option<String>,
    pub model_group: Option<String>,
    pub since: Option<i64>,
    pub until: Option<i64>,
}

#[derive(Debug)]
pub struct SpendPage {
    pub records: Vec<SpendRecord>,
    pub total: u64,
}

/// How `/global/spend/report` groups spend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpendGrouping {
    Key,
    Team,
    User,
    Model,
    Day,
}

impl SpendGrouping {
    /// Which daily aggregates hold it: the entity kind, the column grouped by, the order.
    fn aggregate(self) -> (&'static str, &'static str, &'static str) {
        // Output columns only: the union of a report's groups and total can order by nothing else.
        let by_spend = "spend DESC, grouped";
        match self {
            SpendGrouping::Key => (EntityKind::Key.as_str(), "entity_id", by_spend),
            SpendGrouping::Team => (EntityKind::Team.as_str(), "entity_id", by_spend),
            SpendGrouping::User => (EntityKind::User.as_str(), "entity_id", by_spend),
            SpendGrouping::Model => (EntityKind::Gateway.as_str(), "model_group", by_spend),
            SpendGrouping::Day => (EntityKind::Gateway.as_str(), "day", "day"),
        }
    }
}

/// One row of a spend report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpendGroup {
    /// The key hash, team, user, model group or day (`YYYY-MM-DD`); `None` for requests
    /// without one (the master key's, say).
    pub group: Option<String>,
    pub requests: u64,
    pub failed_requests: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// Nano-dollars.
    pub spend: u64,
}

const COLUMNS: &str = "request_id, call_type, key_hash, key_alias, user_id, team_id, \
    organization_id, end_user, model_group, model, deployment_id, provider, api_base, \
    prompt_tokens, completion_tokens, cached_tokens, cache_write_tokens, reasoning_tokens, spend, \
    estimated, status, http_status, error_class, start_time, end_time, first_token_ms, stream, \
    cache_hit, retries, fallbacks, tags, metadata, client_request_id";
const COLUMN_COUNT: usize = 33;

impl Store {
    /// Stores `records` and counts the new ones into the totals and daily aggregates, in one
    /// transaction. Records already stored (by request id) are skipped. Returns how many were
    /// new.
    pub async fn insert_spend(&self, records: &[SpendRecord]) -> Result<usize, StoreError> {
        // Records are stored once unless a crash fell between a batch's commit and the
        // journal's cut, so each chunk is first inserted blind and only its row count read
        // (rows sent back cost the drain a tenth of its time). Should a count come up short,
        // the batch starts over, learning which ids are new from the insert itself.
        if let Some(inserted) = self.insert_new_spend(records).await? {
            return Ok(inserted);
        }
        let mut transaction = self.pool.begin().await?;
        let mut inserted = Vec::with_capacity(records.len());
        let statements = self.statements();
        for chunk in records.chunks(statements.rows_per_insert) {
            let new_ids = insert_chunk_returning_new(&mut transaction, statements, chunk).await?;
            inserted.extend(
                chunk
                    .iter()
                    .filter(|record| new_ids.contains(record.request_id.as_str())),
            );
        }
        add_to_totals(&mut transaction, &inserted, statements).await?;
        transaction.commit().await?;
        Ok(inserted.len())
    }

    /// [`Store::insert_spend`] when every record is new; `None`, with nothing changed, when
    /// one was stored before.
    async fn insert_new_spend(&self, records: &[SpendRecord]) -> Result<Option<usize>, StoreError> {
        let mut transaction = self.pool.begin().await?;
        let statements = self.statements();
        for chunk in records.chunks(statements.rows_per_insert) {
            let sql = insert_sql(statements, chunk.len(), "");
            let query = bind_records(
                sqlx::query(&sql).persistent(chunk.len() == statements.rows_per_insert),
                chunk,
            );
            if query.execute(&mut *transaction).await?.rows_affected() != chunk.len() as u64 {
                transaction.rollback().await?;
                return Ok(None);
            }
        }
        let all: Vec<&SpendRecord> = records.iter().collect();
        add_to_totals(&mut transaction, &all, statements).await?;
        transaction.commit().await?;
        Ok(Some(records.len()))
    }

    /// Rows per multi-row `INSERT` of records and per upsert of totals, within both
    /// backends' limits on parameters (PostgreSQL gains most from few round trips).
    fn statements(&self) -> Statements {
        let (rows_per_insert, rows_per_upsert) = match self.backend {
            Backend::Postgres => (200, 500),
            Backend::Sqlite => (100, 500),
        };
        Statements {
            backend: self.backend,
            rows_per_insert,
            rows_per_upsert,
        }
    }

    /// One page of records matching `filter`, newest first (`page` counts from 1).
    pub async fn spend_logs(
        &self,
        filter: &SpendFilter,
        page: u32,
        size: u32,
    ) -> Result<SpendPage, StoreError> {
        let selection = Selection::default()
            .equal_either(
                ["request_id", "client_request_id"],
                filter.request_id.clone(),
            )
            .equal("key_hash", filter.key_hash.clone())
            .equal("user_id", filter.user_id.clone())
            .equal("team_id", filter.team_id.clone())
            .equal("end_user", filter.end_user.clone())
            .equal("model_group", filter.model_group.clone())
            .written(filter.since.map(|ms| format!("start_time >= {ms}")))
            .written(filter.until.map(|ms| format!("start_time < {ms}")));
        let total = selection.count(&self.pool, SPEND_TABLE).await?;
        let rows = selection
            .page(
                &self.pool,
                SPEND_TABLE,
                COLUMNS,
                "start_time DESC, request_id",
                page,
                size,
            )
            .await?;
        Ok(SpendPage {
            records: rows.iter().map(read_record).collect::<Result<_, _>>()?,
            total,
        })
    }

    /// What each entity of `kind` has spent in all (nano-dollars), for those of `ids` that
    /// have spent anything.
    pub async fn spend_totals(
        &self,
        kind: EntityKind,
        ids: &[&str],
    ) -> Result<HashMap<String, u64>, StoreError> {
        let mut totals = HashMap::new();
        for chunk in ids.chunks(500) {
            if chunk.is_empty() {
                continue;
            }
            let placeholders: Vec<String> = (2..chunk.len() + 2).map(|n| format!("${n}")).collect();
            let sql = format!(
                "SELECT entity_id, spend FROM tollgate_spend_totals \
                 WHERE entity_kind = $1 AND entity_id IN ({})",
                placeholders.join(", ")
            );
            let mut query = sqlx::query(&sql).bind(kind.as_str());
            for id in chunk {
                query = query.bind(*id);
            }
            for row in query.fetch_all(&self.pool).await? {
                let id: String = row.try_get("entity_id")?;
                let spend: i64 = row.try_get("spend")?;
                totals.insert(id, spend.max(0) as u64);
            }
        }
        Ok(totals)
    }

    /// What each entity of `kind` (or just `only`) has spent since `since` (milliseconds;
    /// `i64::MIN` for all time), in nano-dollars: from the running totals for all time, from
    /// the daily aggregates for periods that start at midnight, from the records otherwise
    /// (tags and team members, which records hold no column for, from the start of that day —
    /// counting a little more rather than less). A key's spend on a model (`KeyModel`, ids
    /// `{key hash}/{model group}`) has no running total: all time is its aggregates' sum.
    pub async fn period_spend(
        &self,
        kind: EntityKind,
        since: i64,
        only: Option<&str>,
    ) -> Result<HashMap<String, u64>, StoreError> {
        let column = match kind {
            EntityKind::Key => Some("key_hash"),
            EntityKind::User => Some("user_id"),
            EntityKind::Team => Some("team_id"),
            EntityKind::Organization => Some("organization_id"),
            EntityKind::EndUser => Some("end_user"),
            EntityKind::KeyModel => Some("key_hash || '/' || model_group"),
            EntityKind::TeamMember | EntityKind::Tag | EntityKind::Gateway => None,
        };
        // A key's spend on a model is in the key's aggregates, by model group.
        let (aggregate_kind, aggregate_id) = match kind {
            EntityKind::KeyModel => (EntityKind::Key, "entity_id || '/' || model_group"),
            _ => (kind, "entity_id"),
        };
        // The query (up to its WHERE conditions), the column naming the entity, and the text
        // values it binds, in order.
        let (mut sql, id_column, mut binds) = match column {
            _ if since == i64::MIN && kind == EntityKind::KeyModel => (
                format!(
                    "SELECT {aggregate_id} AS id, CAST(SUM(spend) AS BIGINT) AS spend \
                     FROM tollgate_daily_spend WHERE entity_kind = $1"
                ),
                aggregate_id,
                vec![aggregate_kind.as_str().to_owned()],
            ),
            _ if since == i64::MIN => (
                "SELECT entity_id AS id, spend FROM tollgate_spend_totals WHERE entity_kind = $1"
                    .to_owned(),
                "entity_id",
                vec![kind.as_str().to_owned()],
            ),
            Some(column) if since.rem_euclid(MS_PER_DAY) != 0 => (
                format!(
                    "SELECT {column} AS id, CAST(SUM(spend) AS BIGINT) AS spend FROM {SPEND_TABLE} \
                     WHERE start_time >= {since} AND {column} IS NOT NULL"
                ),
                column,
                Vec::new(),
            ),
            _ => (
                format!(
                    "SELECT {aggregate_id} AS id, CAST(SUM(spend) AS BIGINT) AS spend \
                     FROM tollgate_daily_spend WHERE entity_kind = $1 AND day >= '{}'",
                    utc_day(since)
                ),
                aggregate_id,
                vec![aggregate_kind.as_str().to_owned()],
            ),
        };
        if let Some(id) = only {
            binds.push(id.to_owned());
            sql.push_str(&format!(" AND {id_column} = ${}", binds.len()));
        }
        if since != i64::MIN || kind == EntityKind::KeyModel {
            sql.push_str(&format!(" GROUP BY {id_column}"));
        }
        let mut query = sqlx::query(&sql);
        for value in binds {
            query = query.bind(value);
        }
        let mut spent = HashMap::new();
        for row in query.fetch_all(&self.pool).await? {
            let id: String = row.try_get("id")?;
            let spend: Option<i64> = row.try_get("spend")?;
            spent.insert(id, spend.unwrap_or(0).max(0) as u64);
        }
        Ok(spent)
    }

    /// Spend on the UTC days from `since` to `until` (milliseconds, `until` exclusive, each
    /// day counted whole), grouped, most spent first (by day: in date order). Read from the
    /// daily aggregates, so a report never scans the records; requests with no key, team or
    /// user (the master key's) are in the `model` and `day` groupings only.
    pub async fn spend_report(
        &self,
        grouping: SpendGrouping,
        since: i64,
        until: i64,
    ) -> Result<Vec<SpendGroup>, StoreError> {
        let (first, last) = (utc_day(since), utc_day(until - 1));
        let (kind, column, order) = grouping.aggregate();
        let days = format!("day >= '{first}' AND day <= '{last}'");
        if kind == EntityKind::Gateway.as_str() {
            let sql = format!(
                "SELECT {column} AS grouped, {REPORT_SUMS} FROM tollgate_daily_spend \
                 WHERE entity_kind = '{kind}' AND {days} GROUP BY {column} ORDER BY {order}"
            );
            return Ok(self.read_groups(&sql).await?.1);
        }
        // What no entity of the kind accounts for (the master key's requests have no key, team
        // or user) is one row of its own, with no name: the gateway's total less the groups',
        // both read by one statement, so a batch stored meanwhile cannot fall between them.
        let sql = format!(
            "SELECT CAST(0 AS BIGINT) AS whole, {column} AS grouped, {REPORT_SUMS} FROM tollgate_daily_spend \
             WHERE entity_kind = '{kind}' AND {days} GROUP BY {column} \
             UNION ALL \
             SELECT CAST(1 AS BIGINT) AS whole, NULL AS grouped, {REPORT_SUMS} FROM tollgate_daily_spend \
             WHERE entity_kind = 'gateway' AND {days} \
             ORDER BY whole, {order}"
        );
        let (all, mut groups) = self.read_groups(&sql).await?;
        if let Some(all) = all {
            let counted = |field: fn(&SpendGroup) -> u64| -> u64 { groups.iter().map(field).sum() };
            let rest = SpendGroup {
                group: None,
                requests: all.requests.saturating_sub(counted(|g| g.requests)),
                failed_requests: all
                    .failed_requests
                    .saturating_sub(counted(|g| g.failed_requests)),
                prompt_tokens: all
                    .prompt_tokens
                    .saturating_sub(counted(|g| g.prompt_tokens)),
                completion_tokens: all
                    .completion_tokens
                    .saturating_sub(counted(|g| g.completion_tokens)),
                spend: all.spend.saturating_sub(counted(|g| g.spend)),
            };
            if rest.requests > 0 {
                let at = groups.partition_point(|group| group.spend >= rest.spend);
                groups.insert(at, rest);
            }
        }
        Ok(groups)
    }

    /// The rows of a report query: the one marked `whole` (the gateway's total), if the query
    /// has that column, and the groups.
    async fn read_groups(
        &self,
        sql: &str,
    ) -> Result<(Option<SpendGroup>, Vec<SpendGroup>), StoreError> {
        let rows = sqlx::query(sql).fetch_all(&self.pool).await?;
        let (mut whole, mut groups) = (None, Vec::with_capacity(rows.len()));
        for row in &rows {
            let count = |name: &str| -> Result<u64, StoreError> {
                Ok(row.try_get::<Option<i64>, _>(name)?.unwrap_or(0).max(0) as u64)
            };
            let group = SpendGroup {
                group: row.try_get("grouped")?,
                requests: count("requests")?,
                failed_requests: count("failed")?,
                prompt_tokens: count("prompt")?,
                completion_tokens: count("completion")?,
                spend: count("spend")?,
            };
            if row.try_get::<i64, _>("whole").is_ok_and(|whole| whole == 1) {
                whole = Some(group);
            } else {
                groups.push(group);
            }
        }
        Ok((whole, groups))
    }
}

/// The model group under which spend brought over from LiteLLM is filed in the daily
/// aggregates. These rows are the record of what was imported: importing again replaces them
/// instead of adding to them (see `Store::set_imported_spend`).
pub const IMPORTED_SPEND_GROUP: &str = "(imported from litellm)";

impl Store {
    /// What was imported for each entity of `kind`, in nano-dollars (the sum of its import
    /// rows; entities with none are absent).
    pub async fn imported_spend(
        &self,
        kind: EntityKind,
    ) -> Result<HashMap<String, u64>, StoreError> {
        let rows = sqlx::query(
            "SELECT entity_id, CAST(SUM(spend) AS BIGINT) AS spend FROM tollgate_daily_spend \
             WHERE entity_kind = $1 AND model_group = $2 GROUP BY entity_id",
        )
        .bind(kind.as_str())
        .bind(IMPORTED_SPEND_GROUP)
        .fetch_all(&self.pool)
        .await?;
        let mut imported = HashMap::with_capacity(rows.len());
        for row in rows {
            let spend: Option<i64> = row.try_get("spend")?;
            imported.insert(row.try_get("entity_id")?, spend.unwrap_or(0).max(0) as u64);
        }
        Ok(imported)
    }

    /// Records that `id` had spent `spend` nano-dollars before it came to Tollgate (LiteLLM's
    /// `spend`: what it spent since its budget last reset). The amount is kept as one row of
    /// the daily aggregates for the UTC day of `at_ms`, under `IMPORTED_SPEND_GROUP`, so a
    /// budget whose period is running counts it; the running total moves by the difference
    /// from what was imported before. So importing the same figure again changes nothing, a
    /// new figure replaces the old one, and what the entity spent through Tollgate is kept.
    /// Returns the amount imported before.
    pub async fn set_imported_spend(
        &self,
        kind: EntityKind,
        id: &str,
        spend: u64,
        at_ms: i64,
    ) -> Result<u64, StoreError> {
        let mut transaction = self.pool.begin().await?;
        let sql = format!(
            "SELECT spend FROM tollgate_daily_spend WHERE entity_kind = $1 AND entity_id = $2 \
             AND model_group = $3{}",
            self.row_lock()
        );
        let rows = sqlx::query(&sql)
            .bind(kind.as_str())
            .bind(id.to_owned())
            .bind(IMPORTED_SPEND_GROUP)
            .fetch_all(&mut *transaction)
            .await?;
        let mut before: i64 = 0;
        for row in &rows {
            before = before.saturating_add(row.try_get::<i64, _>("spend")?.max(0));
        }
        let after = count(spend);
        if before == after {
            return Ok(before as u64);
        }
        sqlx::query(
            "DELETE FROM tollgate_daily_spend WHERE entity_kind = $1 AND entity_id = $2 \
             AND model_group = $3",
        )
        .bind(kind.as_str())
        .bind(id.to_owned())
        .bind(IMPORTED_SPEND_GROUP)
        .execute(&mut *transaction)
        .await?;
        if after > 0 {
            sqlx::query(
                "INSERT INTO tollgate_daily_spend (day, entity_kind, entity_id, model_group, \
                 requests, failed_requests, prompt_tokens, completion_tokens, cached_tokens, spend) \
                 VALUES ($1, $2, $3, $4, 0, 0, 0, 0, 0, $5)",
            )
            .bind(utc_day(at_ms))
            .bind(kind.as_str())
            .bind(id.to_owned())
            .bind(IMPORTED_SPEND_GROUP)
            .bind(after)
            .execute(&mut *transaction)
            .await?;
        }
        sqlx::query(
            "INSERT INTO tollgate_spend_totals (entity_kind, entity_id, spend, requests, updated_at) \
             VALUES ($1, $2, $3, 0, $4) ON CONFLICT (entity_kind, entity_id) DO UPDATE SET \
             spend = tollgate_spend_totals.spend + $5, updated_at = excluded.updated_at",
        )
        .bind(kind.as_str())
        .bind(id.to_owned())
        .bind(after)
        .bind(at_ms)
        .bind(after - before)
        .execute(&mut *transaction)
        .await?;
        transaction.commit().await?;
        Ok(before as u64)
    }
}

/// The figures of a spend report, summed over the daily aggregates (cast back to BIGINT:
/// PostgreSQL sums BIGINTs as NUMERIC, which the portable driver cannot read).
const REPORT_SUMS: &str = "CAST(SUM(requests) AS BIGINT) AS requests, \
    CAST(SUM(failed_requests) AS BIGINT) AS failed, \
    CAST(SUM(prompt_tokens) AS BIGINT) AS prompt, \
    CAST(SUM(completion_tokens) AS BIGINT) AS completion, \
    CAST(SUM(spend) AS BIGINT) AS spend";

/// Inserts one chunk; returns the request ids that were new.
async fn insert_chunk_returning_new(
    transaction: &mut Transaction<'_, Any>,
    statements: Statements,
    chunk: &[SpendRecord],
) -> Result<std::collections::HashSet<String>, StoreError> {
    let sql = insert_sql(statements, chunk.len(), " RETURNING request_id");
    let query = bind_records(sqlx::query(&sql).persistent(false), chunk);
    let mut new_ids = std::collections::HashSet::with_capacity(chunk.len());
    for row in query.fetch_all(&mut **transaction).await? {
        new_ids.insert(row.try_get::<String, _>("request_id")?);
    }
    Ok(new_ids)
}

/// The insert of `rows` records that skips stored ones, followed by `returning`. The full
/// chunk's blind insert, the one nearly every batch runs, is written once.
fn insert_sql(statements: Statements, rows: usize, returning: &str) -> Cow<'static, str> {
    let write = || {
        format!(
            "INSERT INTO {SPEND_TABLE} ({COLUMNS}) VALUES {} \
             ON CONFLICT (request_id) DO NOTHING{returning}",
            placeholders(statements.backend, rows, COLUMN_COUNT)
        )
    };
    static FULL: [OnceLock<String>; 2] = [OnceLock::new(), OnceLock::new()];
    if rows != statements.rows_per_insert || !returning.is_empty() {
        return Cow::Owned(write());
    }
    let slot = match statements.backend {
        Backend::Postgres => &FULL[0],
        Backend::Sqlite => &FULL[1],
    };
    Cow::Borrowed(slot.get_or_init(write).as_str())
}

/// The chunk's records bound in column order. Only full chunks' statement is kept prepared
/// (parsing thousands of placeholders is a tenth of a drain's work): one for each size of the
/// last chunk, hundreds of rows each, would fill the connection's cache with megabytes of
/// compiled SQL.
fn bind_records<'q>(
    mut query: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>>,
    chunk: &'q [SpendRecord],
) -> sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>> {
    for record in chunk {
        let tags = serde_json::to_string(&record.tags).unwrap_or_else(|_| "[]".into());
        let metadata = serde_json::to_string(&record.metadata).unwrap_or_else(|_| "{}".into());
        query = query
            .bind(record.request_id.as_str())
            .bind(record.call_type.as_str())
            .bind(record.key_hash.as_deref())
            .bind(record.key_alias.as_deref())
            .bind(record.user_id.as_deref())
            .bind(record.team_id.as_deref())
            .bind(record.organization_id.as_deref())
            .bind(record.end_user.as_deref())
            .bind(record.model_group.as_deref())
            .bind(record.model.as_deref())
            .bind(record.deployment_id.as_deref())
            .bind(record.provider.as_deref())
            .bind(record.api_base.as_deref())
            .bind(count(record.prompt_tokens))
            .bind(count(record.completion_tokens))
            .bind(count(record.cached_tokens))
            .bind(count(record.cache_write_tokens))
            .bind(count(record.reasoning_tokens))
            .bind(count(record.spend))
            .bind(i64::from(record.estimated))
            .bind(record.status.as_str())
            .bind(i64::from(record.http_status))
            .bind(record.error_class.as_deref())
            .bind(record.start_time)
            .bind(record.end_time)
            .bind(record.first_token_ms)
            .bind(i64::from(record.stream))
            .bind(i64::from(record.cache_hit))
            .bind(i64::from(record.retries))
            .bind(i64::from(record.fallbacks))
            .bind(tags)
            .bind(metadata)
            .bind(record.client_request_id.as_deref());
    }
    query
}

/// Adds the new records to each entity's running total and to the day's aggregates.
async fn add_to_totals(
    transaction: &mut Transaction<'_, Any>,
    records: &[&SpendRecord],
    statements: Statements,
) -> Result<(), StoreError> {
    #[derive(Default)]
    struct Sum {
        requests: i64,
        failed: i64,
        prompt: i64,
        completion: i64,
        cached: i64,
        spend: i64,
    }
    impl Sum {
        fn add(&mut self, record: &SpendRecord) {
            self.requests += 1;
            self.failed += i64::from(!record.succeeded());
            self.prompt += count(record.prompt_tokens);
            self.completion += count(record.completion_tokens);
            self.cached += count(record.cached_tokens);
            self.spend += count(record.spend);
        }
    }
    let mut totals: HashMap<(EntityKind, String), Sum> = HashMap::new();
    let mut daily: HashMap<(String, EntityKind, String, String), Sum> = HashMap::new();
    for record in records {
        let day = utc_day(record.start_time);
        let model_group = record.model_group.clone().unwrap_or_default();
        for (kind, id) in record
            .entities()
            .into_iter()
            .chain([(EntityKind::Gateway, String::new())])
        {
            if kind != EntityKind::Gateway {
                totals.entry((kind, id.clone())).or_default().add(record);
            }
            daily
                .entry((day.clone(), kind, id, model_group.clone()))
                .or_default()
                .add(record);
        }
    }
    let now = records.iter().map(|r| r.end_time).max().unwrap_or(0);
    // Many rows per statement (each entity once, so no statement touches a row twice).
    let totals: Vec<_> = totals.into_iter().collect();
    for chunk in totals.chunks(statements.rows_per_upsert) {
        let sql = format!(
            "INSERT INTO tollgate_spend_totals (entity_kind, entity_id, spend, requests, updated_at) \
             VALUES {} ON CONFLICT (entity_kind, entity_id) DO UPDATE SET \
             spend = tollgate_spend_totals.spend + excluded.spend, \
             requests = tollgate_spend_totals.requests + excluded.requests, \
             updated_at = excluded.updated_at",
            placeholders(statements.backend, chunk.len(), 5)
        );
        // Not kept prepared: a statement for each batch size, hundreds of rows each, would
        // fill the connection's cache with megabytes of compiled SQL.
        let mut query = sqlx::query(&sql).persistent(false);
        for ((kind, id), sum) in chunk {
            query = query
                .bind(kind.as_str())
                .bind(id.clone())
                .bind(sum.spend)
                .bind(sum.requests)
                .bind(now);
        }
        query.execute(&mut **transaction).await?;
    }
    let daily: Vec<_> = daily.into_iter().collect();
    for chunk in daily.chunks(statements.rows_per_upsert) {
        let sql = format!(
            "INSERT INTO tollgate_daily_spend (day, entity_kind, entity_id, model_group, requests, \
             failed_requests, prompt_tokens, completion_tokens, cached_tokens, spend) \
             VALUES {} ON CONFLICT (day, entity_kind, entity_id, model_group) DO UPDATE SET \
             requests = tollgate_daily_spend.requests + excluded.requests, \
             failed_requests = tollgate_daily_spend.failed_requests + excluded.failed_requests, \
             prompt_tokens = tollgate_daily_spend.prompt_tokens + excluded.prompt_tokens, \
             completion_tokens = tollgate_daily_spend.completion_tokens + excluded.completion_tokens, \
             cached_tokens = tollgate_daily_spend.cached_tokens + excluded.cached_tokens, \
             spend = tollgate_daily_spend.spend + excluded.spend",
            placeholders(statements.backend, chunk.len(), 10)
        );
        // Not kept prepared: a statement for each batch size, hundreds of rows each, would
        // fill the connection's cache with megabytes of compiled SQL.
        let mut query = sqlx::query(&sql).persistent(false);
        for ((day, kind, id, model_group), sum) in chunk {
            query = query
                .bind(day.clone())
                .bind(kind.as_str())
                .bind(id.clone())
                .bind(model_group.clone())
                .bind(sum.requests)
                .bind(sum.failed)
                .bind(sum.prompt)
                .bind(sum.completion)
                .bind(sum.cached)
                .bind(sum.spend);
        }
        query.execute(&mut **transaction).await?;
    }
    Ok(())
}

/// `($1, …, $columns), ($columns+1, …), …` for `rows` rows — on SQLite `(?, …)`: it binds
/// numbered parameters by looking each one up in a list, in time that grows with the square
/// of a statement's parameters (200-row inserts took 48 ms each).
fn placeholders(backend: Backend, rows: usize, columns: usize) -> String {
    let row = |first: usize| -> String {
        let params: Vec<String> = (first..first + columns)
            .map(|n| match backend {
                Backend::Postgres => format!("${n}"),
                Backend::Sqlite => "?".to_owned(),
            })
            .collect();
        format!("({})", params.join(", "))
    };
    (0..rows)
        .map(|index| row(index * columns + 1))
        .collect::<Vec<_>>()
        .join(", ")
}

/// How a backend takes many-row statements.
#[derive(Debug, Clone, Copy)]
struct Statements {
    backend: Backend,
    rows_per_insert: usize,
    rows_per_upsert: usize,
}

/// A count or amount as the database's BIGINT holds it.
fn count(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn read_record(row: &AnyRow) -> Result<SpendRecord, StoreError> {
    let number =
        |name: &str| -> Result<u64, StoreError> { Ok(row.try_get::<i64, _>(name)?.max(0) as u64) };
    let flag = |name: &str| -> Result<bool, StoreError> { Ok(row.try_get::<i64, _>(name)? != 0) };
    let tags: String = row.try_get("tags")?;
    let metadata: String = row.try_get("metadata")?;
    Ok(SpendRecord {
        request_id: row.try_get("request_id")?,
        client_request_id: row.try_get("client_request_id")?,
        call_type: row.try_get("call_type")?,
        key_hash: row.try_get("key_hash")?,
        key_alias: row.try_get("key_alias")?,
        user_id: row.try_get("user_id")?,
        team_id: row.try_get("team_id")?,
        organization_id: row.try_get("organization_id")?,
        end_user: row.try_get("end_user")?,
        model_group: row.try_get("model_group")?,
        model: row.try_get("model")?,
        deployment_id: row.try_get("deployment_id")?,
        provider: row.try_get("provider")?,
        api_base: row.try_get("api_base")?,
        prompt_tokens: number("prompt_tokens")?,
        completion_tokens: number("completion_tokens")?,
        cached_tokens: number("cached_tokens")?,
        cache_write_tokens: number("cache_write_tokens")?,
        reasoning_tokens: number("reasoning_tokens")?,
        spend: number("spend")?,
        estimated: flag("estimated")?,
        status: row.try_get("status")?,
        http_status: u16::try_from(number("http_status")?).unwrap_or(0),
        error_class: row.try_get("error_class")?,
        start_time: row.try_get("start_time")?,
        end_time: row.try_get("end_time")?,
        first_token_ms: row.try_get("first_token_ms")?,
        stream: flag("stream")?,
        cache_hit: flag("cache_hit")?,
        retries: u32::try_from(number("retries")?).unwrap_or(u32::MAX),
        fallbacks: u32::try_from(number("fallbacks")?).unwrap_or(u32::MAX),
        tags: serde_json::from_str(&tags).map_err(|err| StoreError::Corrupt {
            field: "spend tags",
            reason: err.to_string(),
        })?,
        metadata: serde_json::from_str(&metadata).map_err(|err| StoreError::Corrupt {
            field: "spend metadata",
            reason: err.to_string(),
        })?,
    })
}
