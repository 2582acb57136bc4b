//! Embeddings and legacy completions.

use serde_json::{Value, json};
use tollgate_testkit::MockOpenAi;

use crate::harness::*;

#[tokio::test]
async fn embeddings_float_and_base64_arrive_untouched() {
    let mock = MockOpenAi::start().await;
    let gateway = TestGateway::start(&config_with_models(&openai_model(
        "embed",
        "text-embedding-3-small",
        &mock.base_url(),
    )))
    .await;

    let float: Value = gateway
        .post("/v1/embeddings")
        .json(&json!({"model": "embed", "input": ["alpha", "beta gamma"], "dimensions": 3}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(float["data"].as_array().unwrap().len(), 2);
    assert_eq!(float["data"][0]["embedding"], json!([0.375, 0.5, -0.25]));
    assert_eq!(float["usage"]["prompt_tokens"], 3);
    assert_eq!(mock.last_request().body["model"], "text-embedding-3-small");

    let response = gateway
        .post("/v1/embeddings")
        .json(&json!({"model": "embed", "input": "alpha", "encoding_format": "base64", "dimensions": 3}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let base64: Value = response.json().await.unwrap();
    // Three little-endian f32s (0.375, 0.5, -0.25), base64-encoded, exactly as the provider sent them.
    assert_eq!(base64["data"][0]["embedding"], "AADAPgAAAD8AAIC+");
    assert_eq!(mock.last_request().body["encoding_format"], "base64");
}

#[tokio::test]
async fn completions_stream_and_not() {
    let mock = MockOpenAi::start().await;
    let gateway = TestGateway::start(&config_with_models(&openai_model(
        "instruct",
        "gpt-3.5-turbo-instruct",
        &mock.base_url(),
    )))
    .await;

    let reply: Value = gateway
        .post("/v1/completions")
        .json(&json!({"model": "instruct", "prompt": "say this back", "max_tokens": 5}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(reply["object"], "text_completion");
    assert_eq!(reply["choices"][0]["text"], "say this back");
    assert_eq!(mock.last_request().path, "/v1/completions");

    let events = read_events(
        gateway
            .post("/v1/completions")
            .json(&json!({"model": "instruct", "prompt": "say this back", "stream": true}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let text: String = events
        .iter()
        .filter_map(|e| serde_json::from_str::<Value>(e).ok())
        .filter_map(|v| v["choices"][0]["text"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(text, "say this back");
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    assert!(
        events.iter().all(|e| !e.contains("\"choices\":[]")),
        "the injected usage chunk is hidden"
    );
}
