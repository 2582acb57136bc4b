//! A client that goes away cancels the provider request it caused.

use std::time::Duration;

use serde_json::json;
use tollgate_testkit::MockOpenAi;

use crate::harness::*;

#[tokio::test]
async fn a_client_abandoning_a_request_cancels_the_provider_call() {
    let mock = MockOpenAi::start().await;
    let gateway = TestGateway::start(&config_with_models(&openai_model(
        "m",
        "slow",
        &mock.base_url(),
    )))
    .await;
    let request = gateway
        .post("/v1/chat/completions")
        .json(&json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}))
        .send();
    // The client gives up after 300 ms; the provider would have taken 30 s.
    assert!(
        tokio::time::timeout(Duration::from_millis(300), request)
            .await
            .is_err()
    );
    assert!(
        mock.wait_for_cancelled(1, Duration::from_secs(5)).await,
        "the provider request was not cancelled"
    );
    assert_eq!(mock.requests().len(), 1);
}

#[tokio::test]
async fn a_client_leaving_a_stream_cancels_the_provider_stream() {
    let mock = MockOpenAi::start().await;
    let gateway = TestGateway::start(&config_with_models(&openai_model(
        "m",
        "stall",
        &mock.base_url(),
    )))
    .await;
    let mut response = gateway
        .post("/v1/chat/completions")
        .json(&json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": "hi there"}]}))
        .send()
        .await
        .unwrap();
    let first = response.chunk().await.unwrap().expect("a first event");
    assert!(first.starts_with(b"data: "));
    drop(response);
    assert!(
        mock.wait_for_cancelled(1, Duration::from_secs(5)).await,
        "the provider stream was not cancelled"
    );
    // The gateway's own bookkeeping lets go of the request too.
    for _ in 0..50 {
        if gateway.gateway.in_flight() == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the abandoned stream is still counted in flight");
}
