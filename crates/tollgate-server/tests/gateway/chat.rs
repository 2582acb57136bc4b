//! Chat completions through the OpenAI passthrough path.

use serde_json::{Value, json};
use tollgate_testkit::MockOpenAi;

use crate::harness::*;

#[tokio::test]
async fn a_chat_completion_is_relayed_and_only_the_model_is_rewritten() {
    let mock = MockOpenAi::start().await;
    let gateway = TestGateway::start(&config_with_models(&openai_model(
        "fast",
        "gpt-4o-mini",
        &mock.base_url(),
    )))
    .await;

    // Unknown fields, odd spacing and number formats must reach the provider byte for byte.
    let body = r#"{"model": "fast", "messages": [{"role": "user", "content": "hello gateway"}], "temperature": 0.50, "x_vendor_field": {"nested": [1, 2.0e1]}}"#;
    let response = gateway
        .post("/v1/chat/completions")
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let reply: Value = response.json().await.unwrap();
    assert_eq!(reply["choices"][0]["message"]["content"], "hello gateway");
    assert_eq!(reply["usage"]["total_tokens"], 4);

    let upstream = mock.last_request();
    assert_eq!(upstream.path, "/v1/chat/completions");
    assert_eq!(
        std::str::from_utf8(&upstream.raw_body).unwrap(),
        r#"{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello gateway"}], "temperature": 0.50, "x_vendor_field": {"nested": [1, 2.0e1]}}"#
    );
    assert_eq!(
        upstream.headers["authorization"],
        "Bearer sk-provider-secret-key"
    );
    assert!(
        upstream.headers.get("x-api-key").is_none(),
        "the client's gateway key never reaches the provider"
    );
}

#[tokio::test]
async fn every_route_also_answers_without_the_v1_prefix() {
    let mock = MockOpenAi::start().await;
    let gateway = TestGateway::start(&config_with_models(&openai_model(
        "m",
        "gpt-4o",
        &mock.base_url(),
    )))
    .await;
    let response = gateway
        .post("/chat/completions")
        .json(&json!({"model": "m", "messages": [{"role": "user", "content": "no prefix"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(gateway.get("/models").send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn a_stream_arrives_event_by_event_without_the_injected_usage_chunk() {
    let mock = MockOpenAi::start().await;
    let gateway = TestGateway::start(&config_with_models(&openai_model(
        "m",
        "gpt-4o",
        &mock.base_url(),
    )))
    .await;

    let response = gateway
        .post("/v1/chat/completions")
        .json(&json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": "one two three"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let events = read_events(response).await;
    assert_eq!(streamed_content(&events), "one two three");
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    for event in &events[..events.len() - 1] {
        let chunk: Value = serde_json::from_str(event).unwrap();
        assert!(
            !chunk["choices"].as_array().unwrap().is_empty(),
            "no usage-only chunk reaches the client: {event}"
        );
    }

    // The provider was asked for usage so the gateway always knows it.
    let upstream = mock.last_request();
    assert_eq!(
        upstream.body["stream_options"],
        json!({"include_usage": true})
    );
    assert_eq!(upstream.body["model"], "gpt-4o");
}

#[tokio::test]
async fn a_client_that_asks_for_usage_gets_the_usage_chunk() {
    let mock = MockOpenAi::start().await;
    let gateway = TestGateway::start(&config_with_models(&openai_model(
        "m",
        "gpt-4o",
        &mock.base_url(),
    )))
    .await;
    let response = gateway
        .post("/v1/chat/completions")
        .json(
            &json!({"model": "m", "stream": true, "stream_options": {"include_usage": true},
                      "messages": [{"role": "user", "content": "count these words"}]}),
        )
        .send()
        .await
        .unwrap();
    let events = read_events(response).await;
    let usage_chunk: Value = serde_json::from_str(&events[events.len() - 2]).unwrap();
    assert_eq!(usage_chunk["choices"], json!([]));
    assert_eq!(usage_chunk["usage"]["completion_tokens"], 3);
}

#[tokio::test]
async fn tool_definitions_and_tool_calls_pass_through() {
    let mock = MockOpenAi::start().await;
    let gateway = TestGateway::start(&config_with_models(&openai_model(
        "m",
        "gpt-4o",
        &mock.base_url(),
    )))
    .await;
    let tools = json!([{"type": "function", "function": {"name": "get_weather", "description": "Weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}, "strict": true}}]);

    let reply: Value = gateway
        .post("/v1/chat/completions")
        .json(&json!({"model": "m", "messages": [{"role": "user", "content": "Paris"}], "tools": tools, "tool_choice": "auto", "parallel_tool_calls": false}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(reply["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(
        reply["choices"][0]["message"]["tool_calls"][0]["function"]["name"],
        "get_weather"
    );
    let upstream = mock.last_request();
    assert_eq!(upstream.body["tools"], tools);
    assert_eq!(upstream.body["parallel_tool_calls"], false);

    let events = read_events(
        gateway
            .post("/v1/chat/completions")
            .json(&json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": "Paris"}], "tools": tools}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let arguments: String = events
        .iter()
        .filter_map(|e| serde_json::from_str::<Value>(e).ok())
        .filter_map(|v| {
            v["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&arguments).unwrap(),
        json!({"echo": "Paris"})
    );
}

#[tokio::test]
async fn the_built_in_mock_provider_echoes_without_a_network() {
    let gateway = TestGateway::start(&config_with_models(
        "  - model_name: echo\n    litellm_params:\n      model: mock/echo\n  - model_name: fixed\n    litellm_params:\n      model: mock/fixed\n      mock_response: always this\n",
    ))
    .await;
    let reply: Value = gateway
        .post("/v1/chat/completions")
        .json(&json!({"model": "echo", "messages": [{"role": "user", "content": "ping pong"}]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(reply["choices"][0]["message"]["content"], "ping pong");

    let events = read_events(
        gateway
            .post("/v1/chat/completions")
            .json(&json!({"model": "fixed", "stream": true, "messages": [{"role": "user", "content": "x"}]}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(streamed_content(&events), "always this");
}

#[tokio::test]
async fn a_group_of_deployments_shares_the_traffic() {
    let first = MockOpenAi::start().await;
    let second = MockOpenAi::start().await;
    let models = format!(
        "{}{}",
        openai_model("m", "gpt-4o", &first.base_url()),
        openai_model("m", "gpt-4o", &second.base_url())
    );
    let gateway = TestGateway::start(&config_with_models(&models)).await;
    for _ in 0..40 {
        let status = gateway
            .post("/v1/chat/completions")
            .json(&json!({"model": "m", "messages": [{"role": "user", "content": "x"}]}))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 200);
    }
    assert!(
        first.requests().len() >= 5 && second.requests().len() >= 5,
        "{} / {}",
        first.requests().len(),
        second.requests().len()
    );
}

#[tokio::test]
async fn openai_and_registry_providers_get_images_json_schemas_reasoning_and_tools_as_written() {
    let mock = MockOpenAi::start().await;
    let base = mock.base_url();
    let models = [
        openai_model("gpt", "gpt-4o", &base),
        format!(
            "  - model_name: groq\n    litellm_params:\n      model: groq/llama-3.3-70b-versatile\n      api_base: {base}\n      api_key: gsk-test\n"
        ),
        // Mistral refuses `stream_options`: its streams are relayed without asking for usage.
        format!(
            "  - model_name: mistral\n    litellm_params:\n      model: mistral/mistral-large-latest\n      api_base: {base}\n      api_key: mistral-test\n"
        ),
    ];
    let gateway = TestGateway::start(&config_with_models(&models.concat())).await;
    for (model, sent_model) in [
        ("gpt", "gpt-4o"),
        ("groq", "llama-3.3-70b-versatile"),
        ("mistral", "mistral-large-latest"),
    ] {
        openai_format_relays_tools_images_json_and_reasoning(
            &gateway,
            model,
            Some(sent_model),
            || mock.last_request().body,
        )
        .await;
    }
    assert!(
        mock.last_request().body.get("stream_options").is_none(),
        "not asked of Mistral"
    );
}
