//! The Redis that tests of limits and budgets shared by replicas run against: the one at
//! `TOLLGATE_TEST_REDIS_URL` (default `redis://127.0.0.1:6379`). Without it those tests say so
//! and pass without running, unless `TOLLGATE_REQUIRE_REDIS=1` (set by `.ci/run`) makes its
//! absence a failure. Each test writes under a key prefix of its own.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The test Redis's URL, once it has answered a PING; `None` (said on stderr) when it cannot
/// be reached and is not required.
pub async fn redis_url() -> Option<String> {
    let url = std::env::var("TOLLGATE_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let required = std::env::var("TOLLGATE_REQUIRE_REDIS").is_ok_and(|v| v == "1");
    match ping(&url).await {
        Ok(()) => Some(url),
        Err(reason) if !required => {
            eprintln!(
                "SKIPPED: no Redis at {url} ({reason}); set TOLLGATE_TEST_REDIS_URL, or TOLLGATE_REQUIRE_REDIS=1 to fail instead"
            );
            None
        }
        Err(reason) => panic!("Redis is required (TOLLGATE_REQUIRE_REDIS=1) but {url}: {reason}"),
    }
}

async fn ping(url: &str) -> Result<(), String> {
    let parsed = url::Url::parse(url).map_err(|err| err.to_string())?;
    let host = parsed.host_str().unwrap_or("127.0.0.1").to_owned();
    let port = parsed.port().unwrap_or(6379);
    let exchange = async {
        let mut stream = TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|err| err.to_string())?;
        stream
            .write_all(b"PING\r\n")
            .await
            .map_err(|err| err.to_string())?;
        let mut answer = [0u8; 64];
        let read = stream
            .read(&mut answer)
            .await
            .map_err(|err| err.to_string())?;
        if answer[..read].starts_with(b"+PONG") {
            Ok(())
        } else {
            Err(format!(
                "answered {:?}",
                String::from_utf8_lossy(&answer[..read])
            ))
        }
    };
    tokio::time::timeout(Duration::from_secs(2), exchange)
        .await
        .map_err(|_| "no answer within 2 s".to_owned())?
}

/// A key prefix no other test (or earlier run) uses.
pub fn unique_prefix() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "tollgate-test-{}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}
