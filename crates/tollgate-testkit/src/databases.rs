//! Fresh databases for tests: a SQLite file of its own, or a schema of its own in the
//! PostgreSQL at `TOLLGATE_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`).
//! Without PostgreSQL the tests say so and run on SQLite alone, unless
//! `TOLLGATE_REQUIRE_POSTGRES=1` (set by `.ci/run`) makes its absence a failure.

use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::Connection;
use sqlx::postgres::PgConnection;
use tollgate_store::Store;

static NEXT: AtomicU32 = AtomicU32::new(0);

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}_{}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    )
}

/// A store in a fresh SQLite file.
pub async fn sqlite() -> Store {
    let path = std::env::temp_dir().join(format!("{}.db", unique("tollgate_store_test")));
    Store::connect(&Store::sqlite_url(&path))
        .await
        .expect("SQLite store")
}

/// A store in a fresh PostgreSQL schema; `None` (said on stderr) when PostgreSQL cannot be
/// reached and is not required.
pub async fn postgres() -> Option<Store> {
    let url = postgres_url().await?;
    Some(Store::connect(&url).await.expect("PostgreSQL store"))
}

/// The URL of a fresh PostgreSQL schema (see `postgres`).
pub async fn postgres_url() -> Option<String> {
    let base = std::env::var("TOLLGATE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let required = std::env::var("TOLLGATE_REQUIRE_POSTGRES").is_ok_and(|v| v == "1");
    let mut admin = match PgConnection::connect(&base).await {
        Ok(connection) => connection,
        Err(err) if !required => {
            eprintln!(
                "SKIPPED on PostgreSQL: cannot connect to {base} ({err}); set TOLLGATE_TEST_POSTGRES_URL, or TOLLGATE_REQUIRE_POSTGRES=1 to fail instead"
            );
            return None;
        }
        Err(err) => {
            panic!("PostgreSQL is required (TOLLGATE_REQUIRE_POSTGRES=1) but {base} refused: {err}")
        }
    };
    drop_abandoned_schemas(&mut admin).await;
    let schema = unique("tollgate_test");
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&mut admin)
        .await
        .expect("create a test schema");
    let separator = if base.contains('?') { '&' } else { '?' };
    Some(format!(
        "{base}{separator}options=-c%20search_path%3D{schema}"
    ))
}

/// Runs `sql` (any number of statements) in the PostgreSQL database at `url` — a fixture
/// loaded into a schema from `postgres_url`.
pub async fn run_sql(url: &str, sql: &str) {
    let mut connection = PgConnection::connect(url)
        .await
        .expect("connect to the test PostgreSQL");
    sqlx::raw_sql(sql)
        .execute(&mut connection)
        .await
        .expect("the fixture SQL runs");
    let _ = connection.close().await;
}

/// Both backends (PostgreSQL when reachable), named for assertion messages.
pub async fn all() -> Vec<(&'static str, Store)> {
    let mut stores = vec![("sqlite", sqlite().await)];
    if let Some(store) = postgres().await {
        stores.push(("postgres", store));
    }
    stores
}

/// Drops the schemas of test processes that have ended, so test runs do not pile them up.
/// (A process cannot drop its own at exit: its pools are still open then.)
async fn drop_abandoned_schemas(admin: &mut PgConnection) {
    let schemas: Vec<String> = sqlx::query_scalar(
        "SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'tollgate\\_test\\_%'",
    )
    .fetch_all(&mut *admin)
    .await
    .unwrap_or_default();
    for schema in schemas {
        let pid = schema
            .split('_')
            .nth(2)
            .and_then(|pid| pid.parse::<u32>().ok());
        let running = pid.is_some_and(|pid| {
            pid == std::process::id() || std::path::Path::new(&format!("/proc/{pid}")).exists()
        });
        if !running {
            let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                .execute(&mut *admin)
                .await;
        }
    }
}
