//! Tollgate's database: an embedded SQLite file by default, PostgreSQL when a `database_url`
//! says so. One set of portable migrations, applied at start-up, and one code path for both
//! backends (sqlx's `Any` driver; values are text, integers and booleans only). Nothing on the
//! request path reads it: the gateway serves from caches filled from here and updated by the
//! management API.
#![forbid(unsafe_code)]

mod audit;
mod directory;
mod journal;
mod keys;
pub mod litellm;
mod responses;
mod secrets;
mod selection;
mod spend;

use std::time::Duration;

use sqlx::AnyPool;
use sqlx::any::AnyPoolOptions;
use sqlx::migrate::{Migration, MigrationType, Migrator};

pub use audit::{Action, Actor, AuditFilter, AuditPage, AuditRecord, Change, Changed, masked};
pub use directory::{
    BudgetFields, BudgetRecord, CustomerRecord, Entity, MemberRole, ModelRecord,
    OrganizationRecord, Snapshot, TagRecord, TeamMember, TeamRecord, UserRecord, UserRole,
};
pub use journal::{Drained, Journal, JournalError};
pub use keys::{KeyFilter, KeyPage, KeyRecord, ModelBudget, TABLE as KEYS_TABLE};
pub use responses::KeptResponse;
pub use secrets::{SECRET_FIELDS, SealError, SecretBox};
pub use spend::{
    EntityKind, IMPORTED_SPEND_GROUP, SPEND_TABLE, SpendFilter, SpendGroup, SpendGrouping,
    SpendPage, SpendRecord,
};

/// The schema's versions, in order, embedded in the binary. Forward-only: a released file is
/// never edited (sqlx refuses a changed checksum), a change is a new file.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "virtual keys",
        include_str!("../migrations/0001_virtual_keys.sql"),
    ),
    (
        2,
        "teams, users, organisations, end users",
        include_str!("../migrations/0002_directory.sql"),
    ),
    (
        3,
        "audit log",
        include_str!("../migrations/0003_audit_log.sql"),
    ),
    (
        4,
        "deployments added at run time",
        include_str!("../migrations/0004_models.sql"),
    ),
    (
        5,
        "spend records, totals and daily aggregates",
        include_str!("../migrations/0005_spend.sql"),
    ),
    (
        6,
        "budgets on keys",
        include_str!("../migrations/0006_budgets.sql"),
    ),
    (
        7,
        "shared budgets",
        include_str!("../migrations/0007_shared_budgets.sql"),
    ),
    (8, "tags", include_str!("../migrations/0008_tags.sql")),
    (
        9,
        "per-model budgets on keys",
        include_str!("../migrations/0009_model_budgets.sql"),
    ),
    (
        10,
        "client request ids on spend records",
        include_str!("../migrations/0010_client_request_ids.sql"),
    ),
    (
        11,
        "Responses API responses",
        include_str!("../migrations/0011_responses.sql"),
    ),
];

fn migrator() -> Migrator {
    let migrations = MIGRATIONS
        .iter()
        .map(|(version, description, sql)| {
            Migration::new(
                *version,
                (*description).into(),
                MigrationType::Simple,
                (*sql).into(),
                false,
            )
        })
        .collect::<Vec<_>>();
    Migrator {
        migrations: migrations.into(),
        ..Migrator::DEFAULT
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique field (a key alias, a key) is already taken.
    #[error("{0} already exists")]
    Conflict(String),
    #[error("`{0}` is not a database URL this gateway can use: expected sqlite:… or postgres://…")]
    UnsupportedUrl(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// A stored value the gateway cannot read back (a JSON column edited by hand, say).
    #[error("stored {field} is unreadable: {reason}")]
    Corrupt { field: &'static str, reason: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

impl Store {
    /// Connects to `url` (`sqlite:path?mode=rwc`, `postgres://…`) and brings its schema up
    /// to date.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err(StoreError::UnsupportedUrl(redact_url(url)));
        };
        // SQLite takes one writer at a time: one connection avoids SQLITE_BUSY, and nothing
        // on the request path waits for it.
        let connections = match backend {
            Backend::Sqlite => 1,
            Backend::Postgres => 8,
        };
        // No ping before each use: a broken connection fails its query, which callers handle
        // (the sync round retries), and the ping doubles the cross-thread hand-offs of every
        // background round.
        let mut options = AnyPoolOptions::new()
            .max_connections(connections)
            .test_before_acquire(false)
            .acquire_timeout(Duration::from_secs(5));
        if backend == Backend::Sqlite {
            // Write-ahead logging: a commit appends the changed pages once, where the default
            // rollback journal first copies every page a transaction touches aside (spend
            // batches touch many) — twice the writes, and the fsyncs of two files.
            // Checkpoints every 10,000 pages (40 MB of log) rather than SQLite's 1,000: a spend
            // batch changes thousands of pages, so the default copied the log back into the
            // database after every batch, each index page as often as batches touched it; now
            // once per several batches. Spend journal drains: 16,000–19,500 → 20,000–24,000
            // records/s (the journal benchmark, 200,000 records, same machine, back to back).
            options = options.after_connect(|connection, _| {
                Box::pin(async move {
                    for pragma in [
                        "PRAGMA journal_mode = WAL",
                        "PRAGMA temp_store = MEMORY",
                        "PRAGMA wal_autocheckpoint = 10000",
                    ] {
                        sqlx::Executor::execute(&mut *connection, pragma).await?;
                    }
                    Ok(())
                })
            });
        }
        let pool = options.connect(url).await?;
        migrator().run(&pool).await?;
        Ok(Store { pool, backend })
    }

    /// A SQLite URL for a database file, created if missing.
    pub fn sqlite_url(path: &std::path::Path) -> String {
        format!("sqlite://{}?mode=rwc", path.display())
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Whether the database answers (for readiness).
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// What makes a `SELECT` lock the rows it reads until the transaction ends (SQLite locks
    /// the whole database for a writing transaction already).
    fn row_lock(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite => "",
            Backend::Postgres => " FOR UPDATE",
        }
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// `url` without its password, for messages.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_kept_out_of_messages() {
        assert_eq!(
            redact_url("postgres://app:s3cret@db:5432/tollgate"),
            "postgres://app:***@db:5432/tollgate"
        );
        assert_eq!(redact_url("sqlite://x.db"), "sqlite://x.db");
    }
}
