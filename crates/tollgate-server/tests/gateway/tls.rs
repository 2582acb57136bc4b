//! Providers over HTTPS: rustls with the configured CA, HTTP/2 by ALPN, and traffic spread over
//! several connections per host rather than queued behind one.

use std::collections::HashSet;

use serde_json::json;
use tollgate_testkit::{MockOpenAi, MockProvider};

use crate::harness::*;

fn write_ca(mock: &MockProvider, name: &str) -> String {
    let path = std::env::temp_dir().join(format!(
        "tollgate-test-ca-{}-{name}.pem",
        std::process::id()
    ));
    std::fs::write(&path, mock.tls_ca_pem().unwrap()).unwrap();
    path.display().to_string()
}

fn tls_config(mock: &MockProvider, litellm_settings: &str, tollgate_settings: &str) -> String {
    format!(
        "{}litellm_settings:\n{litellm_settings}{tollgate_settings}",
        config_with_models(&openai_model("m", "gpt-4o", &mock.base_url()))
    )
}

async fn chat(gateway: &TestGateway, stream: bool) -> reqwest::Response {
    gateway
        .post("/v1/chat/completions")
        .json(&json!({"model": "m", "stream": stream, "messages": [{"role": "user", "content": "over tls"}]}))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn https_providers_are_reached_over_http2_on_several_connections() {
    let mock = MockOpenAi::start_tls().await;
    let ca = write_ca(&mock, "h2");
    let gateway =
        TestGateway::start(&tls_config(&mock, &format!("  ssl_verify: {ca}\n"), "")).await;

    for _ in 0..8 {
        let response = chat(&gateway, false).await;
        assert_eq!(response.status(), 200);
    }
    let streamed = chat(&gateway, true).await;
    assert_eq!(streamed_content(&read_events(streamed).await), "over tls");

    let requests = mock.requests();
    assert!(
        requests.iter().all(|r| r.version == http::Version::HTTP_2),
        "ALPN negotiates HTTP/2"
    );
    let connections: HashSet<_> = requests.iter().map(|r| r.peer).collect();
    assert_eq!(
        connections.len(),
        4,
        "the default 4 clients each hold their own connection"
    );
}

#[tokio::test]
async fn one_upstream_client_multiplexes_on_one_connection() {
    let mock = MockOpenAi::start_tls().await;
    let ca = write_ca(&mock, "one");
    let gateway = TestGateway::start(&tls_config(
        &mock,
        &format!("  ssl_verify: {ca}\n"),
        "tollgate_settings:\n  upstream_clients: 1\n",
    ))
    .await;
    for _ in 0..4 {
        assert_eq!(chat(&gateway, false).await.status(), 200);
    }
    let connections: HashSet<_> = mock.requests().iter().map(|r| r.peer).collect();
    assert_eq!(connections.len(), 1);
}

#[tokio::test]
async fn an_untrusted_certificate_is_refused() {
    let mock = MockOpenAi::start_tls().await;
    let gateway = TestGateway::start(&config_with_models(&openai_model(
        "m",
        "gpt-4o",
        &mock.base_url(),
    )))
    .await;
    let response = chat(&gateway, false).await;
    assert_eq!(response.status(), 502);
    let body: serde_json::Value = response.json().await.unwrap();
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("certificate"), "{message}");
    assert!(mock.requests().is_empty());
}

#[tokio::test]
async fn ssl_verify_false_skips_certificate_checks() {
    let mock = MockOpenAi::start_tls().await;
    let gateway = TestGateway::start(&tls_config(&mock, "  ssl_verify: false\n", "")).await;
    assert_eq!(chat(&gateway, false).await.status(), 200);
}
