//! LiteLLM's proxy database as the import reads it: each table's rows as JSON objects
//! (PostgreSQL's `row_to_json`), so text arrays, JSONB and timestamps arrive in one readable
//! form, and a column an older or newer LiteLLM lacks or adds changes nothing.

use std::str::FromStr;

use serde_json::{Map, Value};
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use tollgate_core::calendar::parse_iso8601;

use super::ImportError;
use crate::redact_url;

/// The tables the import reads, as LiteLLM's Prisma schema names them.
pub(crate) const KEYS: &str = "LiteLLM_VerificationToken";
pub(crate) const TEAMS: &str = "LiteLLM_TeamTable";
pub(crate) const USERS: &str = "LiteLLM_UserTable";
pub(crate) const ORGANIZATIONS: &str = "LiteLLM_OrganizationTable";
pub(crate) const END_USERS: &str = "LiteLLM_EndUserTable";
pub(crate) const BUDGETS: &str = "LiteLLM_BudgetTable";
pub(crate) const MEMBERSHIPS: &str = "LiteLLM_TeamMembership";

/// Every table's rows. A table other than the keys' that does not exist (an older LiteLLM)
/// reads as empty and is named in `missing`.
#[derive(Debug, Default)]
pub(crate) struct Tables {
    pub keys: Vec<Row>,
    pub teams: Vec<Row>,
    pub users: Vec<Row>,
    pub organizations: Vec<Row>,
    pub end_users: Vec<Row>,
    pub budgets: Vec<Row>,
    pub memberships: Vec<Row>,
    pub missing: Vec<&'static str>,
}

/// Reads every table the import needs, in one session whose time zone is UTC (so timestamps
/// with a zone come back in UTC too).
pub(crate) async fn read(url: &str) -> Result<Tables, ImportError> {
    let unreachable = |reason: String| ImportError::Source {
        url: redact_url(url),
        reason,
    };
    let options =
        PgConnectOptions::from_str(&prisma_url(url)).map_err(|err| unreachable(err.to_string()))?;
    let mut connection = PgConnection::connect_with(&options)
        .await
        .map_err(|err| unreachable(err.to_string()))?;
    sqlx::query("SET TIME ZONE 'UTC'")
        .execute(&mut connection)
        .await
        .map_err(|err| unreachable(err.to_string()))?;
    let mut tables = Tables::default();
    for (table, rows) in [
        (KEYS, &mut tables.keys),
        (TEAMS, &mut tables.teams),
        (USERS, &mut tables.users),
        (ORGANIZATIONS, &mut tables.organizations),
        (END_USERS, &mut tables.end_users),
        (BUDGETS, &mut tables.budgets),
        (MEMBERSHIPS, &mut tables.memberships),
    ] {
        let sql = format!("SELECT row_to_json(t)::text FROM \"{table}\" t");
        let texts: Vec<String> = match sqlx::query_scalar(&sql).fetch_all(&mut connection).await {
            Ok(texts) => texts,
            Err(err) if is_undefined_table(&err) && table != KEYS => {
                tables.missing.push(table);
                continue;
            }
            Err(err) if is_undefined_table(&err) => {
                return Err(ImportError::NotLitellm {
                    url: redact_url(url),
                });
            }
            Err(err) => {
                return Err(ImportError::Read {
                    table,
                    reason: err.to_string(),
                });
            }
        };
        for text in texts {
            match serde_json::from_str(&text) {
                Ok(Value::Object(fields)) => rows.push(Row(fields)),
                _ => {
                    return Err(ImportError::Read {
                        table,
                        reason: "PostgreSQL returned a row that is not a JSON object".into(),
                    });
                }
            }
        }
    }
    let _ = connection.close().await;
    Ok(tables)
}

fn is_undefined_table(err: &sqlx::Error) -> bool {
    // 42P01: undefined_table.
    matches!(err, sqlx::Error::Database(db) if db.code().as_deref() == Some("42P01"))
}

/// LiteLLM's `DATABASE_URL` is Prisma's, which names a schema with `?schema=`: PostgreSQL
/// takes that as the session's `search_path`. Prisma's own pool settings are dropped.
pub(crate) fn prisma_url(url: &str) -> String {
    let Some((base, query)) = url.split_once('?') else {
        return url.to_owned();
    };
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        match pair.split_once('=') {
            Some(("schema", schema)) => kept.push(format!("options=-c%20search_path%3D{schema}")),
            Some((
                "connection_limit"
                | "pool_timeout"
                | "connect_timeout"
                | "socket_timeout"
                | "pgbouncer"
                | "statement_cache_size",
                _,
            )) => {}
            _ => kept.push(pair.to_owned()),
        }
    }
    if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    }
}

/// One row: its columns by name, as `row_to_json` gave them.
#[derive(Debug, Clone, Default)]
pub(crate) struct Row(pub(crate) Map<String, Value>);

/// Why a column's value cannot be used.
pub(crate) type Unreadable = String;

impl Row {
    /// A text column; empty text counts as none (LiteLLM writes `""` for "no team" in places).
    pub fn text(&self, column: &str) -> Option<String> {
        match self.0.get(column) {
            Some(Value::String(text)) if !text.trim().is_empty() => Some(text.clone()),
            _ => None,
        }
    }

    pub fn float(&self, column: &str) -> Option<f64> {
        self.0
            .get(column)
            .and_then(Value::as_f64)
            .filter(|x| x.is_finite())
    }

    pub fn integer(&self, column: &str) -> Option<i64> {
        let value = self.0.get(column)?;
        value.as_i64().or_else(|| {
            value
                .as_f64()
                .filter(|x| x.fract() == 0.0)
                .map(|x| x as i64)
        })
    }

    /// A boolean column; none is false.
    pub fn flag(&self, column: &str) -> bool {
        self.0.get(column).and_then(Value::as_bool).unwrap_or(false)
    }

    /// A `text[]` column; none is empty.
    pub fn strings(&self, column: &str) -> Result<Vec<String>, Unreadable> {
        match self.0.get(column) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| match item {
                    Value::String(text) => Ok(text.clone()),
                    other => Err(format!("holds {other}, not text")),
                })
                .collect(),
            Some(other) => Err(format!("is {}, not a list of text", kind(other))),
        }
    }

    /// A JSON column holding an object; none (or JSON `null`) is empty. An object written as
    /// a JSON string (some LiteLLM versions double-encoded metadata) is read through.
    pub fn object(&self, column: &str) -> Result<Map<String, Value>, Unreadable> {
        match decoded(self.0.get(column)) {
            None | Some(Value::Null) => Ok(Map::new()),
            Some(Value::Object(fields)) => Ok(fields),
            Some(other) => Err(format!("is {}, not a JSON object", kind(&other))),
        }
    }

    /// A JSON column holding a list; none, `null` and `{}` (Prisma's default for LiteLLM's
    /// `members_with_roles`) are empty.
    pub fn list(&self, column: &str) -> Result<Vec<Value>, Unreadable> {
        match decoded(self.0.get(column)) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Object(fields)) if fields.is_empty() => Ok(Vec::new()),
            Some(Value::Array(items)) => Ok(items),
            Some(other) => Err(format!("is {}, not a JSON list", kind(&other))),
        }
    }

    /// A timestamp column, in milliseconds since the Unix epoch.
    pub fn time(&self, column: &str) -> Result<Option<i64>, Unreadable> {
        match self.0.get(column) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) => parse_iso8601(text)
                .map(Some)
                .ok_or_else(|| format!("`{text}` is not a UTC timestamp")),
            Some(other) => Err(format!("is {}, not a timestamp", kind(other))),
        }
    }
}

/// A JSON column's value, with a JSON document stored as a string read through.
fn decoded(value: Option<&Value>) -> Option<Value> {
    match value? {
        Value::String(text) => match serde_json::from_str::<Value>(text) {
            Ok(inner @ (Value::Object(_) | Value::Array(_))) => Some(inner),
            _ => Some(Value::String(text.clone())),
        },
        other => Some(other.clone()),
    }
}

/// How a message names a JSON value's type.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "text",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn row(value: Value) -> Row {
        Row(value.as_object().unwrap().clone())
    }

    #[test]
    fn prisma_schema_parameters_become_the_search_path() {
        assert_eq!(
            prisma_url("postgresql://u:p@db:5432/litellm?schema=proxy&connection_limit=5"),
            "postgresql://u:p@db:5432/litellm?options=-c%20search_path%3Dproxy"
        );
        assert_eq!(
            prisma_url("postgres://db/litellm?sslmode=require"),
            "postgres://db/litellm?sslmode=require"
        );
        assert_eq!(prisma_url("postgres://db/litellm"), "postgres://db/litellm");
    }

    #[test]
    fn columns_read_as_postgresql_renders_them() {
        let row = row(json!({
            "token": "abc", "team_id": "", "spend": 1.5, "tpm_limit": 100,
            "models": ["a", "b"], "metadata": {"k": 1}, "config": "{\"x\": 2}",
            "aliases": ["not", "a", "map"], "members_with_roles": {},
            "expires": "2025-03-01T12:30:00.25", "budget_reset_at": "2025-03-01T00:00:00+00:00",
            "blocked": null,
        }));
        assert_eq!(row.text("token").as_deref(), Some("abc"));
        assert_eq!(row.text("team_id"), None, "empty text is none");
        assert_eq!(row.float("spend"), Some(1.5));
        assert_eq!(row.integer("tpm_limit"), Some(100));
        assert_eq!(row.strings("models").unwrap(), ["a", "b"]);
        assert_eq!(row.strings("missing").unwrap(), Vec::<String>::new());
        assert_eq!(row.object("metadata").unwrap()["k"], 1);
        assert_eq!(
            row.object("config").unwrap()["x"],
            2,
            "a string holding JSON"
        );
        assert_eq!(
            row.object("aliases").unwrap_err(),
            "is a list, not a JSON object"
        );
        assert!(row.list("members_with_roles").unwrap().is_empty());
        assert_eq!(
            row.time("expires").unwrap(),
            parse_iso8601("2025-03-01T12:30:00.250Z")
        );
        assert_eq!(
            row.time("budget_reset_at").unwrap(),
            parse_iso8601("2025-03-01")
        );
        assert!(!row.flag("blocked"));
    }
}
