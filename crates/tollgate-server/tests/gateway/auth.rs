//! The master key guards every LLM route, in every header clients use for it.

use serde_json::{Value, json};

use crate::harness::*;

const ECHO: &str = "  - model_name: echo\n    litellm_params:\n      model: mock/echo\n";

fn chat_body() -> Value {
    json!({"model": "echo", "messages": [{"role": "user", "content": "hi"}]})
}

#[tokio::test]
async fn the_master_key_is_accepted_in_each_header() {
    let gateway = TestGateway::start(&config_with_models(ECHO)).await;
    let url = format!("{}/v1/chat/completions", gateway.url);
    for (header, value) in [
        ("authorization", format!("Bearer {MASTER_KEY}")),
        ("api-key", MASTER_KEY.to_owned()),
        ("x-api-key", MASTER_KEY.to_owned()),
        ("x-litellm-api-key", format!("Bearer {MASTER_KEY}")),
    ] {
        let status = gateway
            .client
            .post(&url)
            .header(header, value)
            .json(&chat_body())
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 200, "{header}");
    }
}

#[tokio::test]
async fn missing_and_wrong_keys_are_401_in_openai_shape() {
    let gateway = TestGateway::start(&config_with_models(ECHO)).await;
    for path in ["/v1/chat/completions", "/v1/completions", "/v1/embeddings"] {
        let url = format!("{}{path}", gateway.url);
        let missing = gateway
            .client
            .post(&url)
            .json(&chat_body())
            .send()
            .await
            .unwrap();
        assert_eq!(missing.status(), 401, "{path}");
        let body: Value = missing.json().await.unwrap();
        assert_eq!(body["error"]["type"], "authentication_error");
        assert_eq!(body["error"]["code"], "missing_api_key");

        let wrong = gateway
            .client
            .post(&url)
            .bearer_auth("sk-wrong")
            .json(&chat_body())
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), 401);
        let body: Value = wrong.json().await.unwrap();
        assert_eq!(body["error"]["code"], "invalid_api_key");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("Invalid API key")
        );
    }
    let models = gateway
        .client
        .get(format!("{}/v1/models", gateway.url))
        .send()
        .await
        .unwrap();
    assert_eq!(models.status(), 401);
}

#[tokio::test]
async fn without_a_master_key_the_gateway_is_open() {
    let gateway = TestGateway::start(&format!("model_list:\n{ECHO}")).await;
    assert!(gateway.gateway.is_open());
    let response = gateway
        .client
        .post(format!("{}/v1/chat/completions", gateway.url))
        .json(&chat_body())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn a_custom_key_header_from_general_settings_works() {
    let yaml = format!(
        "general_settings:\n  master_key: {MASTER_KEY}\n  litellm_key_header_name: X-Company-Key\nmodel_list:\n{ECHO}"
    );
    let gateway = TestGateway::start(&yaml).await;
    let response = gateway
        .client
        .post(format!("{}/v1/chat/completions", gateway.url))
        .header("x-company-key", MASTER_KEY)
        .json(&chat_body())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn request_ids_are_echoed_or_minted_on_every_response() {
    let gateway = TestGateway::start(&config_with_models(ECHO)).await;
    let given = gateway
        .post("/v1/chat/completions")
        .header("x-request-id", "client-chosen-id-42")
        .json(&chat_body())
        .send()
        .await
        .unwrap();
    assert_eq!(given.headers()["x-request-id"], "client-chosen-id-42");

    let minted = gateway
        .client
        .post(format!("{}/v1/chat/completions", gateway.url))
        .json(&chat_body())
        .send()
        .await
        .unwrap();
    assert_eq!(minted.status(), 401);
    assert_eq!(minted.headers()["x-request-id"].len(), 36);
}
