//! The Responses API bridged onto chat for providers without it: requests in, whole and
//! streamed responses out (the event sequence Codex and the SDKs check), function calls,
//! `previous_response_id` through the gateway's response store, retrieve and delete.

use serde_json::{Value, json};
use tollgate_testkit::anthropic::{SIGNATURE, THINKING};
use tollgate_testkit::{MockAnthropic, MockOpenAi, MockProvider};

use crate::harness::*;

async fn gateway_for(openai: &MockProvider, anthropic: &MockProvider) -> TestGateway {
    let models = format!(
        "{}  - model_name: claude\n    litellm_params:\n      model: anthropic/claude-sonnet-4-5\n      api_base: {}\n      api_key: sk-ant\n",
        openai_model("gpt", "gpt-4o-mini", &openai.base_url()),
        anthropic.root_url()
    );
    // A chat-only OpenAI-compatible provider: Responses requests are bridged.
    let models = models.replace(
        "model: openai/gpt-4o-mini",
        "model: hosted_vllm/gpt-4o-mini",
    );
    TestGateway::start(&config_with_models(&models)).await
}

async fn create(gateway: &TestGateway, body: Value) -> (u16, Value) {
    admin_post(gateway, "/v1/responses", body).await
}

/// A streamed response's events, as `(event name, data)`.
async fn events(response: reqwest::Response) -> Vec<(String, Value)> {
    let text = response.text().await.unwrap();
    assert!(
        !text.contains("[DONE]"),
        "Responses streams end without [DONE]"
    );
    text.split("\n\n")
        .filter(|event| !event.trim().is_empty())
        .map(|event| {
            let name = event
                .lines()
                .find_map(|l| l.strip_prefix("event: "))
                .unwrap()
                .to_owned();
            let data = event
                .lines()
                .find_map(|l| l.strip_prefix("data: "))
                .unwrap();
            (name, serde_json::from_str(data).unwrap())
        })
        .collect()
}

fn weather_tool() -> Value {
    json!([{"type": "function", "name": "get_weather", "description": "Weather in a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}])
}

#[tokio::test]
async fn a_response_is_answered_through_chat() {
    let openai = MockOpenAi::start().await;
    let anthropic = MockAnthropic::start().await;
    let gateway = gateway_for(&openai, &anthropic).await;
    let (status, response) = create(
        &gateway,
        json!({"model": "gpt", "instructions": "Be terse.", "input": "hello responses", "max_output_tokens": 40,
               "temperature": 0.5, "metadata": {"team": "a"}}),
    )
    .await;
    assert_eq!(status, 200, "{response}");
    assert_eq!(response["object"], "response");
    assert!(response["id"].as_str().unwrap().starts_with("resp_"));
    assert_eq!(response["status"], "completed");
    assert_eq!(response["model"], "gpt");
    assert_eq!(response["instructions"], "Be terse.");
    assert_eq!(response["temperature"], 0.5);
    assert_eq!(response["metadata"], json!({"team": "a"}));
    let message = &response["output"][0];
    assert_eq!(message["type"], "message");
    assert!(message["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(message["content"][0]["type"], "output_text");
    assert_eq!(message["content"][0]["text"], "hello responses");
    assert_eq!(
        response["usage"],
        json!({"input_tokens": 4, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 2,
               "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 6})
    );
    let upstream = openai.last_request();
    assert_eq!(upstream.path, "/v1/chat/completions");
    assert_eq!(
        upstream.body["messages"],
        json!([{"role": "system", "content": "Be terse."}, {"role": "user", "content": "hello responses"}])
    );
    assert_eq!(upstream.body["max_completion_tokens"], 40);
}

#[tokio::test]
async fn a_streamed_response_has_the_full_event_sequence() {
    let openai = MockOpenAi::start().await;
    let anthropic = MockAnthropic::start().await;
    let gateway = gateway_for(&openai, &anthropic).await;
    let response = gateway
        .post("/v1/responses")
        .json(&json!({"model": "claude", "stream": true, "reasoning": {"effort": "low"},
                      "input": [{"role": "user", "content": [{"type": "input_text", "text": "stream me please"}]}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let events = events(response).await;
    let names: Vec<&str> = events.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(
        names,
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.reasoning_summary_part.added",
            "response.reasoning_summary_text.delta",
            "response.reasoning_summary_text.done",
            "response.reasoning_summary_part.done",
            "response.output_item.done",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    for (index, (name, data)) in events.iter().enumerate() {
        assert_eq!(data["type"], name.as_str());
        assert_eq!(data["sequence_number"], index);
    }
    let reasoning = &events[7].1["item"];
    assert_eq!(reasoning["type"], "reasoning");
    assert_eq!(reasoning["summary"][0]["text"], THINKING);
    assert!(
        reasoning["encrypted_content"]
            .as_str()
            .unwrap()
            .starts_with("tollgate.v1.")
    );
    assert_eq!(events[8].1["output_index"], 1);
    let completed = &events.last().unwrap().1["response"];
    assert_eq!(completed["status"], "completed");
    assert_eq!(completed["output"].as_array().unwrap().len(), 2);
    assert_eq!(
        completed["output"][1]["content"][0]["text"],
        "stream me please"
    );
    assert_eq!(
        completed["usage"]["output_tokens_details"]["reasoning_tokens"],
        0
    );
    assert!(completed["usage"]["input_tokens"].as_u64().unwrap() > 0);
    // The thinking budget reached Anthropic.
    assert_eq!(
        anthropic.last_request().body["thinking"]["budget_tokens"],
        1024
    );
}

#[tokio::test]
async fn function_calls_continue_with_previous_response_id() {
    let openai = MockOpenAi::start().await;
    let anthropic = MockAnthropic::start().await;
    let gateway = gateway_for(&openai, &anthropic).await;
    let (status, first) = create(
        &gateway,
        json!({"model": "gpt", "tools": weather_tool(), "tool_choice": {"type": "function", "name": "get_weather"},
               "input": "weather in Oslo"}),
    )
    .await;
    assert_eq!(status, 200, "{first}");
    let call = &first["output"][0];
    assert_eq!(call["type"], "function_call");
    assert!(call["id"].as_str().unwrap().starts_with("fc_"));
    assert_eq!(call["call_id"], "call_mock_1");
    assert_eq!(call["name"], "get_weather");
    let upstream = openai.last_request();
    assert_eq!(
        upstream.body["tools"][0],
        json!({"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
               "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}})
    );
    assert_eq!(
        upstream.body["tool_choice"],
        json!({"type": "function", "function": {"name": "get_weather"}})
    );

    let (status, second) = create(
        &gateway,
        json!({"model": "gpt", "tools": weather_tool(), "previous_response_id": first["id"],
               "input": [{"type": "function_call_output", "call_id": "call_mock_1", "output": "-3C, snow"}]}),
    )
    .await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(second["previous_response_id"], first["id"]);
    assert_eq!(second["output"][0]["content"][0]["text"], "done");
    assert_eq!(
        openai.last_request().body["messages"],
        json!([
            // The stored first turn is an item list, so its text arrives as a content part.
            {"role": "user", "content": [{"type": "text", "text": "weather in Oslo"}]},
            {"role": "assistant", "tool_calls": [{"id": "call_mock_1", "type": "function",
                "function": {"name": "get_weather", "arguments": "{\"echo\":\"weather in Oslo\"}"}}]},
            {"role": "tool", "content": "-3C, snow", "tool_call_id": "call_mock_1"}
        ])
    );

    // Stored: retrieved, listed, deleted.
    let id = second["id"].as_str().unwrap();
    let (_, fetched) = admin_get(&gateway, &format!("/v1/responses/{id}")).await;
    assert_eq!(fetched, second);
    let (_, items) = admin_get(&gateway, &format!("/v1/responses/{id}/input_items")).await;
    assert_eq!(items["data"][0]["type"], "function_call_output");
    let (status, deleted) = admin_delete(&gateway, &format!("/v1/responses/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(
        deleted,
        json!({"id": id, "object": "response.deleted", "deleted": true})
    );
    let (status, _) = admin_get(&gateway, &format!("/v1/responses/{id}")).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_response_deleted_the_moment_it_is_made_stays_deleted() {
    // Each delete races the response's own write to the database; the write must not bring
    // the response back.
    let openai = MockOpenAi::start().await;
    let anthropic = MockAnthropic::start().await;
    let gateway = gateway_for(&openai, &anthropic).await;
    let made_and_deleted = (0..40).map(|turn| {
        let gateway = &gateway;
        async move {
            let (status, response) = create(
                gateway,
                json!({"model": "gpt", "input": format!("turn {turn}")}),
            )
            .await;
            assert_eq!(status, 200, "{response}");
            let id = response["id"].as_str().unwrap().to_owned();
            let (status, _) = admin_delete(gateway, &format!("/v1/responses/{id}")).await;
            assert_eq!(status, 200);
            id
        }
    });
    let ids = futures_util::future::join_all(made_and_deleted).await;
    let gateway = &gateway;
    let looked_up = ids.iter().map(|id| async move {
        let (status, _) = admin_get(gateway, &format!("/v1/responses/{id}")).await;
        assert_eq!(status, 404, "{id} came back after its delete");
    });
    futures_util::future::join_all(looked_up).await;
}

#[tokio::test]
async fn unstored_responses_cannot_be_continued_or_fetched() {
    let openai = MockOpenAi::start().await;
    let anthropic = MockAnthropic::start().await;
    let gateway = gateway_for(&openai, &anthropic).await;
    let (status, response) = create(
        &gateway,
        json!({"model": "gpt", "input": "ephemeral", "store": false}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(response["store"], false);
    let id = response["id"].as_str().unwrap();
    let (status, _) = admin_get(&gateway, &format!("/v1/responses/{id}")).await;
    assert_eq!(status, 404);

    let (status, error) = create(
        &gateway,
        json!({"model": "gpt", "input": "next", "previous_response_id": id}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(error["error"]["code"], "previous_response_not_found");
    assert_eq!(error["error"]["param"], "previous_response_id");
}

#[tokio::test]
async fn claude_thinking_survives_a_stateless_tool_turn() {
    let openai = MockOpenAi::start().await;
    let anthropic = MockAnthropic::start().await;
    let gateway = gateway_for(&openai, &anthropic).await;
    // Codex's way: store false, and the whole output sent back with the tool result.
    let tools = weather_tool();
    let (status, first) = create(
        &gateway,
        json!({"model": "claude", "store": false, "reasoning": {"effort": "low"}, "tools": tools,
               "include": ["reasoning.encrypted_content"], "input": "Paris"}),
    )
    .await;
    assert_eq!(status, 200, "{first}");
    let output = first["output"].as_array().unwrap();
    assert_eq!(output[0]["type"], "reasoning");
    assert_eq!(output[1]["type"], "function_call");
    let mut input = vec![json!({"role": "user", "content": "Paris"})];
    input.extend(output.iter().cloned());
    input.push(
        json!({"type": "function_call_output", "call_id": output[1]["call_id"], "output": "sunny"}),
    );
    let (status, second) = create(
        &gateway,
        json!({"model": "claude", "store": false, "reasoning": {"effort": "low"}, "tools": tools, "input": input}),
    )
    .await;
    assert_eq!(status, 200, "{second}");
    let assistant = &anthropic.last_request().body["messages"][1];
    assert_eq!(assistant["role"], "assistant");
    assert_eq!(
        assistant["content"][0],
        json!({"type": "thinking", "thinking": THINKING, "signature": SIGNATURE})
    );
    assert_eq!(assistant["content"][1]["type"], "tool_use");
}

#[tokio::test]
async fn custom_tools_become_functions_and_come_back_as_custom_calls() {
    let openai = MockOpenAi::start().await;
    let anthropic = MockAnthropic::start().await;
    let gateway = gateway_for(&openai, &anthropic).await;
    let (status, response) = create(
        &gateway,
        json!({"model": "gpt", "input": "patch it", "tools": [
            {"type": "custom", "name": "apply_patch", "description": "Apply a patch.",
             "format": {"type": "grammar", "syntax": "lark", "definition": "start: /.+/"}}]}),
    )
    .await;
    assert_eq!(status, 200, "{response}");
    let upstream = openai.last_request();
    let tools = upstream.body["tools"].as_array().unwrap();
    assert_eq!(tools.len(), 1);
    assert_eq!(tools[0]["function"]["name"], "apply_patch");
    assert_eq!(
        tools[0]["function"]["parameters"]["required"],
        json!(["input"])
    );
    let call = &response["output"][0];
    assert_eq!(call["type"], "custom_tool_call");
    assert_eq!(call["name"], "apply_patch");
    assert!(call["input"].is_string());
}

#[tokio::test]
async fn hosted_tools_are_refused_on_the_bridge_unless_dropped() {
    let openai = MockOpenAi::start().await;
    let anthropic = MockAnthropic::start().await;
    let gateway = gateway_for(&openai, &anthropic).await;
    let hosted = [
        json!({"type": "web_search"}),
        json!({"type": "file_search", "vector_store_ids": ["vs_1"]}),
        json!({"type": "code_interpreter", "container": {"type": "auto"}}),
        json!({"type": "computer_use_preview", "display_width": 1024, "display_height": 768, "environment": "browser"}),
        json!({"type": "local_shell"}),
    ];
    let with_tool = |model: &str, tool: &Value| {
        let mut tools = weather_tool();
        tools.as_array_mut().unwrap().push(tool.clone());
        json!({"model": model, "input": "Weather in Paris?", "tools": tools})
    };
    for tool in &hosted {
        let kind = tool["type"].as_str().unwrap();
        for (model, provider) in [("gpt", "hosted_vllm"), ("claude", "anthropic")] {
            let (status, reply) = create(&gateway, with_tool(model, tool)).await;
            assert_unsupported_parameter(
                status,
                &reply,
                "tools",
                &[&format!("`{kind}`"), provider],
            );
        }
    }
    assert!(openai.requests().is_empty());
    assert!(anthropic.requests().is_empty());

    // With `drop_params`, the hosted tools are left out and the function goes through.
    let lenient = TestGateway::start(&config_with_models(&format!(
        "{}      drop_params: true\n",
        openai_model("gpt", "gpt-4o-mini", &openai.base_url())
            .replace("model: openai/", "model: hosted_vllm/")
    )))
    .await;
    let mut tools = weather_tool();
    tools.as_array_mut().unwrap().extend(hosted.iter().cloned());
    let (status, response) = create(
        &lenient,
        json!({"model": "gpt", "input": "Weather in Paris?", "tools": tools}),
    )
    .await;
    assert_eq!(status, 200, "{response}");
    let upstream = openai.last_request();
    assert!(upstream.path.ends_with("/v1/chat/completions"));
    let sent = upstream.body["tools"].as_array().unwrap();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0]["type"], "function");
    assert_eq!(sent[0]["function"]["name"], "get_weather");
}

// Native: OpenAI has the Responses API, so requests are relayed and the response stays there.

/// An `openai/` deployment at a local address, marked as having the Responses API (only
/// api.openai.com is assumed to have it).
async fn native_gateway(openai: &MockProvider) -> TestGateway {
    let model =
        openai_model("gpt", "gpt-4o-mini", &openai.base_url()) + "      responses_api: true\n";
    TestGateway::start(&config_with_models(&model)).await
}

#[tokio::test]
async fn openai_compatible_servers_are_bridged_unless_marked() {
    let openai = MockOpenAi::start().await;
    let gateway = TestGateway::start(&config_with_models(&openai_model(
        "gpt",
        "gpt-4o-mini",
        &openai.base_url(),
    )))
    .await;
    let (status, response) = create(&gateway, json!({"model": "gpt", "input": "bridged"})).await;
    assert_eq!(status, 200, "{response}");
    assert!(openai.last_request().path.ends_with("/v1/chat/completions"));
    assert!(response["id"].as_str().unwrap().starts_with("resp_"));
    assert_eq!(response["output"][0]["content"][0]["text"], "bridged");
}

#[tokio::test]
async fn a_bridged_conversation_stays_bridged_on_a_native_deployment() {
    let openai = MockOpenAi::start().await;
    let models = format!(
        "{}{}      responses_api: true\n",
        openai_model("chat-only", "gpt-4o-mini", &openai.base_url()),
        openai_model("native", "gpt-4o", &openai.base_url()),
    );
    let gateway = TestGateway::start(&config_with_models(&models)).await;
    let (status, first) = create(
        &gateway,
        json!({"model": "chat-only", "input": "first turn"}),
    )
    .await;
    assert_eq!(status, 200, "{first}");
    // The client switches model mid-conversation: the provider never saw the first turn.
    let (status, second) = create(
        &gateway,
        json!({"model": "native", "input": "second turn", "previous_response_id": first["id"]}),
    )
    .await;
    assert_eq!(status, 200, "{second}");
    let upstream = openai.last_request();
    assert!(
        upstream.path.ends_with("/v1/chat/completions"),
        "{}",
        upstream.path
    );
    assert_eq!(upstream.body["model"], "gpt-4o");
    assert_eq!(
        upstream.body["messages"][0]["content"][0]["text"],
        "first turn"
    );
    assert_eq!(
        upstream.body["messages"][1],
        json!({"role": "assistant", "content": "first turn"})
    );
}

#[tokio::test]
async fn openai_deployments_answer_responses_natively() {
    let openai = MockOpenAi::start().await;
    let gateway = native_gateway(&openai).await;
    let (status, first) = create(
        &gateway,
        json!({"model": "gpt", "input": "hello native", "reasoning": {"effort": "low"}, "unknown_field": 1}),
    )
    .await;
    assert_eq!(status, 200, "{first}");
    let id = first["id"].as_str().unwrap().to_owned();
    assert!(
        id.starts_with("resp_mock_"),
        "the provider's id is kept: {id}"
    );
    assert_eq!(first["output"][0]["content"][0]["text"], "hello native");
    assert_eq!(first["usage"]["total_tokens"], 4);
    let upstream = openai.last_request();
    assert!(
        upstream.path.ends_with("/v1/responses"),
        "{}",
        upstream.path
    );
    assert_eq!(
        upstream.headers["authorization"],
        "Bearer sk-provider-secret-key"
    );
    // Only the model changes; everything else reaches the provider as sent.
    assert_eq!(
        upstream.body,
        json!({"model": "gpt-4o-mini", "input": "hello native", "reasoning": {"effort": "low"}, "unknown_field": 1})
    );

    // The follow-up goes to the deployment that holds the first response.
    let (status, second) = create(
        &gateway,
        json!({"model": "gpt", "input": "and again", "previous_response_id": id}),
    )
    .await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(second["previous_response_id"], id.as_str());
    assert_eq!(
        openai.last_request().body["previous_response_id"],
        id.as_str()
    );

    // Retrieve, list input items and delete are relayed to the provider.
    let (status, fetched) = admin_get(&gateway, &format!("/v1/responses/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(fetched["id"], id.as_str());
    assert!(
        openai
            .last_request()
            .path
            .ends_with(&format!("/v1/responses/{id}"))
    );
    let (_, items) = admin_get(&gateway, &format!("/v1/responses/{id}/input_items")).await;
    assert_eq!(items["data"][0]["content"][0]["text"], "hello native");
    let (status, deleted) = admin_delete(&gateway, &format!("/v1/responses/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(deleted["deleted"], true);
    assert_eq!(openai.last_request().method, "DELETE");
    let (status, gone) = admin_get(&gateway, &format!("/v1/responses/{id}")).await;
    assert_eq!(status, 404);
    assert_eq!(gone["error"]["type"], "invalid_request_error");
}

#[tokio::test]
async fn native_streams_are_relayed_and_remembered() {
    let openai = MockOpenAi::start().await;
    let gateway = native_gateway(&openai).await;
    let response = gateway
        .post("/v1/responses")
        .json(&json!({"model": "gpt", "input": "streamed natively", "stream": true}))
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
    let events = events(response).await;
    let names: Vec<&str> = events.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names.first(), Some(&"response.created"));
    assert_eq!(names.last(), Some(&"response.completed"));
    let text: String = events
        .iter()
        .filter(|(name, _)| name == "response.output_text.delta")
        .map(|(_, data)| data["delta"].as_str().unwrap())
        .collect();
    assert_eq!(text, "streamed natively");
    let id = events.last().unwrap().1["response"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _) = admin_get(&gateway, &format!("/v1/responses/{id}")).await;
    assert_eq!(status, 200, "a streamed response is remembered too");
}

#[tokio::test]
async fn store_false_responses_cannot_be_retrieved() {
    let openai = MockOpenAi::start().await;
    let anthropic = MockAnthropic::start().await;
    let gateway = gateway_for(&openai, &anthropic).await;
    let native = native_gateway(&openai).await;
    for gateway in [&gateway, &native] {
        let (status, response) = create(
            gateway,
            json!({"model": "gpt", "input": "forget me", "store": false}),
        )
        .await;
        assert_eq!(status, 200, "{response}");
        assert_eq!(response["store"], false);
        let id = response["id"].as_str().unwrap();
        let (status, _) = admin_get(gateway, &format!("/v1/responses/{id}")).await;
        assert_eq!(status, 404);
        let (status, error) = create(
            gateway,
            json!({"model": "gpt", "input": "more", "previous_response_id": id}),
        )
        .await;
        assert_eq!(status, 400, "{error}");
        assert_eq!(error["error"]["code"], "previous_response_not_found");
    }
}

#[tokio::test]
async fn input_items_are_listed_in_pages() {
    let openai = MockOpenAi::start().await;
    let anthropic = MockAnthropic::start().await;
    let gateway = gateway_for(&openai, &anthropic).await;
    let input: Vec<Value> = ["one", "two", "three"]
        .iter()
        .map(|text| json!({"type": "message", "role": "user", "content": text}))
        .collect();
    let (status, response) = create(&gateway, json!({"model": "gpt", "input": input})).await;
    assert_eq!(status, 200, "{response}");
    let id = response["id"].as_str().unwrap();
    let list = |query: &str| {
        let path = format!("/v1/responses/{id}/input_items{query}");
        let gateway = &gateway;
        async move { admin_get(gateway, &path).await }
    };
    let texts = |page: &Value| -> Vec<String> {
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|item| item["content"].as_str().unwrap().to_owned())
            .collect()
    };
    let (_, newest_first) = list("").await;
    assert_eq!(texts(&newest_first), ["three", "two", "one"]);
    let (_, first_page) = list("?order=asc&limit=2").await;
    assert_eq!(texts(&first_page), ["one", "two"]);
    assert_eq!(first_page["has_more"], true);
    let after = first_page["last_id"].as_str().unwrap();
    let (_, second_page) = list(&format!("?order=asc&limit=2&after={after}")).await;
    assert_eq!(texts(&second_page), ["three"]);
    assert_eq!(second_page["has_more"], false);
    let (status, error) = list("?limit=500").await;
    assert_eq!(status, 400);
    assert_eq!(error["error"]["param"], "limit");
}

// Kept in the store: every replica reads them, and they outlive a restart.

fn bridged_models(openai: &MockProvider) -> String {
    config_with_models(
        &openai_model("gpt", "gpt-4o-mini", &openai.base_url()).replace(
            "model: openai/gpt-4o-mini",
            "model: hosted_vllm/gpt-4o-mini",
        ),
    ) + "tollgate_settings:\n  store_sync_interval: 50ms\n"
}

#[tokio::test]
async fn a_conversation_continues_on_another_replica_and_after_a_restart() {
    let openai = MockOpenAi::start().await;
    let yaml = bridged_models(&openai);
    let store = test_store().await;
    let a = TestGateway::start_on(&yaml, store.clone()).await;
    let b = TestGateway::start_on(&yaml, store.clone()).await;

    // Streamed on A (kept as the stream ends), continued at once on B.
    let streamed = a
        .post("/v1/responses")
        .json(&json!({"model": "gpt", "input": "first turn", "stream": true}))
        .send()
        .await
        .unwrap();
    let events = events(streamed).await;
    let (_, completed) = events.last().unwrap();
    let first = completed["response"]["id"].as_str().unwrap().to_owned();
    let (status, second) = create(
        &b,
        json!({"model": "gpt", "input": "second turn", "previous_response_id": first}),
    )
    .await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(
        openai.last_request().body["messages"],
        json!([
            {"role": "user", "content": [{"type": "text", "text": "first turn"}]},
            {"role": "assistant", "content": "first turn"},
            {"role": "user", "content": "second turn"}
        ]),
        "B rebuilt the conversation A answered"
    );

    // A gateway started afresh on the same store retrieves both and goes on.
    let second_id = second["id"].as_str().unwrap().to_owned();
    let mut restarted = TestGateway::start_on(&yaml, store.clone()).await;
    let fetched = ok(admin_get(&restarted, &format!("/v1/responses/{second_id}")).await);
    assert_eq!(fetched, second);
    let (status, third) = create(
        &restarted,
        json!({"model": "gpt", "input": "third turn", "previous_response_id": second_id}),
    )
    .await;
    assert_eq!(status, 200, "{third}");
    assert_eq!(
        openai.last_request().body["messages"]
            .as_array()
            .unwrap()
            .len(),
        5
    );
    restarted.shutdown().await.unwrap().unwrap();

    // Deleted through B: A, which has it in memory, no longer finds it either.
    let path = format!("/v1/responses/{first}");
    assert_eq!(admin_get(&a, &path).await.0, 200);
    assert_eq!(admin_delete(&b, &path).await.0, 200);
    assert_eq!(admin_get(&a, &path).await.0, 404);
    let (status, error) = create(
        &a,
        json!({"model": "gpt", "input": "more", "previous_response_id": second_id}),
    )
    .await;
    assert_eq!(status, 400, "its conversation is cut: {error}");
    assert_eq!(error["error"]["code"], "previous_response_not_found");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains(first.as_str()),
        "{error}"
    );
}

#[tokio::test]
async fn a_teams_responses_are_not_found_by_other_teams() {
    let openai = MockOpenAi::start().await;
    let gateway = TestGateway::start(&bridged_models(&openai)).await;
    for team in ["red", "blue"] {
        ok(admin_post(&gateway, "/team/new", json!({"team_id": team})).await);
    }
    let key = |team: &'static str| {
        let gateway = &gateway;
        async move {
            ok(admin_post(gateway, "/key/generate", json!({"team_id": team})).await)["key"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let (red, red_too, blue) = (key("red").await, key("red").await, key("blue").await);
    let (status, made) = post_as(
        &gateway,
        &red,
        "/v1/responses",
        json!({"model": "gpt", "input": "team red's secret"}),
    )
    .await;
    assert_eq!(status, 200, "{made}");
    let id = made["id"].as_str().unwrap();
    let path = format!("/v1/responses/{id}");
    // Another key of the same team reads it, as keys of one OpenAI project do.
    assert_eq!(get_as(&gateway, &red_too, &path).await.0, 200);
    // Another team is told it does not exist, whatever it tries.
    assert_eq!(get_as(&gateway, &blue, &path).await.0, 404);
    let deleted = gateway
        .client
        .delete(format!("{}{path}", gateway.url))
        .bearer_auth(&blue)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 404);
    let (status, error) = post_as(
        &gateway,
        &blue,
        "/v1/responses",
        json!({"model": "gpt", "input": "go on", "previous_response_id": id}),
    )
    .await;
    assert_eq!(status, 400, "{error}");
    assert_eq!(error["error"]["code"], "previous_response_not_found");
    // The master key reads every response.
    assert_eq!(admin_get(&gateway, &path).await.0, 200);
}
