//! Virtual keys as stored: the key's SHA-256 (`token`), never the key itself, with what it may
//! do.

use std::collections::BTreeMap;

use futures_util::TryStreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sqlx::Row;
use sqlx::any::AnyRow;

use tollgate_core::calendar::BudgetPeriod;

use crate::audit::{self, Change};
use crate::directory::BudgetFields;
use crate::selection::Selection;
use crate::{Store, StoreError, is_unique_violation};

/// One virtual key, with LiteLLM's field names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyRecord {
    /// The SHA-256 of the key, in hex.
    pub token: String,
    /// The key masked for display (`sk-...abcd`).
    pub key_name: String,
    pub key_alias: Option<String>,
    pub user_id: Option<String>,
    pub team_id: Option<String>,
    pub organization_id: Option<String>,
    /// Models the key may call; empty means every model.
    pub models: Vec<String>,
    /// Model names the key may use for others (`{alias: model}`).
    pub aliases: Map<String, Value>,
    pub metadata: Map<String, Value>,
    pub tags: Vec<String>,
    pub permissions: Map<String, Value>,
    pub tpm_limit: Option<i64>,
    pub rpm_limit: Option<i64>,
    pub max_parallel_requests: Option<i64>,
    pub blocked: bool,
    /// Milliseconds since the Unix epoch.
    pub expires_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    pub created_by: Option<String>,
    #[serde(flatten)]
    pub budget: BudgetFields,
    /// Budgets for single models through this key (LiteLLM's `model_max_budget`), by the model
    /// name requests give.
    #[serde(default)]
    pub model_max_budget: BTreeMap<String, ModelBudget>,
}

/// What a key may spend on one model in a period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelBudget {
    /// Dollars.
    pub budget_limit: f64,
    /// `1d`, `30d`, `1mo`…; none: the key's own `budget_duration`.
    #[serde(default)]
    pub time_period: Option<String>,
}

impl ModelBudget {
    /// One entry of LiteLLM's `model_max_budget`, in either of its shapes: dollars alone
    /// (its older form), or `{"budget_limit": dollars (a number or a numeric string),
    /// "time_period": "1d"}`. The error says what is wrong with it.
    pub fn from_litellm(value: &Value) -> Result<ModelBudget, String> {
        let dollars = |value: &Value| {
            match value {
                Value::Number(number) => number.as_f64(),
                Value::String(text) => text.trim().parse::<f64>().ok(),
                _ => None,
            }
            .filter(|amount| amount.is_finite() && *amount >= 0.0)
        };
        let (limit, period) = match value {
            Value::Object(fields) => (
                fields.get("budget_limit").unwrap_or(&Value::Null),
                fields.get("time_period").filter(|period| !period.is_null()),
            ),
            amount => (amount, None),
        };
        let budget_limit = dollars(limit).ok_or_else(|| {
            format!("`budget_limit` must be a non-negative amount of dollars, got {limit}")
        })?;
        let time_period = period
            .map(|period| match period.as_str() {
                Some(text) if BudgetPeriod::parse(text).is_some() => Ok(text.to_owned()),
                _ => Err(format!(
                    "`time_period` must be a period like `1d`, `7d`, `30d` or `1mo`, got {period}"
                )),
            })
            .transpose()?;
        Ok(ModelBudget {
            budget_limit,
            time_period,
        })
    }
}

/// What `/key/list` filters on.
#[derive(Debug, Default, Clone)]
pub struct KeyFilter {
    pub user_id: Option<String>,
    pub team_id: Option<String>,
    pub organization_id: Option<String>,
    pub key_alias: Option<String>,
}

#[derive(Debug)]
pub struct KeyPage {
    pub keys: Vec<KeyRecord>,
    pub total: u64,
}

const COLUMNS: &str = "token, key_name, key_alias, user_id, team_id, organization_id, models, \
    aliases, metadata, tags, permissions, tpm_limit, rpm_limit, max_parallel_requests, blocked, \
    expires_at, created_at, updated_at, created_by, max_budget, soft_budget, budget_duration, budget_id, \
    model_max_budget";
/// How many columns `COLUMNS` names.
const COLUMN_COUNT: usize = 24;

impl Store {
    /// Adds a key; `Conflict` when its alias (or the key) is taken.
    pub async fn insert_key(&self, key: &KeyRecord, change: &Change<'_>) -> Result<(), StoreError> {
        let placeholders: Vec<String> = COLUMNS
            .split(", ")
            .enumerate()
            .map(|(index, column)| placeholder(column, index + 1))
            .collect();
        let sql = format!(
            "INSERT INTO tollgate_keys ({COLUMNS}) VALUES ({})",
            placeholders.join(", ")
        );
        let mut transaction = self.pool.begin().await?;
        let result = bind_all(sqlx::query(&sql), key)?
            .execute(&mut *transaction)
            .await;
        match result {
            Err(err) if is_unique_violation(&err) => return Err(conflict(key)),
            other => other?,
        };
        let after = Some(value(key));
        audit::record(&mut transaction, change, TABLE, &key.token, None, after).await?;
        transaction.commit().await?;
        Ok(())
    }

    /// Rewrites every field of the key stored under `token` (which may itself change, when a
    /// key is regenerated); false when there is none.
    pub async fn replace_key(
        &self,
        token: &str,
        key: &KeyRecord,
        change: &Change<'_>,
    ) -> Result<bool, StoreError> {
        let assignments: Vec<String> = COLUMNS
            .split(", ")
            .enumerate()
            .map(|(index, column)| format!("{column} = {}", placeholder(column, index + 1)))
            .collect();
        let sql = format!(
            "UPDATE tollgate_keys SET {} WHERE token = ${}",
            assignments.join(", "),
            COLUMN_COUNT + 1
        );
        let mut transaction = self.pool.begin().await?;
        let Some(before) = self.locked_key(&mut transaction, token).await? else {
            return Ok(false);
        };
        let result = bind_all(sqlx::query(&sql), key)?
            .bind(token.to_owned())
            .execute(&mut *transaction)
            .await;
        match result {
            Err(err) if is_unique_violation(&err) => return Err(conflict(key)),
            other => other?,
        };
        let (before, after) = (Some(value(&before)), Some(value(key)));
        audit::record(&mut transaction, change, TABLE, token, before, after).await?;
        transaction.commit().await?;
        Ok(true)
    }

    pub async fn key(&self, token: &str) -> Result<Option<KeyRecord>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM tollgate_keys WHERE token = $1");
        let row = sqlx::query(&sql)
            .bind(token.to_owned())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(read_key).transpose()
    }

    /// Hands every key to `take`, one row at a time: the gateway fills its cache this way at
    /// start-up, so a hundred thousand keys never sit in memory twice.
    pub async fn each_key(&self, mut take: impl FnMut(KeyRecord)) -> Result<(), StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM tollgate_keys");
        let mut rows = sqlx::query(&sql).fetch(&self.pool);
        while let Some(row) = rows.try_next().await? {
            take(read_key(&row)?);
        }
        Ok(())
    }

    /// Every key.
    pub async fn all_keys(&self) -> Result<Vec<KeyRecord>, StoreError> {
        let mut keys = Vec::new();
        self.each_key(|key| keys.push(key)).await?;
        Ok(keys)
    }

    /// One page of keys matching `filter`, newest first (`page` counts from 1).
    pub async fn list_keys(
        &self,
        filter: &KeyFilter,
        page: u32,
        size: u32,
    ) -> Result<KeyPage, StoreError> {
        let selection = Selection::default()
            .equal("user_id", filter.user_id.clone())
            .equal("team_id", filter.team_id.clone())
            .equal("organization_id", filter.organization_id.clone())
            .equal("key_alias", filter.key_alias.clone());
        let total = selection.count(&self.pool, TABLE).await?;
        let order = "created_at DESC, token";
        let rows = selection
            .page(&self.pool, TABLE, COLUMNS, order, page, size)
            .await?;
        Ok(KeyPage {
            keys: rows.iter().map(read_key).collect::<Result<_, _>>()?,
            total,
        })
    }

    /// Deletes the keys with these tokens; returns those that existed.
    pub async fn delete_keys(
        &self,
        tokens: &[String],
        change: &Change<'_>,
    ) -> Result<Vec<String>, StoreError> {
        let mut deleted = Vec::new();
        let mut transaction = self.pool.begin().await?;
        for token in tokens {
            let Some(before) = self.locked_key(&mut transaction, token).await? else {
                continue;
            };
            sqlx::query("DELETE FROM tollgate_keys WHERE token = $1")
                .bind(token.clone())
                .execute(&mut *transaction)
                .await?;
            let before = Some(value(&before));
            audit::record(&mut transaction, change, TABLE, token, before, None).await?;
            deleted.push(token.clone());
        }
        transaction.commit().await?;
        Ok(deleted)
    }

    /// The key stored under `token`, locked for the rest of the transaction.
    async fn locked_key(
        &self,
        connection: &mut sqlx::AnyConnection,
        token: &str,
    ) -> Result<Option<KeyRecord>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM tollgate_keys WHERE token = $1{}",
            self.row_lock()
        );
        let row = sqlx::query(&sql)
            .bind(token.to_owned())
            .fetch_optional(connection)
            .await?;
        row.as_ref().map(read_key).transpose()
    }
}

/// The keys' table, as the audit log names it.
pub const TABLE: &str = "tollgate_keys";

fn value(key: &KeyRecord) -> Value {
    serde_json::to_value(key).expect("keys serialise")
}

/// The `n`th parameter, for `column`. Dollar amounts are bound as text and cast: sqlx's `Any`
/// driver declares a missing `f64` to PostgreSQL as a `real`, and the statement it prepares
/// and caches then refuses the next key's amount.
fn placeholder(column: &str, n: usize) -> String {
    match column {
        "max_budget" | "soft_budget" => format!("CAST(${n} AS DOUBLE PRECISION)"),
        _ => format!("${n}"),
    }
}

/// A dollar amount as the text its column's cast reads (the shortest form that reads back
/// as the same `f64`).
fn amount(value: Option<f64>) -> Option<String> {
    value.map(|dollars| dollars.to_string())
}

type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;

fn bind_all<'q>(query: AnyQuery<'q>, key: &KeyRecord) -> Result<AnyQuery<'q>, StoreError> {
    Ok(query
        .bind(key.token.clone())
        .bind(key.key_name.clone())
        .bind(key.key_alias.clone())
        .bind(key.user_id.clone())
        .bind(key.team_id.clone())
        .bind(key.organization_id.clone())
        .bind(json_text(&key.models))
        .bind(json_text(&key.aliases))
        .bind(json_text(&key.metadata))
        .bind(json_text(&key.tags))
        .bind(json_text(&key.permissions))
        .bind(key.tpm_limit)
        .bind(key.rpm_limit)
        .bind(key.max_parallel_requests)
        .bind(i64::from(key.blocked))
        .bind(key.expires_at)
        .bind(key.created_at)
        .bind(key.updated_at)
        .bind(key.created_by.clone())
        .bind(amount(key.budget.max_budget))
        .bind(amount(key.budget.soft_budget))
        .bind(key.budget.budget_duration.clone())
        .bind(key.budget.budget_id.clone())
        .bind(json_text(&key.model_max_budget)))
}

/// A JSON column's text.
fn json_text<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("lists and maps of JSON values serialise")
}

fn read_key(row: &AnyRow) -> Result<KeyRecord, StoreError> {
    fn json<T: serde::de::DeserializeOwned>(
        row: &AnyRow,
        field: &'static str,
    ) -> Result<T, StoreError> {
        let text: String = row.try_get(field)?;
        serde_json::from_str(&text).map_err(|err| StoreError::Corrupt {
            field,
            reason: err.to_string(),
        })
    }
    Ok(KeyRecord {
        token: row.try_get("token")?,
        key_name: row.try_get("key_name")?,
        key_alias: row.try_get("key_alias")?,
        user_id: row.try_get("user_id")?,
        team_id: row.try_get("team_id")?,
        organization_id: row.try_get("organization_id")?,
        models: json(row, "models")?,
        aliases: json(row, "aliases")?,
        metadata: json(row, "metadata")?,
        tags: json(row, "tags")?,
        permissions: json(row, "permissions")?,
        tpm_limit: row.try_get("tpm_limit")?,
        rpm_limit: row.try_get("rpm_limit")?,
        max_parallel_requests: row.try_get("max_parallel_requests")?,
        blocked: row.try_get::<i64, _>("blocked")? != 0,
        expires_at: row.try_get("expires_at")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        created_by: row.try_get("created_by")?,
        budget: BudgetFields {
            max_budget: row.try_get("max_budget")?,
            soft_budget: row.try_get("soft_budget")?,
            budget_duration: row.try_get("budget_duration")?,
            budget_id: row.try_get("budget_id")?,
        },
        model_max_budget: json(row, "model_max_budget")?,
    })
}

fn conflict(key: &KeyRecord) -> StoreError {
    match &key.key_alias {
        Some(alias) => StoreError::Conflict(format!("a key with key_alias `{alias}`")),
        None => StoreError::Conflict("this key".to_owned()),
    }
}
