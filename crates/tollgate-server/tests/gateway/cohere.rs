//! Cohere v2: OpenAI clients on Cohere chat (stream and not, tools with their plan as
//! reasoning), Anthropic clients too, embeddings, and Cohere's errors.

use serde_json::{Value, json};
use tollgate_testkit::cohere::{API_KEY, PREAMBLE_TOKENS, TOOL_PLAN};
use tollgate_testkit::{MockCohere, MockProvider};

use crate::harness::*;

fn cohere(name: &str, model: &str, mock: &MockProvider) -> String {
    // LiteLLM's api_base for Cohere is the chat endpoint itself.
    format!(
        "  - model_name: {name}\n    litellm_params:\n      model: cohere/{model}\n      api_base: {}/v2/chat\n      api_key: {API_KEY}\n",
        mock.root_url()
    )
}

async fn gateway_for(mock: &MockProvider) -> TestGateway {
    let models = [
        cohere("command", "command-a-03-2025", mock),
        cohere("lenient", "command-a-03-2025", mock) + "      drop_params: true\n",
        cohere("embed", "embed-v4.0", mock),
        cohere("error-400", "error-400", mock),
    ];
    TestGateway::start(&config_with_models(&models.concat())).await
}

fn weather_tool() -> Value {
    json!([{"type": "function", "function": {"name": "get_weather", "description": "Weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}},
           {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}}])
}

#[tokio::test]
async fn an_openai_chat_is_served_by_cohere() {
    let mock = MockCohere::start().await;
    let gateway = gateway_for(&mock).await;
    let (status, reply) = chat(
        &gateway,
        json!({"model": "command", "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello from openai"}],
               "top_p": 0.5, "top_k": 20, "max_completion_tokens": 30, "stop": "END"}),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(
        reply["choices"][0]["message"]["content"],
        "hello from openai"
    );
    assert_eq!(reply["choices"][0]["finish_reason"], "stop");
    // The model's own token counts, Cohere's preamble included.
    assert_eq!(reply["usage"]["prompt_tokens"], 5 + PREAMBLE_TOKENS);
    let upstream = mock.last_request();
    assert_eq!(upstream.path, "/v2/chat");
    assert_eq!(
        upstream.headers["authorization"],
        format!("Bearer {API_KEY}")
    );
    assert_eq!(
        upstream.body,
        json!({"model": "command-a-03-2025", "messages": [
                {"role": "system", "content": [{"type": "text", "text": "Be brief."}]},
                {"role": "user", "content": [{"type": "text", "text": "hello from openai"}]}],
               "max_tokens": 30, "stop_sequences": ["END"], "k": 20, "p": 0.5})
    );
}

#[tokio::test]
async fn cohere_tool_calls_round_trip_and_stream() {
    let mock = MockCohere::start().await;
    let gateway = gateway_for(&mock).await;
    let question = json!({"role": "user", "content": "Paris"});
    let (status, reply) = chat(
        &gateway,
        json!({"model": "command", "tools": weather_tool(), "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
               "messages": [question]}),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    let message = &reply["choices"][0]["message"];
    assert_eq!(reply["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(message["reasoning_content"], TOOL_PLAN);
    assert_eq!(message["tool_calls"][0]["id"], "call_cohere_1");
    // A named tool: only it is sent, and required.
    let upstream = mock.last_request();
    assert_eq!(upstream.body["tool_choice"], "REQUIRED");
    assert_eq!(upstream.body["tools"].as_array().unwrap().len(), 1);

    let (status, reply) = chat(
        &gateway,
        json!({"model": "command", "tools": weather_tool(), "messages": [
            question, reply["choices"][0]["message"],
            {"role": "tool", "tool_call_id": "call_cohere_1", "content": "sunny"}]}),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["choices"][0]["message"]["content"], "done");
    let messages = &mock.last_request().body["messages"];
    assert_eq!(
        messages[1]["tool_calls"][0]["function"]["name"],
        "get_weather"
    );
    assert_eq!(
        messages[2],
        json!({"role": "tool", "tool_call_id": "call_cohere_1", "content": [{"type": "text", "text": "sunny"}]})
    );

    let response = gateway
        .post("/v1/chat/completions")
        .json(
            &json!({"model": "command", "stream": true, "stream_options": {"include_usage": true},
                      "tools": weather_tool(), "messages": [{"role": "user", "content": "Oslo"}]}),
        )
        .send()
        .await
        .unwrap();
    let events = read_events(response).await;
    let chunks: Vec<Value> = events
        .iter()
        .filter(|e| e.as_str() != "[DONE]")
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    let reasoning: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["reasoning_content"].as_str())
        .collect();
    assert_eq!(reasoning, TOOL_PLAN);
    let arguments: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"].as_str())
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&arguments).unwrap(),
        json!({"echo": "Oslo"})
    );
    assert!(
        chunks
            .iter()
            .any(|c| c["choices"][0]["finish_reason"] == "tool_calls")
    );
    assert!(
        chunks.last().unwrap()["usage"]["prompt_tokens"]
            .as_u64()
            .unwrap()
            > 0
    );
}

#[tokio::test]
async fn parallel_tool_calls_false_is_refused_unless_dropped() {
    let mock = MockCohere::start().await;
    let gateway = gateway_for(&mock).await;
    let ask = |model: &str, parallel: bool| {
        json!({"model": model, "tools": weather_tool(), "parallel_tool_calls": parallel,
               "messages": [{"role": "user", "content": "Paris"}]})
    };

    // Cohere's `tool_choice` is REQUIRED or NONE; nothing limits the calls per turn.
    let (status, reply) = chat(&gateway, ask("command", false)).await;
    assert_unsupported_parameter(
        status,
        &reply,
        "parallel_tool_calls",
        &["`parallel_tool_calls: false`", "cohere"],
    );
    assert!(mock.requests().is_empty());

    let (status, reply) = chat(&gateway, ask("command", true)).await;
    assert_eq!(status, 200, "{reply}");
    let allowed = mock.last_request().body;
    assert_eq!(allowed["tools"].as_array().unwrap().len(), 2);

    let (status, reply) = chat(&gateway, ask("lenient", false)).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(mock.last_request().body, allowed);

    // Calls forbidden: nothing to run in parallel.
    let (status, reply) = chat(
        &gateway,
        json!({"model": "command", "tools": weather_tool(), "tool_choice": "none",
               "parallel_tool_calls": false, "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(mock.last_request().body["tool_choice"], "NONE");
}

#[tokio::test]
async fn claude_codes_disable_parallel_tool_use_is_dropped_for_cohere() {
    let mock = MockCohere::start().await;
    let gateway = gateway_for(&mock).await;
    claude_code_turn_without_parallel_tools(&gateway, "command", "auto").await;
    let upstream = mock.last_request().body;
    assert_eq!(upstream["tools"][0]["function"]["name"], "get_weather");
    assert!(upstream.get("tool_choice").is_none(), "{upstream}");
}

#[tokio::test]
async fn cohere_streams_text_to_anthropic_clients_and_embeds() {
    let mock = MockCohere::start().await;
    let gateway = gateway_for(&mock).await;
    let response = gateway
        .post("/v1/messages")
        .json(
            &json!({"model": "command", "max_tokens": 40, "stream": true,
                      "messages": [{"role": "user", "content": "streamed to claude code"}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    let streamed: String = text
        .lines()
        .filter_map(|line| line.strip_prefix("data: "))
        .filter_map(|data| serde_json::from_str::<Value>(data).ok())
        .filter_map(|event| event["delta"]["text"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(streamed, "streamed to claude code");

    let response = gateway
        .post("/v1/embeddings")
        .json(
            &json!({"model": "embed", "input": ["one two", "three"], "encoding_format": "base64"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let reply: Value = response.json().await.unwrap();
    assert_eq!(reply["usage"]["prompt_tokens"], 3);
    assert!(reply["data"][0]["embedding"].is_string());
    assert_eq!(
        mock.last_request().body,
        json!({"model": "embed-v4.0", "texts": ["one two", "three"], "input_type": "search_document", "embedding_types": ["float"]})
    );

    let (status, reply) = chat(
        &gateway,
        json!({"model": "error-400", "messages": [{"role": "user", "content": "long"}]}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(reply["error"]["code"], "context_length_exceeded");
}

#[tokio::test]
async fn images_reach_cohere_as_image_url_parts_with_their_detail() {
    let mock = MockCohere::start().await;
    let gateway = gateway_for(&mock).await;
    let (status, reply) = chat(
        &gateway,
        json!({"model": "command", "messages": [{"role": "user", "content": [
            {"type": "text", "text": "describe this"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "high"}},
            {"type": "image_url", "image_url": {"url": "https://example.com/chart.png"}}
        ]}]}),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(
        mock.last_request().body["messages"][0]["content"],
        json!([{"type": "text", "text": "describe this"},
               {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "high"}},
               {"type": "image_url", "image_url": {"url": "https://example.com/chart.png"}}])
    );
}
