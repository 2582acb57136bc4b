//! Anthropic: OpenAI clients served by Anthropic models (translation both ways, streaming
//! included), Anthropic clients on `/v1/messages` served by Anthropic (passthrough) and by
//! OpenAI-format providers (translation).

use serde_json::{Value, json};
use tollgate_testkit::anthropic::{CACHE_READ, CACHE_WRITE, SIGNATURE, THINKING};
use tollgate_testkit::{MockAnthropic, MockOpenAi, MockProvider};

use crate::harness::*;

const PROVIDER_KEY: &str = "sk-ant-provider-secret";

fn claude(name: &str, model: &str, mock: &MockProvider, extra: &str) -> String {
    format!(
        "  - model_name: {name}\n    litellm_params:\n      model: anthropic/{model}\n      api_base: {}\n      api_key: {PROVIDER_KEY}\n{extra}",
        mock.root_url()
    )
}

async fn gateway_for(mock: &MockProvider) -> TestGateway {
    TestGateway::start(&config_with_models(&claude(
        "claude",
        "claude-sonnet-4-5",
        mock,
        "",
    )))
    .await
}

fn weather_tool() -> Value {
    json!([{"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}])
}

#[tokio::test]
async fn an_openai_chat_becomes_an_anthropic_message_and_back() {
    let mock = MockAnthropic::start().await;
    let gateway = gateway_for(&mock).await;
    let (status, reply) = chat(
        &gateway,
        json!({"model": "claude", "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "hello from openai"}
        ], "temperature": 0.3, "stop": ["END"], "user": "end-user-7"}),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["object"], "chat.completion");
    assert_eq!(reply["choices"][0]["message"]["role"], "assistant");
    assert_eq!(
        reply["choices"][0]["message"]["content"],
        "hello from openai"
    );
    assert_eq!(reply["choices"][0]["finish_reason"], "stop");
    assert_eq!(reply["usage"]["prompt_tokens"], 6);
    assert_eq!(reply["usage"]["completion_tokens"], 3);
    assert_eq!(reply["usage"]["total_tokens"], 9);

    let upstream = mock.last_request();
    assert_eq!(upstream.path, "/v1/messages");
    assert_eq!(upstream.headers["x-api-key"], PROVIDER_KEY);
    assert_eq!(upstream.headers["anthropic-version"], "2023-06-01");
    assert!(upstream.headers.get("authorization").is_none());
    assert_eq!(
        upstream.body,
        json!({"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": [{"type": "text", "text": "hello from openai"}]}],
               "max_tokens": 4096, "system": [{"type": "text", "text": "You are terse."}], "stop_sequences": ["END"],
               "temperature": 0.3, "metadata": {"user_id": "end-user-7"}})
    );
}

#[tokio::test]
async fn a_stream_from_anthropic_reaches_an_openai_client_as_chunks() {
    let mock = MockAnthropic::start().await;
    let gateway = gateway_for(&mock).await;
    let response = gateway
        .post("/v1/chat/completions")
        .json(&json!({"model": "claude", "stream": true, "stream_options": {"include_usage": true},
                      "messages": [{"role": "user", "content": [{"type": "text", "text": "cached words here",
                                    "cache_control": {"type": "ephemeral"}}]}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let events = read_events(response).await;
    assert_eq!(streamed_content(&events), "cached words here");
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    assert!(
        chunks
            .iter()
            .all(|c| c["object"] == "chat.completion.chunk")
    );
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let finish = chunks
        .iter()
        .find(|c| c["choices"][0]["finish_reason"].is_string())
        .unwrap();
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    let usage = &chunks.last().unwrap()["usage"];
    assert_eq!(usage["prompt_tokens"], 3 + CACHE_READ + CACHE_WRITE);
    assert_eq!(usage["prompt_tokens_details"]["cached_tokens"], CACHE_READ);
    assert_eq!(
        usage["prompt_tokens_details"]["cache_creation_tokens"],
        CACHE_WRITE
    );
    assert_eq!(usage["completion_tokens"], 3);

    // cache_control survived translation onto the content block.
    let upstream = mock.last_request();
    assert_eq!(upstream.body["stream"], true);
    assert_eq!(
        upstream.body["messages"][0]["content"][0]["cache_control"],
        json!({"type": "ephemeral"})
    );
}

#[tokio::test]
async fn tools_and_tool_results_cross_both_ways() {
    let mock = MockAnthropic::start().await;
    let gateway = gateway_for(&mock).await;
    let (status, reply) = chat(
        &gateway,
        json!({"model": "claude", "messages": [{"role": "user", "content": "Paris"}],
               "tools": weather_tool(), "tool_choice": "required", "parallel_tool_calls": false}),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    let message = &reply["choices"][0]["message"];
    assert_eq!(reply["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(message["tool_calls"][0]["id"], "toolu_mock_1");
    assert_eq!(message["tool_calls"][0]["type"], "function");
    assert_eq!(message["tool_calls"][0]["function"]["name"], "get_weather");
    let arguments: Value = serde_json::from_str(
        message["tool_calls"][0]["function"]["arguments"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(arguments, json!({"echo": "Paris"}));
    let upstream = mock.last_request();
    assert_eq!(
        upstream.body["tools"],
        json!([{"name": "get_weather", "description": "Weather in a city",
                "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}])
    );
    assert_eq!(
        upstream.body["tool_choice"],
        json!({"type": "any", "disable_parallel_tool_use": true})
    );

    // The next turn carries the call and its result back.
    let (status, reply) = chat(
        &gateway,
        json!({"model": "claude", "tools": weather_tool(), "messages": [
            {"role": "user", "content": "Paris"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "toolu_mock_1", "type": "function",
                "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
            {"role": "tool", "tool_call_id": "toolu_mock_1", "content": "18C and sunny"}
        ]}),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["choices"][0]["message"]["content"], "done");
    let upstream = mock.last_request();
    assert_eq!(
        upstream.body["messages"],
        json!([
            {"role": "user", "content": [{"type": "text", "text": "Paris"}]},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_mock_1", "name": "get_weather", "input": {"city": "Paris"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_mock_1", "content": "18C and sunny"}]}
        ])
    );
}

#[tokio::test]
async fn streamed_tool_calls_arrive_as_argument_deltas() {
    let mock = MockAnthropic::start().await;
    let gateway = gateway_for(&mock).await;
    let events = read_events(
        gateway
            .post("/v1/chat/completions")
            .json(&json!({"model": "claude", "stream": true, "messages": [{"role": "user", "content": "Oslo"}], "tools": weather_tool()}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let chunks: Vec<Value> = events
        .iter()
        .filter(|e| *e != "[DONE]")
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    let start = chunks
        .iter()
        .find(|c| c["choices"][0]["delta"]["tool_calls"][0]["id"].is_string())
        .unwrap();
    assert_eq!(
        start["choices"][0]["delta"]["tool_calls"][0]["function"]["name"],
        "get_weather"
    );
    assert_eq!(start["choices"][0]["delta"]["tool_calls"][0]["index"], 0);
    let arguments: String = chunks
        .iter()
        .filter_map(|c| {
            c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"]
                .as_str()
                .map(str::to_owned)
        })
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
}

#[tokio::test]
async fn reasoning_effort_becomes_thinking_and_signed_blocks_round_trip() {
    let mock = MockAnthropic::start().await;
    let gateway = gateway_for(&mock).await;
    let (status, reply) = chat(
        &gateway,
        json!({"model": "claude", "reasoning_effort": "low", "messages": [{"role": "user", "content": "think"}]}),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    let message = &reply["choices"][0]["message"];
    assert_eq!(message["reasoning_content"], THINKING);
    assert_eq!(
        message["thinking_blocks"],
        json!([{"type": "thinking", "thinking": THINKING, "signature": SIGNATURE}])
    );
    let upstream = mock.last_request();
    assert_eq!(
        upstream.body["thinking"],
        json!({"type": "enabled", "budget_tokens": 1024})
    );
    assert_eq!(upstream.body["max_tokens"], 1024 + 4096);

    // Streaming: thinking deltas, then the signature.
    let events = read_events(
        gateway
            .post("/v1/chat/completions")
            .json(&json!({"model": "claude", "stream": true, "reasoning_effort": "high", "messages": [{"role": "user", "content": "think"}]}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let chunks: Vec<Value> = events
        .iter()
        .filter(|e| *e != "[DONE]")
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    let reasoning: String = chunks
        .iter()
        .filter_map(|c| {
            c["choices"][0]["delta"]["reasoning_content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(reasoning, THINKING);
    assert!(
        chunks
            .iter()
            .any(|c| c["choices"][0]["delta"]["thinking_blocks"][0]["signature"] == SIGNATURE)
    );

    // The blocks sent back on the next turn reach Anthropic first in the assistant turn.
    chat(
        &gateway,
        json!({"model": "claude", "reasoning_effort": "low", "tools": weather_tool(), "messages": [
            {"role": "user", "content": "Paris"},
            {"role": "assistant", "content": null, "thinking_blocks": [{"type": "thinking", "thinking": THINKING, "signature": SIGNATURE}],
             "tool_calls": [{"id": "toolu_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "toolu_1", "content": "sunny"}
        ]}),
    )
    .await;
    let upstream = mock.last_request();
    assert_eq!(
        upstream.body["messages"][1]["content"],
        json!([{"type": "thinking", "thinking": THINKING, "signature": SIGNATURE},
               {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}])
    );
}

#[tokio::test]
async fn images_go_inline_or_by_url() {
    let mock = MockAnthropic::start().await;
    let gateway = gateway_for(&mock).await;
    let (status, _) = chat(
        &gateway,
        json!({"model": "claude", "messages": [{"role": "user", "content": [
            {"type": "text", "text": "compare"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg", "detail": "high"}}
        ]}]}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        mock.last_request().body["messages"][0]["content"],
        json!([{"type": "text", "text": "compare"},
               {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
               {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}}])
    );
}

#[tokio::test]
async fn a_json_schema_is_answered_through_a_forced_tool() {
    let mock = MockAnthropic::start().await;
    let gateway = gateway_for(&mock).await;
    let schema =
        json!({"type": "object", "properties": {"echo": {"type": "string"}}, "required": ["echo"]});
    let (status, reply) = chat(
        &gateway,
        json!({"model": "claude", "messages": [{"role": "user", "content": "structured"}],
               "response_format": {"type": "json_schema", "json_schema": {"name": "reply", "schema": schema}}}),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(structured_content(&reply), json!({"echo": "structured"}));
    let upstream = mock.last_request();
    assert_eq!(upstream.body["tools"][0]["name"], "json_tool_call");
    assert_eq!(upstream.body["tools"][0]["input_schema"], schema);
    assert_eq!(
        upstream.body["tool_choice"],
        json!({"type": "tool", "name": "json_tool_call"})
    );
}

#[tokio::test]
async fn unsupported_parameters_are_refused_or_dropped_as_configured() {
    let mock = MockAnthropic::start().await;
    let strict = gateway_for(&mock).await;
    let (status, reply) = chat(
        &strict,
        json!({"model": "claude", "seed": 7, "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(reply["error"]["param"], "seed");
    assert_eq!(reply["error"]["code"], "unsupported_parameter");
    assert!(
        reply["error"]["message"]
            .as_str()
            .unwrap()
            .contains("anthropic"),
        "{reply}"
    );

    let lenient = TestGateway::start(&config_with_models(&claude(
        "claude",
        "claude-sonnet-4-5",
        &mock,
        "      drop_params: true\n",
    )))
    .await;
    let (status, _) = chat(
        &lenient,
        json!({"model": "claude", "seed": 7, "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(status, 200);
    assert!(mock.last_request().body.get("seed").is_none());
}

#[tokio::test]
async fn anthropic_errors_keep_their_meaning() {
    let mock = MockAnthropic::start().await;
    let models: String = ["error-400", "error-429", "error-529"]
        .iter()
        .map(|m| claude(m, m, &mock, ""))
        .collect();
    let gateway = TestGateway::start(&config_with_models(&models)).await;

    let (status, reply) = chat(
        &gateway,
        json!({"model": "error-400", "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(reply["error"]["code"], "context_length_exceeded");
    assert!(
        reply["error"]["message"]
            .as_str()
            .unwrap()
            .contains("prompt is too long")
    );

    let response = gateway
        .post("/v1/chat/completions")
        .json(&json!({"model": "error-429", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "3");

    let (status, reply) = chat(
        &gateway,
        json!({"model": "error-529", "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(
        status, 503,
        "overloaded is a retryable server-side failure: {reply}"
    );
}

#[tokio::test]
async fn an_error_event_mid_stream_ends_the_openai_stream_with_an_error() {
    let mock = MockAnthropic::start().await;
    let gateway = TestGateway::start(&config_with_models(&claude(
        "claude",
        "stream-error",
        &mock,
        "",
    )))
    .await;
    let events = read_events(
        gateway
            .post("/v1/chat/completions")
            .json(&json!({"model": "claude", "stream": true, "messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(streamed_content(&events), "partial");
    let last: Value = serde_json::from_str(events.last().unwrap()).unwrap();
    assert_eq!(last["error"]["message"], "Overloaded");
    assert!(!events.iter().any(|e| e == "[DONE]"));
}

// ----- Anthropic clients --------------------------------------------------------------------

async fn messages(gateway: &TestGateway, body: Value) -> (u16, Value) {
    let response = gateway
        .client
        .post(format!("{}/v1/messages?beta=true", gateway.url))
        .header("x-api-key", MASTER_KEY)
        .header("anthropic-version", "2023-06-01")
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn anthropic_clients_pass_straight_through_to_anthropic() {
    let mock = MockAnthropic::start().await;
    let gateway = gateway_for(&mock).await;
    let body = r#"{"model":"claude","max_tokens":256,"messages":[{"role":"user","content":"straight through"}],"context_management":{"edits":[]}}"#;
    let response = gateway
        .client
        .post(format!("{}/v1/messages", gateway.url))
        .header("x-api-key", MASTER_KEY)
        .header("anthropic-version", "2023-06-01")
        .header(
            "anthropic-beta",
            "interleaved-thinking-2025-05-14,context-1m-2025-08-07",
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let reply: Value = response.json().await.unwrap();
    assert_eq!(reply["type"], "message");
    assert_eq!(reply["content"][0]["text"], "straight through");

    let upstream = mock.last_request();
    // Only the model changed; fields the gateway does not know travel untouched.
    assert_eq!(
        std::str::from_utf8(&upstream.raw_body).unwrap(),
        r#"{"model":"claude-sonnet-4-5","max_tokens":256,"messages":[{"role":"user","content":"straight through"}],"context_management":{"edits":[]}}"#
    );
    assert_eq!(
        upstream.headers["x-api-key"], PROVIDER_KEY,
        "the gateway key is replaced by the provider key"
    );
    assert_eq!(
        upstream.headers["anthropic-beta"],
        "interleaved-thinking-2025-05-14,context-1m-2025-08-07"
    );
}

#[tokio::test]
async fn anthropic_streams_pass_through_byte_for_byte() {
    let mock = MockAnthropic::start().await;
    let gateway = gateway_for(&mock).await;
    let response = gateway
        .client
        .post(format!("{}/v1/messages", gateway.url))
        .header("x-api-key", MASTER_KEY)
        .json(&json!({"model": "claude", "max_tokens": 64, "stream": true, "messages": [{"role": "user", "content": "a b"}]}))
        .send()
        .await
        .unwrap();
    let text = response.text().await.unwrap();
    let names: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("event: "))
        .collect();
    assert_eq!(
        names,
        [
            "message_start",
            "ping",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    assert!(text.contains("\"model\":\"claude-sonnet-4-5\""));
}

#[tokio::test]
async fn anthropic_clients_are_served_by_openai_format_providers() {
    let mock = MockOpenAi::start().await;
    let gateway = TestGateway::start(&config_with_models(&openai_model(
        "claude",
        "gpt-4o",
        &mock.base_url(),
    )))
    .await;
    let (status, reply) = messages(
        &gateway,
        json!({"model": "claude", "max_tokens": 100, "system": "be brief",
               "messages": [{"role": "user", "content": [{"type": "text", "text": "Rome"}]}],
               "tools": [{"name": "get_weather", "description": "Weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}],
               "tool_choice": {"type": "any"}}),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["type"], "message");
    assert_eq!(reply["model"], "claude");
    assert!(reply["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(reply["stop_reason"], "tool_use");
    assert_eq!(reply["content"][0]["type"], "tool_use");
    assert_eq!(reply["content"][0]["name"], "get_weather");
    assert_eq!(reply["content"][0]["input"], json!({"echo": "Rome"}));
    assert_eq!(reply["usage"]["input_tokens"], 3);

    let upstream = mock.last_request();
    assert_eq!(upstream.path, "/v1/chat/completions");
    assert_eq!(upstream.body["model"], "gpt-4o");
    assert_eq!(
        upstream.body["messages"][0],
        json!({"role": "system", "content": "be brief"})
    );
    assert_eq!(upstream.body["tool_choice"], "required");
    assert_eq!(upstream.body["tools"][0]["function"]["name"], "get_weather");
    assert_eq!(upstream.body["max_tokens"], 100);
}

#[tokio::test]
async fn anthropics_own_tools_are_refused_or_left_out_for_other_providers() {
    let mock = MockOpenAi::start().await;
    let gateway = TestGateway::start(&config_with_models(
        &(openai_model("strict", "gpt-4o", &mock.base_url())
            + &openai_model("lenient", "gpt-4o", &mock.base_url())
            + "      drop_params: true\n"),
    ))
    .await;
    let turn = |model: &str, tool: Value, choice: Value| {
        json!({"model": model, "max_tokens": 100,
               "messages": [{"role": "user", "content": "Weather in Rome, and the news?"}],
               "tools": [
                   {"name": "get_weather", "input_schema": {"type": "object"}},
                   tool,
               ],
               "tool_choice": choice})
    };
    let anthropics_tools = [
        json!({"type": "web_search_20250305", "name": "web_search", "max_uses": 3}),
        json!({"type": "bash_20250124", "name": "bash"}),
        json!({"type": "text_editor_20250429", "name": "str_replace_based_edit_tool"}),
    ];
    for tool in &anthropics_tools {
        let kind = tool["type"].as_str().unwrap();
        let (status, reply) = messages(
            &gateway,
            turn("strict", tool.clone(), json!({"type": "auto"})),
        )
        .await;
        assert_eq!(status, 400, "{reply}");
        assert_eq!(reply["type"], "error");
        assert_eq!(reply["error"]["type"], "invalid_request_error");
        let message = reply["error"]["message"].as_str().unwrap();
        for named in [kind, "openai", "drop_params"] {
            assert!(message.contains(named), "`{named}` not in: {message}");
        }
    }
    assert!(mock.requests().is_empty(), "nothing reached the provider");

    // With `drop_params` they are left out; a choice of one of them leaves the model free.
    let (status, reply) = messages(
        &gateway,
        turn(
            "lenient",
            anthropics_tools[0].clone(),
            json!({"type": "tool", "name": "web_search"}),
        ),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    let upstream = mock.last_request();
    let tools = upstream.body["tools"].as_array().unwrap();
    assert_eq!(tools.len(), 1, "{tools:?}");
    assert_eq!(tools[0]["function"]["name"], "get_weather");
    assert_eq!(upstream.body["tool_choice"], "auto");

    // Only Anthropic's tools offered: none is sent, nor a choice among none.
    let only_search = json!({"model": "lenient", "max_tokens": 100,
        "messages": [{"role": "user", "content": "The news?"}],
        "tools": [anthropics_tools[0].clone()], "tool_choice": {"type": "any"}});
    let (status, reply) = messages(&gateway, only_search).await;
    assert_eq!(status, 200, "{reply}");
    let upstream = mock.last_request();
    assert!(upstream.body.get("tools").is_none(), "{}", upstream.body);
    assert!(
        upstream.body.get("tool_choice").is_none(),
        "{}",
        upstream.body
    );
}

#[tokio::test]
async fn anthropic_streams_are_synthesised_from_openai_chunks() {
    let mock = MockOpenAi::start().await;
    let gateway = TestGateway::start(&config_with_models(&openai_model(
        "claude",
        "gpt-4o",
        &mock.base_url(),
    )))
    .await;
    let response = gateway
        .client
        .post(format!("{}/v1/messages", gateway.url))
        .header("authorization", format!("Bearer {MASTER_KEY}"))
        .json(&json!({"model": "claude", "max_tokens": 64, "stream": true, "messages": [{"role": "user", "content": "one two"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    let events: Vec<(String, Value)> = text
        .split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|e| {
            let name = e
                .lines()
                .find_map(|l| l.strip_prefix("event: "))
                .unwrap()
                .to_owned();
            let data = e.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
            (name, serde_json::from_str(data).unwrap())
        })
        .collect();
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    let text: String = events
        .iter()
        .filter_map(|(_, d)| d["delta"]["text"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(text, "one two");
    let delta = &events[5].1;
    assert_eq!(delta["delta"]["stop_reason"], "end_turn");
    assert_eq!(delta["usage"]["output_tokens"], 2);
    assert_eq!(delta["usage"]["input_tokens"], 2);
    // The gateway asked the OpenAI provider for usage so the final event can carry it.
    assert_eq!(
        mock.last_request().body["stream_options"],
        json!({"include_usage": true})
    );
}

#[tokio::test]
async fn anthropic_clients_get_anthropic_shaped_errors() {
    let mock = MockAnthropic::start().await;
    let gateway = gateway_for(&mock).await;
    let unauthenticated = gateway
        .client
        .post(format!("{}/v1/messages", gateway.url))
        .json(&json!({"model": "claude", "max_tokens": 5, "messages": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status(), 401);
    let body: Value = unauthenticated.json().await.unwrap();
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "authentication_error");

    let (status, body) = messages(
        &gateway,
        json!({"model": "nope", "max_tokens": 5, "messages": []}),
    )
    .await;
    assert_eq!(
        (status, body["error"]["type"].as_str()),
        (404, Some("not_found_error"))
    );

    let (status, body) = messages(&gateway, json!({"model": "claude", "messages": []})).await;
    assert_eq!(
        (status, body["error"]["type"].as_str()),
        (400, Some("invalid_request_error"))
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_tokens")
    );
}

#[tokio::test]
async fn count_tokens_goes_to_anthropic() {
    let mock = MockAnthropic::start().await;
    let gateway = gateway_for(&mock).await;
    let response = gateway
        .client
        .post(format!("{}/v1/messages/count_tokens", gateway.url))
        .header("x-api-key", MASTER_KEY)
        .json(&json!({"model": "claude", "messages": [{"role": "user", "content": "count these four words"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"input_tokens": 4})
    );
    assert_eq!(mock.last_request().path, "/v1/messages/count_tokens");
}

#[tokio::test]
async fn token_counts_for_models_without_a_counting_api_are_estimated_locally() {
    let openai = MockOpenAi::start().await;
    let gateway = TestGateway::start(&config_with_models(&openai_model(
        "gpt",
        "gpt-4o",
        &openai.base_url(),
    )))
    .await;
    let count = |body: Value| {
        let request = gateway
            .client
            .post(format!("{}/v1/messages/count_tokens", gateway.url))
            .header("x-api-key", MASTER_KEY)
            .json(&body);
        async move {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 200);
            response.json::<Value>().await.unwrap()["input_tokens"]
                .as_u64()
                .unwrap()
        }
    };
    // o200k_base: "user\nHello, world!" is 6 tokens, plus OpenAI's framing of 3 per message and
    // 3 for the reply.
    let small =
        count(json!({"model": "gpt", "messages": [{"role": "user", "content": "Hello, world!"}]}))
            .await;
    assert_eq!(small, 12);
    let with_tools = count(json!({"model": "gpt", "messages": [{"role": "user", "content": "Hello, world!"}],
        "tools": [{"name": "get_weather", "description": "Weather in a city",
                   "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]}))
    .await;
    assert!(with_tools > small + 10, "{with_tools}");
    assert!(
        openai.requests().is_empty(),
        "the provider is not called to count"
    );
}
