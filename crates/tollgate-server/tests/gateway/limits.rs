//! Rate limits through real HTTP: a key's rpm under a burst of simultaneous requests, team and
//! end-user limits, parallel requests, and deployments' own rpm; 429s carry `retry-after` and
//! OpenAI's `x-ratelimit-*` headers.

use std::time::Duration;

use futures_util::future::join_all;
use serde_json::json;
use tollgate_testkit::{MockOpenAi, MockOptions};

use crate::harness::*;

async fn gateway() -> (TestGateway, tollgate_testkit::MockProvider) {
    let mock = MockOpenAi::start().await;
    let models = openai_model("gpt", "gpt-4o", &mock.base_url());
    (TestGateway::start(&config_with_models(&models)).await, mock)
}

async fn new_key(gateway: &TestGateway, body: serde_json::Value) -> String {
    let (status, created) = admin_post(gateway, "/key/generate", body).await;
    assert_eq!(status, 200, "{created}");
    created["key"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn an_rpm_of_60_admits_exactly_60_of_200_simultaneous_requests() {
    let (gateway, _mock) = gateway().await;
    let key = new_key(&gateway, json!({"rpm_limit": 60})).await;
    let requests = (0..200).map(|_| {
        let request = gateway
            .client
            .post(format!("{}/v1/chat/completions", gateway.url))
            .bearer_auth(&key)
            .json(&json!({"model": "gpt", "messages": [{"role": "user", "content": "hi"}]}));
        async move { request.send().await.unwrap() }
    });
    let responses = join_all(requests).await;
    let ok = responses.iter().filter(|r| r.status() == 200).count();
    let limited: Vec<_> = responses.iter().filter(|r| r.status() == 429).collect();
    assert_eq!((ok, limited.len()), (60, 140));

    let refused = limited[0];
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_eq!(refused.headers()["x-ratelimit-limit-requests"], "60");
    assert_eq!(refused.headers()["x-ratelimit-remaining-requests"], "0");
    let admitted = responses.iter().find(|r| r.status() == 200).unwrap();
    assert_eq!(admitted.headers()["x-ratelimit-limit-requests"], "60");

    let body: serde_json::Value = responses
        .into_iter()
        .find(|r| r.status() == 429)
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["error"]["type"], "rate_limit_error");
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("rpm_limit is 60"),
        "{body}"
    );
}

#[tokio::test]
async fn a_team_limit_binds_every_key_of_the_team_and_tokens_count_against_tpm() {
    let (gateway, _mock) = gateway().await;
    let (status, team) = admin_post(
        &gateway,
        "/team/new",
        json!({"team_id": "ml", "rpm_limit": 3}),
    )
    .await;
    assert_eq!(status, 200, "{team}");
    let a = new_key(&gateway, json!({"team_id": "ml"})).await;
    let b = new_key(&gateway, json!({"team_id": "ml"})).await;
    let statuses = [
        chat_as(&gateway, &a, "gpt").await.0,
        chat_as(&gateway, &b, "gpt").await.0,
        chat_as(&gateway, &a, "gpt").await.0,
        chat_as(&gateway, &b, "gpt").await.0,
    ];
    assert_eq!(statuses, [200, 200, 200, 429]);
    let (_, refused) = chat_as(&gateway, &b, "gpt").await;
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("team `ml`"),
        "{refused}"
    );

    // The mock reports 2 tokens for every answer: a tpm of 2 admits one request a minute.
    let tokens = new_key(&gateway, json!({"tpm_limit": 2})).await;
    assert_eq!(chat_as(&gateway, &tokens, "gpt").await.0, 200);
    let (status, refused) = chat_as(&gateway, &tokens, "gpt").await;
    assert_eq!(status, 429, "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("tpm_limit is 2")
    );
}

#[tokio::test]
async fn end_users_are_limited_and_blocked_by_the_user_field() {
    let (gateway, _mock) = gateway().await;
    let (status, _) = admin_post(
        &gateway,
        "/customer/new",
        json!({"user_id": "end-1", "rpm_limit": 1}),
    )
    .await;
    assert_eq!(status, 200);
    let as_end_user = |user: &'static str| {
        gateway
            .post("/v1/chat/completions")
            .json(&json!({"model": "gpt", "user": user, "messages": [{"role": "user", "content": "hi"}]}))
            .send()
    };
    assert_eq!(as_end_user("end-1").await.unwrap().status(), 200);
    assert_eq!(as_end_user("end-1").await.unwrap().status(), 429);
    assert_eq!(as_end_user("end-2").await.unwrap().status(), 200);

    let (status, _) = admin_post(&gateway, "/end_user/block", json!({"user_ids": ["end-2"]})).await;
    assert_eq!(status, 200);
    let refused = as_end_user("end-2").await.unwrap();
    assert_eq!(refused.status(), 403);
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "end_user_blocked");
    admin_post(
        &gateway,
        "/customer/unblock",
        json!({"user_ids": ["end-2"]}),
    )
    .await;
    assert_eq!(as_end_user("end-2").await.unwrap().status(), 200);
}

#[tokio::test]
async fn anthropic_clients_name_their_end_user_in_metadata_user_id() {
    let (gateway, _mock) = gateway().await;
    admin_post(
        &gateway,
        "/customer/block",
        json!({"user_ids": ["claude-user"]}),
    )
    .await;
    let messages = |metadata: serde_json::Value| {
        gateway
            .post("/v1/messages")
            .json(&json!({"model": "gpt", "max_tokens": 16, "metadata": metadata, "messages": [{"role": "user", "content": "hi"}]}))
            .send()
    };
    let refused = messages(json!({"user_id": "claude-user"})).await.unwrap();
    assert_eq!(refused.status(), 403);
    let body: serde_json::Value = refused.json().await.unwrap();
    // In Anthropic's error shape, as /v1/messages answers.
    assert_eq!(body["type"], "error", "{body}");
    assert_eq!(body["error"]["type"], "permission_error");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("claude-user")
    );
    assert_eq!(
        messages(json!({"user_id": "someone-else"}))
            .await
            .unwrap()
            .status(),
        200
    );
    let bad = messages(json!("not an object")).await.unwrap();
    assert_eq!(bad.status(), 400);
}

#[tokio::test]
async fn max_parallel_requests_refuses_while_the_limit_is_in_flight() {
    let options = MockOptions {
        latency: Duration::from_millis(400),
        ..MockOptions::default()
    };
    let mock = MockOpenAi::start_with(options, "127.0.0.1:0").await;
    let models = openai_model("gpt", "gpt-4o", &mock.base_url());
    let gateway = TestGateway::start(&config_with_models(&models)).await;
    let key = new_key(&gateway, json!({"max_parallel_requests": 1})).await;
    let (first, second) = tokio::join!(chat_as(&gateway, &key, "gpt"), async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        chat_as(&gateway, &key, "gpt").await
    });
    assert_eq!(first.0, 200);
    assert_eq!(second.0, 429, "{}", second.1);
    assert!(
        second.1["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_parallel_requests is 1")
    );
    // Released once the first ended.
    assert_eq!(chat_as(&gateway, &key, "gpt").await.0, 200);
}

#[tokio::test]
async fn a_deployment_serves_no_more_than_its_rpm() {
    let mock = MockOpenAi::start().await;
    let yaml = format!(
        "general_settings: {{master_key: {MASTER_KEY}}}
model_list:
  - model_name: gpt
    litellm_params: {{model: openai/gpt-4o, api_base: '{}', api_key: k, rpm: 2}}
",
        mock.base_url()
    );
    let gateway = TestGateway::start(&yaml).await;
    let chat = || {
        gateway
            .post("/v1/chat/completions")
            .json(&json!({"model": "gpt", "messages": [{"role": "user", "content": "hi"}]}))
            .send()
    };
    assert_eq!(chat().await.unwrap().status(), 200);
    assert_eq!(chat().await.unwrap().status(), 200);
    let refused = chat().await.unwrap();
    assert_eq!(refused.status(), 429);
    assert!(refused.headers().contains_key("retry-after"));
    assert_eq!(mock.requests().len(), 2);
}

#[tokio::test]
async fn a_limit_set_to_null_is_removed() {
    let (gateway, _mock) = gateway().await;
    let key = new_key(&gateway, json!({"rpm_limit": 1, "tpm_limit": 1000})).await;
    assert_eq!(chat_as(&gateway, &key, "gpt").await.0, 200);
    assert_eq!(chat_as(&gateway, &key, "gpt").await.0, 429);
    let (status, updated) = admin_post(
        &gateway,
        "/key/update",
        json!({"key": key, "rpm_limit": null}),
    )
    .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["rpm_limit"], serde_json::Value::Null);
    assert_eq!(updated["tpm_limit"], 1000, "a limit left out is kept");
    assert_eq!(chat_as(&gateway, &key, "gpt").await.0, 200);
}
