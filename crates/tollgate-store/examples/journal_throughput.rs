//! How fast the spend journal takes records, and how fast a drain moves them into SQLite:
//! the benchmark runs this (`bench/run.py`); it prints one JSON line.
//!
//!     cargo run --release -p tollgate-store --example journal_throughput [records]

use std::time::Instant;

use tollgate_store::{Journal, SpendRecord, Store};

fn record(n: usize) -> SpendRecord {
    SpendRecord {
        // As the gateway makes them, so the unique index takes them in the same order.
        request_id: tollgate_core::ids::new_request_id(),
        call_type: "/v1/chat/completions".into(),
        key_hash: Some(format!("{:064x}", n % 1000)),
        key_alias: Some(format!("key-{}", n % 1000)),
        user_id: Some(format!("user-{}", n % 100)),
        team_id: Some(format!("team-{}", n % 10)),
        model_group: Some("bench-model".into()),
        model: Some("gpt-4o-mini".into()),
        deployment_id: Some("bench-deployment".into()),
        provider: Some("openai".into()),
        api_base: Some("127.0.0.1:9000".into()),
        prompt_tokens: 120,
        completion_tokens: 40,
        spend: 42_000,
        status: "success".into(),
        http_status: 200,
        start_time: 1_795_219_200_000 + n as i64,
        end_time: 1_795_219_200_050 + n as i64,
        first_token_ms: Some(12),
        tags: vec!["bench".into()],
        ..SpendRecord::default()
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let records: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(200_000);
    let dir = std::env::temp_dir().join(format!("tollgate-journal-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let journal = Journal::open(&dir.join("journal"), u64::MAX).expect("journal opens");
    let prepared: Vec<SpendRecord> = (0..records).map(record).collect();
    let halves: Vec<Vec<SpendRecord>> = prepared
        .chunks(records.div_ceil(2))
        .map(<[SpendRecord]>::to_vec)
        .collect();

    // Two threads appending, as two workers answering requests would.
    let started = Instant::now();
    std::thread::scope(|scope| {
        for half in halves {
            let journal = &journal;
            scope.spawn(move || {
                for record in half {
                    journal.append(record).expect("append");
                }
            });
        }
    });
    let append_seconds = started.elapsed().as_secs_f64();

    let store = Store::connect(&Store::sqlite_url(&dir.join("store.db")))
        .await
        .expect("store opens");
    let started = Instant::now();
    let drained = journal.drain(&store).await.expect("drain");
    let sqlite_seconds = started.elapsed().as_secs_f64();
    assert_eq!(drained.inserted, records);

    // The same records into PostgreSQL, when one is named (a fresh database or schema).
    let postgres_per_second = match std::env::var("TOLLGATE_BENCH_POSTGRES_URL") {
        Ok(url) => {
            let store = Store::connect(&url).await.expect("PostgreSQL store");
            let started = Instant::now();
            for batch in prepared.chunks(2_000) {
                store.insert_spend(batch).await.expect("insert");
            }
            format!("{:.0}", records as f64 / started.elapsed().as_secs_f64())
        }
        Err(_) => "null".to_owned(),
    };
    println!(
        "{{\"records\": {records}, \"append_per_second\": {:.0}, \"drain_to_sqlite_per_second\": {:.0}, \"insert_to_postgres_per_second\": {postgres_per_second}, \"bytes_per_record\": {}}}",
        records as f64 / append_seconds,
        records as f64 / sqlite_seconds,
        serde_json::to_vec(&prepared[0]).unwrap().len() + 1
    );
    let _ = std::fs::remove_dir_all(&dir);
}
