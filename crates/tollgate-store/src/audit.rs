//! The audit log: every change made through the store, with who made it, when, and the record
//! before and after (secrets masked), written in the same transaction as the change itself so
//! neither exists without the other. Field names are LiteLLM's (`changed_by`, `table_name`,
//! `object_id`, `before_value`, `updated_values`). Other replicas read it as a change feed.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::secrets::SECRET_FIELDS;
use crate::selection::Selection;
use crate::{Store, StoreError};

/// Who is changing the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The user id behind the caller's key, its alias, or `master_key`.
    pub changed_by: String,
    /// The SHA-256 of the caller's key (none for the master key).
    pub changed_by_api_key: Option<String>,
}

impl Actor {
    /// The gateway itself (start-up imports, maintenance).
    pub fn system() -> Actor {
        Actor {
            changed_by: "tollgate".to_owned(),
            changed_by_api_key: None,
        }
    }

    /// A change by this actor, now.
    pub fn change(&self, action: Action) -> Change<'_> {
        Change {
            actor: self,
            action,
            at: now_ms(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Created,
    Updated,
    Deleted,
    Blocked,
    Unblocked,
    Regenerated,
}

impl Action {
    fn as_str(self) -> &'static str {
        match self {
            Action::Created => "created",
            Action::Updated => "updated",
            Action::Deleted => "deleted",
            Action::Blocked => "blocked",
            Action::Unblocked => "unblocked",
            Action::Regenerated => "regenerated",
        }
    }
}

/// One write to the store: every write method takes one and logs it.
#[derive(Debug, Clone, Copy)]
pub struct Change<'a> {
    pub actor: &'a Actor,
    pub action: Action,
    /// Milliseconds since the Unix epoch.
    pub at: i64,
}

/// One entry of the audit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub id: String,
    /// Milliseconds since the Unix epoch.
    pub updated_at: i64,
    pub changed_by: String,
    pub changed_by_api_key: Option<String>,
    pub action: Action,
    pub table_name: String,
    pub object_id: String,
    pub before_value: Option<Value>,
    pub updated_values: Option<Value>,
}

/// What `/audit` filters on.
#[derive(Debug, Default, Clone)]
pub struct AuditFilter {
    pub table_name: Option<String>,
    pub object_id: Option<String>,
    pub changed_by: Option<String>,
    pub action: Option<Action>,
    /// Entries at or after this time (ms).
    pub since: Option<i64>,
    /// Entries before this time (ms).
    pub until: Option<i64>,
}

#[derive(Debug)]
pub struct AuditPage {
    pub entries: Vec<AuditRecord>,
    pub total: u64,
}

/// A record that changed, as the change feed reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changed {
    pub table_name: String,
    pub object_id: String,
    pub at: i64,
    /// The id it is stored under now, when the change gave it a new one (a regenerated key's
    /// new token).
    pub replaced_by: Option<String>,
}

/// `value` with every secret field's value replaced, at any depth.
pub fn masked(mut value: Value) -> Value {
    fn mask(value: &mut Value) {
        match value {
            Value::Object(fields) => {
                for (name, field) in fields.iter_mut() {
                    if SECRET_FIELDS.contains(&name.as_str()) && !field.is_null() {
                        *field = Value::String("********".to_owned());
                    } else {
                        mask(field);
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(mask),
            _ => {}
        }
    }
    mask(&mut value);
    value
}

const TABLE: &str = "tollgate_audit_log";

const COLUMNS: &str = "id, updated_at, changed_by, changed_by_api_key, action, table_name, \
    object_id, before_value, updated_values";

/// Appends an entry for `object_id` of `table` to the log, inside the caller's transaction.
pub(crate) async fn record(
    connection: &mut sqlx::AnyConnection,
    change: &Change<'_>,
    table: &str,
    object_id: &str,
    before: Option<Value>,
    after: Option<Value>,
) -> Result<(), StoreError> {
    let sql = format!(
        "INSERT INTO tollgate_audit_log ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
    );
    let text = |value: Option<Value>| value.map(|value| masked(value).to_string());
    sqlx::query(&sql)
        .bind(new_id(change.at))
        .bind(change.at)
        .bind(change.actor.changed_by.clone())
        .bind(change.actor.changed_by_api_key.clone())
        .bind(change.action.as_str())
        .bind(table.to_owned())
        .bind(object_id.to_owned())
        .bind(text(before))
        .bind(text(after))
        .execute(connection)
        .await?;
    Ok(())
}

impl Store {
    /// One page of the audit log matching `filter`, newest first (`page` counts from 1).
    pub async fn audit_log(
        &self,
        filter: &AuditFilter,
        page: u32,
        size: u32,
    ) -> Result<AuditPage, StoreError> {
        // Times are integers the gateway made, so they go into the SQL as written.
        let selection = Selection::default()
            .equal("table_name", filter.table_name.clone())
            .equal("object_id", filter.object_id.clone())
            .equal("changed_by", filter.changed_by.clone())
            .equal("action", filter.action.map(|a| a.as_str().to_owned()))
            .written(filter.since.map(|since| format!("updated_at >= {since}")))
            .written(filter.until.map(|until| format!("updated_at < {until}")));
        let total = selection.count(&self.pool, TABLE).await?;
        let order = "updated_at DESC, id DESC";
        let rows = selection
            .page(&self.pool, TABLE, COLUMNS, order, page, size)
            .await?;
        Ok(AuditPage {
            entries: rows.iter().map(read).collect::<Result<_, _>>()?,
            total,
        })
    }

    pub async fn audit_entry(&self, id: &str) -> Result<Option<AuditRecord>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM tollgate_audit_log WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id.to_owned())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(read).transpose()
    }

    /// The records changed at or after `since` (ms), oldest first: how a replica learns of
    /// changes made through another.
    pub async fn changed_since(&self, since: i64) -> Result<Vec<Changed>, StoreError> {
        let rows = sqlx::query(
            "SELECT table_name, object_id, updated_at, action, updated_values \
             FROM tollgate_audit_log WHERE updated_at >= $1 ORDER BY updated_at, id",
        )
        .bind(since)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let action: String = row.try_get("action")?;
                let replaced_by = if action == Action::Regenerated.as_str() {
                    let after: Option<String> = row.try_get("updated_values")?;
                    after
                        .and_then(|after| serde_json::from_str::<Value>(&after).ok())
                        .and_then(|after| Some(after.get("token")?.as_str()?.to_owned()))
                } else {
                    None
                };
                Ok(Changed {
                    table_name: row.try_get("table_name")?,
                    object_id: row.try_get("object_id")?,
                    at: row.try_get("updated_at")?,
                    replaced_by,
                })
            })
            .collect()
    }
}

fn read(row: &AnyRow) -> Result<AuditRecord, StoreError> {
    let json = |field: &'static str| -> Result<Option<Value>, StoreError> {
        let text: Option<String> = row.try_get(field)?;
        text.map(|text| {
            serde_json::from_str(&text).map_err(|err| StoreError::Corrupt {
                field,
                reason: err.to_string(),
            })
        })
        .transpose()
    };
    let action: String = row.try_get("action")?;
    Ok(AuditRecord {
        id: row.try_get("id")?,
        updated_at: row.try_get("updated_at")?,
        changed_by: row.try_get("changed_by")?,
        changed_by_api_key: row.try_get("changed_by_api_key")?,
        action: serde_json::from_value(Value::String(action.clone())).map_err(|_| {
            StoreError::Corrupt {
                field: "action",
                reason: format!("unknown action `{action}`"),
            }
        })?,
        table_name: row.try_get("table_name")?,
        object_id: row.try_get("object_id")?,
        before_value: json("before_value")?,
        updated_values: json("updated_values")?,
    })
}

/// A unique entry id that sorts by time: the millisecond in hex, then random digits.
fn new_id(at: i64) -> String {
    format!("{at:012x}-{:016x}", fastrand::u64(..))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as i64)
}
