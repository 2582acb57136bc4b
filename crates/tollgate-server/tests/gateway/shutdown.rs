//! Graceful shutdown: new work is refused, work in flight finishes.

use std::time::Duration;

use serde_json::json;
use tollgate_testkit::{MockOpenAi, MockOptions};

use crate::harness::*;

#[tokio::test]
async fn a_stream_in_flight_at_shutdown_runs_to_completion() {
    let mock = MockOpenAi::start_with(
        MockOptions {
            chunk_delay: Duration::from_millis(150),
            ..MockOptions::default()
        },
        "127.0.0.1:0",
    )
    .await;
    let mut gateway = TestGateway::start(&config_with_models(&openai_model(
        "m",
        "gpt-4o",
        &mock.base_url(),
    )))
    .await;
    let mut response = gateway
        .post("/v1/chat/completions")
        .json(&json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": "one two three four"}]}))
        .send()
        .await
        .unwrap();
    let first = response.chunk().await.unwrap().unwrap();

    let server = gateway.shutdown();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(gateway.gateway.is_draining());
    // The listener is closed: a new connection is refused.
    let fresh = reqwest::Client::new()
        .get(format!("{}/health/liveliness", gateway.url))
        .send()
        .await;
    assert!(
        fresh.is_err(),
        "new connections must be refused while draining"
    );

    let mut rest = first.to_vec();
    while let Some(chunk) = response.chunk().await.unwrap() {
        rest.extend_from_slice(&chunk);
    }
    let events = sse_payloads(&String::from_utf8(rest).unwrap());
    assert_eq!(streamed_content(&events), "one two three four");
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));

    let result = tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("server exits after draining");
    assert!(result.unwrap().is_ok());
}

#[tokio::test]
async fn the_drain_timeout_bounds_how_long_shutdown_waits() {
    let mock = MockOpenAi::start().await;
    let yaml = format!(
        "{}tollgate_settings:\n  drain_timeout: 300ms\n",
        config_with_models(&openai_model("m", "stall", &mock.base_url()))
    );
    let mut gateway = TestGateway::start(&yaml).await;
    let mut response = gateway
        .post("/v1/chat/completions")
        .json(
            &json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": "hi"}]}),
        )
        .send()
        .await
        .unwrap();
    response.chunk().await.unwrap().unwrap();
    let started = std::time::Instant::now();
    let server = gateway.shutdown();
    let result = tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("shutdown is bounded");
    assert!(result.unwrap().is_ok());
    assert!(started.elapsed() >= Duration::from_millis(250));
}
