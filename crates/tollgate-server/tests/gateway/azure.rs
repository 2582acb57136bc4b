//! Azure OpenAI: deployment URL, `api-version` query, `api-key` header.

use serde_json::json;
use tollgate_testkit::MockOpenAi;

use crate::harness::*;

#[tokio::test]
async fn azure_requests_use_the_deployment_url_and_api_key_header() {
    let mock = MockOpenAi::start().await;
    let models = format!(
        "  - model_name: gpt-4o\n    litellm_params:\n      model: azure/prod-gpt4o\n      api_base: {}/\n      api_key: azure-secret\n      api_version: \"2024-10-21\"\n",
        mock.root_url()
    );
    let gateway = TestGateway::start(&config_with_models(&models)).await;

    let response = gateway
        .post("/v1/chat/completions")
        .json(&json!({"model": "gpt-4o", "stream": true, "messages": [{"role": "user", "content": "hi azure"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(streamed_content(&read_events(response).await), "hi azure");

    let upstream = mock.last_request();
    assert_eq!(
        upstream.path,
        "/openai/deployments/prod-gpt4o/chat/completions?api-version=2024-10-21"
    );
    assert_eq!(upstream.headers["api-key"], "azure-secret");
    assert!(upstream.headers.get("authorization").is_none());
    // 2024-10-21 accepts stream_options, so usage is requested.
    assert_eq!(upstream.body["stream_options"]["include_usage"], true);

    gateway
        .post("/v1/embeddings")
        .json(&json!({"model": "gpt-4o", "input": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        mock.last_request().path,
        "/openai/deployments/prod-gpt4o/embeddings?api-version=2024-10-21"
    );
}

#[tokio::test]
async fn old_azure_api_versions_are_not_sent_stream_options() {
    let mock = MockOpenAi::start().await;
    let models = format!(
        "  - model_name: old\n    litellm_params:\n      model: azure/legacy\n      api_base: {}\n      api_key: k\n      api_version: \"2024-02-01\"\n",
        mock.root_url()
    );
    let gateway = TestGateway::start(&config_with_models(&models)).await;
    let response = gateway
        .post("/v1/chat/completions")
        .json(&json!({"model": "old", "stream": true, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(streamed_content(&read_events(response).await), "hi");
    assert!(mock.last_request().body.get("stream_options").is_none());
}

#[tokio::test]
async fn azure_gets_images_json_schemas_reasoning_and_tools_as_written() {
    let mock = MockOpenAi::start().await;
    let models = format!(
        "  - model_name: gpt-4o\n    litellm_params:\n      model: azure/prod-gpt4o\n      api_base: {}\n      api_key: azure-secret\n      api_version: \"2024-10-21\"\n",
        mock.root_url()
    );
    let gateway = TestGateway::start(&config_with_models(&models)).await;
    openai_format_relays_tools_images_json_and_reasoning(&gateway, "gpt-4o", None, || {
        let call = mock.last_request();
        assert!(
            call.path
                .starts_with("/openai/deployments/prod-gpt4o/chat/completions"),
            "{}",
            call.path
        );
        call.body
    })
    .await;
}
