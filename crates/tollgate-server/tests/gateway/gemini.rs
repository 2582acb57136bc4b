//! Gemini API: OpenAI and Anthropic clients served by Gemini models, translated both ways,
//! streaming, tools (with Gemini 3's ids and thought signatures), thinking, structured output
//! and Google's errors.

use serde_json::{Value, json};
use tollgate_testkit::gemini::{API_KEY, SIGNATURE, THOUGHT, THOUGHT_TOKENS};
use tollgate_testkit::{MockGemini, MockProvider};

use crate::harness::*;

fn gemini(name: &str, model: &str, mock: &MockProvider, key: &str, extra: &str) -> String {
    format!(
        "  - model_name: {name}\n    litellm_params:\n      model: gemini/{model}\n      api_base: {}/v1beta\n      api_key: {key}\n{extra}",
        mock.root_url()
    )
}

async fn gateway_for(mock: &MockProvider) -> TestGateway {
    let models = [
        gemini("flash", "gemini-2.5-flash", mock, API_KEY, ""),
        gemini("g3", "gemini-3-pro-preview", mock, API_KEY, ""),
        gemini("broken-key", "gemini-2.5-flash", mock, "AIza-wrong-key", ""),
        gemini(
            "lenient",
            "gemini-2.5-flash",
            mock,
            API_KEY,
            "      drop_params: true\n",
        ),
        gemini("error-400", "error-400", mock, API_KEY, ""),
        gemini("error-429", "error-429", mock, API_KEY, ""),
        gemini("blocked", "blocked", mock, API_KEY, ""),
        gemini("stream-error", "stream-error", mock, API_KEY, ""),
    ];
    TestGateway::start(&config_with_models(&models.concat())).await
}

fn weather_tool() -> Value {
    json!([{"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
        "parameters": {"type": "object", "additionalProperties": false,
                       "properties": {"city": {"type": "string"}, "unit": {"type": ["string", "null"], "enum": ["c", "f", null]}},
                       "required": ["city"]}}}])
}

#[tokio::test]
async fn an_openai_chat_becomes_a_gemini_request_and_back() {
    let mock = MockGemini::start().await;
    let gateway = gateway_for(&mock).await;
    let (status, reply) = chat(
        &gateway,
        json!({"model": "flash", "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "hello from openai"}
        ], "temperature": 0.3, "max_tokens": 50, "stop": "END", "seed": 4}),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["object"], "chat.completion");
    assert_eq!(reply["id"], "mock-response-1");
    assert_eq!(reply["model"], "gemini-2.5-flash");
    assert_eq!(
        reply["choices"][0]["message"]["content"],
        "hello from openai"
    );
    assert_eq!(reply["choices"][0]["finish_reason"], "stop");
    // Prompt: "You are terse." + "hello from openai" = 6 words; answer 3.
    assert_eq!(reply["usage"]["prompt_tokens"], 6);
    assert_eq!(reply["usage"]["completion_tokens"], 3);
    assert_eq!(reply["usage"]["total_tokens"], 9);

    let upstream = mock.last_request();
    assert_eq!(
        upstream.path,
        "/v1beta/models/gemini-2.5-flash:generateContent"
    );
    assert_eq!(upstream.headers["x-goog-api-key"], API_KEY);
    assert!(upstream.headers.get("authorization").is_none());
    assert_eq!(
        upstream.body,
        json!({"contents": [{"role": "user", "parts": [{"text": "hello from openai"}]}],
               "systemInstruction": {"parts": [{"text": "You are terse."}]},
               "generationConfig": {"temperature": 0.3, "maxOutputTokens": 50, "stopSequences": ["END"], "seed": 4}})
    );
}

#[tokio::test]
async fn a_gemini_stream_reaches_an_openai_client_as_chunks() {
    let mock = MockGemini::start().await;
    let gateway = gateway_for(&mock).await;
    let response = gateway
        .post("/v1/chat/completions")
        .json(
            &json!({"model": "flash", "stream": true, "stream_options": {"include_usage": true},
                      "messages": [{"role": "user", "content": "four words streamed here"}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/event-stream; charset=utf-8"
    );
    let events = read_events(response).await;
    assert_eq!(streamed_content(&events), "four words streamed here");
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    let chunks = chunks(&events);
    assert!(
        chunks
            .iter()
            .all(|c| c["object"] == "chat.completion.chunk" && c["id"] == "mock-response-1")
    );
    let finishes: Vec<&Value> = chunks
        .iter()
        .filter(|c| c["choices"][0]["finish_reason"].is_string())
        .collect();
    assert_eq!(finishes.len(), 1);
    assert_eq!(finishes[0]["choices"][0]["finish_reason"], "stop");
    let usage = &chunks.last().unwrap()["usage"];
    assert_eq!(usage["prompt_tokens"], 4);
    assert_eq!(usage["completion_tokens"], 4);

    assert_eq!(
        mock.last_request().path,
        "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    );
}

#[tokio::test]
async fn gemini_3_tool_calls_round_trip_with_their_ids_and_signatures() {
    let mock = MockGemini::start().await;
    let gateway = gateway_for(&mock).await;
    let question = json!({"role": "user", "content": "Paris"});
    let (status, reply) = chat(
        &gateway,
        json!({"model": "g3", "tools": weather_tool(), "messages": [question]}),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["choices"][0]["finish_reason"], "tool_calls");
    let call = &reply["choices"][0]["message"]["tool_calls"][0];
    let call_id = call["id"].as_str().unwrap().to_owned();
    assert_eq!(call_id, format!("fc-mock-1__thought__{SIGNATURE}"));
    assert_eq!(call["function"]["name"], "get_weather");
    assert_eq!(
        serde_json::from_str::<Value>(call["function"]["arguments"].as_str().unwrap()).unwrap(),
        json!({"echo": "Paris"})
    );
    // The schema reached Gemini in its own dialect.
    let declared = &mock.last_request().body["tools"][0]["functionDeclarations"][0];
    assert_eq!(
        declared["parameters"],
        json!({"type": "OBJECT", "required": ["city"], "properties": {
            "city": {"type": "STRING"}, "unit": {"type": "STRING", "nullable": true, "enum": ["c", "f"]}}})
    );

    // The client sends the call back with its result, as an OpenAI client does.
    let (status, reply) = chat(
        &gateway,
        json!({"model": "g3", "tools": weather_tool(), "messages": [
            question,
            reply["choices"][0]["message"],
            {"role": "tool", "tool_call_id": call_id, "content": "{\"temp\": 21}"}
        ]}),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["choices"][0]["message"]["content"], "done");
    let contents = &mock.last_request().body["contents"];
    assert_eq!(
        contents[1],
        json!({"role": "model", "parts": [{"thoughtSignature": SIGNATURE,
               "functionCall": {"id": "fc-mock-1", "name": "get_weather", "args": {"echo": "Paris"}}}]})
    );
    assert_eq!(
        contents[2],
        json!({"role": "user", "parts": [{"functionResponse": {"id": "fc-mock-1", "name": "get_weather", "response": {"temp": 21}}}]})
    );
}

#[tokio::test]
async fn a_call_from_another_model_passes_gemini_3s_signature_check() {
    let mock = MockGemini::start().await;
    let gateway = gateway_for(&mock).await;
    // A history whose call was made elsewhere (after a fallback, say): no signature.
    let (status, reply) = chat(
        &gateway,
        json!({"model": "g3", "tools": weather_tool(), "messages": [
            {"role": "user", "content": "Paris"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "call_abc", "type": "function",
                "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
            {"role": "tool", "tool_call_id": "call_abc", "content": "sunny"}
        ]}),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["choices"][0]["message"]["content"], "done");
    let model_turn = &mock.last_request().body["contents"][1]["parts"][0];
    assert!(model_turn["thoughtSignature"].is_string());
    // The tool result is wrapped into an object, as Gemini requires.
    assert_eq!(
        mock.last_request().body["contents"][2]["parts"][0]["functionResponse"]["response"],
        json!({"content": "sunny"})
    );
}

#[tokio::test]
async fn streamed_tool_calls_get_ids_and_finish_as_tool_calls() {
    let mock = MockGemini::start().await;
    let gateway = gateway_for(&mock).await;
    let response = gateway
        .post("/v1/chat/completions")
        .json(&json!({"model": "flash", "stream": true, "tools": weather_tool(),
                      "tool_choice": "required", "messages": [{"role": "user", "content": "Oslo"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let chunks = chunks(&read_events(response).await);
    let call = chunks
        .iter()
        .find_map(|c| c["choices"][0]["delta"]["tool_calls"][0]["id"].as_str())
        .unwrap();
    assert!(call.starts_with("call_") && call.len() == 29, "{call}");
    let arguments: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"].as_str())
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&arguments).unwrap(),
        json!({"echo": "Oslo"})
    );
    let finish = chunks
        .iter()
        .find_map(|c| c["choices"][0]["finish_reason"].as_str())
        .unwrap();
    assert_eq!(finish, "tool_calls");
    assert_eq!(
        mock.last_request().body["toolConfig"],
        json!({"functionCallingConfig": {"mode": "ANY"}})
    );
}

#[tokio::test]
async fn reasoning_effort_turns_on_thinking_and_thoughts_come_back_as_reasoning() {
    let mock = MockGemini::start().await;
    let gateway = gateway_for(&mock).await;
    let (status, reply) = chat(
        &gateway,
        json!({"model": "flash", "reasoning_effort": "low", "messages": [{"role": "user", "content": "think"}]}),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(
        mock.last_request().body["generationConfig"]["thinkingConfig"],
        json!({"includeThoughts": true, "thinkingBudget": 1024})
    );
    let message = &reply["choices"][0]["message"];
    assert_eq!(message["content"], "think");
    assert_eq!(message["reasoning_content"], THOUGHT);
    assert_eq!(reply["usage"]["completion_tokens"], 1 + THOUGHT_TOKENS);
    assert_eq!(
        reply["usage"]["completion_tokens_details"]["reasoning_tokens"],
        THOUGHT_TOKENS
    );

    let (status, _) = chat(
        &gateway,
        json!({"model": "g3", "reasoning_effort": "low", "messages": [{"role": "user", "content": "think"}]}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        mock.last_request().body["generationConfig"]["thinkingConfig"],
        json!({"includeThoughts": true, "thinkingLevel": "low"})
    );
}

#[tokio::test]
async fn json_schema_response_formats_become_a_gemini_response_schema() {
    let mock = MockGemini::start().await;
    let gateway = gateway_for(&mock).await;
    let (status, reply) = chat(
        &gateway,
        json!({"model": "flash", "messages": [{"role": "user", "content": "structured"}],
               "response_format": {"type": "json_schema", "json_schema": {"name": "person", "strict": true, "schema": {
                   "type": "object", "additionalProperties": false, "$defs": {"Year": {"type": "integer"}},
                   "properties": {"name": {"type": "string"}, "born": {"$ref": "#/$defs/Year"}},
                   "required": ["name", "born"]}}}}),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(
        mock.last_request().body["generationConfig"],
        json!({"responseMimeType": "application/json", "responseSchema": {
            "type": "OBJECT", "required": ["name", "born"], "propertyOrdering": ["name", "born"],
            "properties": {"name": {"type": "STRING"}, "born": {"type": "INTEGER"}}}})
    );
}

#[tokio::test]
async fn parameters_gemini_cannot_take_are_refused_or_dropped() {
    let mock = MockGemini::start().await;
    let gateway = gateway_for(&mock).await;
    let (status, reply) = chat(
        &gateway,
        json!({"model": "flash", "logprobs": true, "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(reply["error"]["param"], "logprobs");
    assert_eq!(reply["error"]["code"], "unsupported_parameter");
    assert!(mock.requests().is_empty());

    let (status, reply) = chat(
        &gateway,
        json!({"model": "lenient", "logprobs": true, "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    assert!(mock.last_request().body["generationConfig"].is_null());
}

#[tokio::test]
async fn parallel_tool_calls_false_is_refused_unless_dropped() {
    let mock = MockGemini::start().await;
    let gateway = gateway_for(&mock).await;
    let ask = |model: &str, parallel: bool| {
        json!({"model": model, "tools": weather_tool(), "parallel_tool_calls": parallel,
               "messages": [{"role": "user", "content": "Paris"}]})
    };

    // Gemini has no setting that keeps the model to one call per turn.
    let (status, reply) = chat(&gateway, ask("flash", false)).await;
    assert_unsupported_parameter(
        status,
        &reply,
        "parallel_tool_calls",
        &["`parallel_tool_calls: false`", "gemini"],
    );
    assert!(mock.requests().is_empty());

    // `true` asks for what Gemini does anyway.
    let (status, reply) = chat(&gateway, ask("flash", true)).await;
    assert_eq!(status, 200, "{reply}");
    let allowed = mock.last_request().body;
    assert_eq!(
        allowed["tools"][0]["functionDeclarations"][0]["name"],
        "get_weather"
    );

    // Dropped: Gemini receives exactly what it receives for `true`.
    let (status, reply) = chat(&gateway, ask("lenient", false)).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(mock.last_request().body, allowed);

    // No tools to call, so no parallel calls to refuse.
    let (status, reply) = chat(
        &gateway,
        json!({"model": "flash", "parallel_tool_calls": false,
               "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
}

#[tokio::test]
async fn claude_codes_disable_parallel_tool_use_is_dropped_for_gemini() {
    let mock = MockGemini::start().await;
    let gateway = gateway_for(&mock).await;
    // As Claude Code sends it, to a deployment without `drop_params`.
    claude_code_turn_without_parallel_tools(&gateway, "flash", "auto").await;
    let upstream = mock.last_request().body;
    assert_eq!(
        upstream["tools"][0]["functionDeclarations"][0]["name"],
        "get_weather"
    );
    assert_eq!(
        upstream["toolConfig"]["functionCallingConfig"]["mode"],
        "AUTO"
    );
}

#[tokio::test]
async fn google_errors_keep_their_meaning() {
    let mock = MockGemini::start().await;
    let gateway = gateway_for(&mock).await;
    let hi = |model: &str| json!({"model": model, "messages": [{"role": "user", "content": "hi"}]});

    let (status, reply) = chat(&gateway, hi("error-400")).await;
    assert_eq!(status, 400);
    assert_eq!(reply["error"]["code"], "context_length_exceeded");
    assert!(
        reply["error"]["message"]
            .as_str()
            .unwrap()
            .contains("exceeds the maximum number of tokens")
    );

    let (status, reply) = chat(&gateway, hi("error-429")).await;
    assert_eq!(status, 429);
    assert_eq!(reply["error"]["type"], "rate_limit_error");

    // Google answers a bad key with a 400; it is the gateway's credential, not the client's.
    let (status, reply) = chat(&gateway, hi("broken-key")).await;
    assert_eq!(status, 401, "{reply}");
    let message = reply["error"]["message"].as_str().unwrap();
    assert!(message.contains("gateway's credentials"), "{message}");
    assert!(!reply.to_string().contains("AIza-wrong-key"));

    let (status, reply) = chat(&gateway, hi("blocked")).await;
    assert_eq!(status, 200);
    assert_eq!(reply["choices"][0]["finish_reason"], "content_filter");
    assert!(reply["choices"][0]["message"]["content"].is_null());
}

#[tokio::test]
async fn an_error_inside_a_gemini_stream_ends_the_client_stream_with_an_error_event() {
    let mock = MockGemini::start().await;
    let gateway = gateway_for(&mock).await;
    let response = gateway
        .post("/v1/chat/completions")
        .json(&json!({"model": "stream-error", "stream": true, "messages": [{"role": "user", "content": "partial answer here"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let events = read_events(response).await;
    assert_eq!(streamed_content(&events), "partial");
    let last: Value = serde_json::from_str(events.last().unwrap()).unwrap();
    assert_eq!(last["error"]["message"], "The model is overloaded.");
    assert_eq!(last["error"]["code"], "unavailable");
}

#[tokio::test]
async fn an_anthropic_client_is_served_by_gemini() {
    let mock = MockGemini::start().await;
    let gateway = gateway_for(&mock).await;
    let response = gateway
        .post("/v1/messages")
        .json(
            &json!({"model": "flash", "max_tokens": 100, "system": "Be brief.",
                      "messages": [{"role": "user", "content": "hello from claude code"}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let reply: Value = response.json().await.unwrap();
    assert_eq!(reply["type"], "message");
    assert_eq!(reply["model"], "flash");
    assert_eq!(
        reply["content"][0],
        json!({"type": "text", "text": "hello from claude code"})
    );
    assert_eq!(reply["stop_reason"], "end_turn");
    assert_eq!(reply["usage"]["input_tokens"], 6);
    assert_eq!(
        mock.last_request().body["generationConfig"]["maxOutputTokens"],
        100
    );

    let response = gateway
        .post("/v1/messages")
        .json(&json!({"model": "flash", "max_tokens": 100, "stream": true,
                      "messages": [{"role": "user", "content": "streamed to claude"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    let events: Vec<Value> = text
        .lines()
        .filter_map(|line| line.strip_prefix("data: "))
        .map(|data| serde_json::from_str(data).unwrap())
        .collect();
    assert_eq!(events[0]["type"], "message_start");
    let streamed: String = events
        .iter()
        .filter_map(|e| e["delta"]["text"].as_str())
        .collect();
    assert_eq!(streamed, "streamed to claude");
    assert_eq!(events.last().unwrap()["type"], "message_stop");
}

#[tokio::test]
async fn web_search_tools_of_claude_code_and_codex_become_google_search() {
    let mock = MockGemini::start().await;
    let gateway = gateway_for(&mock).await;
    // Claude Code offers Anthropic's web search beside its own tools.
    let response = gateway
        .post("/v1/messages")
        .json(&json!({"model": "flash", "max_tokens": 100,
        "messages": [{"role": "user", "content": "today's news"}],
        "tools": [
            {"name": "get_weather", "input_schema": {"type": "object"}},
            {"type": "web_search_20250305", "name": "web_search", "max_uses": 5},
        ]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    let tools = mock.last_request().body["tools"].clone();
    assert_eq!(tools.as_array().unwrap().len(), 2, "{tools}");
    assert_eq!(tools[0]["functionDeclarations"][0]["name"], "get_weather");
    assert_eq!(tools[1], json!({"googleSearch": {}}));

    // Codex's hosted web search, through the Responses bridge.
    let response = gateway
        .post("/v1/responses")
        .json(&json!({"model": "flash", "input": "today's news",
                      "tools": [{"type": "web_search"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    assert_eq!(
        mock.last_request().body["tools"],
        json!([{"googleSearch": {}}])
    );
}

#[tokio::test]
async fn openai_embeddings_are_served_by_batch_embed_contents() {
    let mock = MockGemini::start().await;
    let models = gemini("embed", "gemini-embedding-001", &mock, API_KEY, "");
    let gateway = TestGateway::start(&config_with_models(&models)).await;
    let response = gateway
        .post("/v1/embeddings")
        .json(&json!({"model": "embed", "input": ["first text", "second longer text"], "dimensions": 4,
                      "task_type": "RETRIEVAL_DOCUMENT"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let reply: Value = response.json().await.unwrap();
    assert_eq!(reply["object"], "list");
    assert_eq!(reply["model"], "gemini-embedding-001");
    assert_eq!(reply["data"].as_array().unwrap().len(), 2);
    assert_eq!(reply["data"][1]["index"], 1);
    assert_eq!(reply["data"][0]["embedding"].as_array().unwrap().len(), 4);
    // No counts from Gemini: estimated at four characters a token (10 → 3, 18 → 5).
    assert_eq!(reply["usage"]["prompt_tokens"], 8);

    let upstream = mock.last_request();
    assert_eq!(
        upstream.path,
        "/v1beta/models/gemini-embedding-001:batchEmbedContents"
    );
    assert_eq!(
        upstream.body["requests"][0],
        json!({"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "first text"}]},
               "outputDimensionality": 4, "taskType": "RETRIEVAL_DOCUMENT"})
    );

    // OpenAI's SDKs ask for base64: little-endian f32s.
    let response = gateway
        .post("/v1/embeddings")
        .json(&json!({"model": "embed", "input": "one", "encoding_format": "base64", "dimensions": 3}))
        .send()
        .await
        .unwrap();
    let reply: Value = response.json().await.unwrap();
    let encoded = reply["data"][0]["embedding"].as_str().unwrap();
    assert_eq!(
        encoded.len(),
        16,
        "3 floats = 12 bytes = 16 base64 characters"
    );

    let response = gateway
        .post("/v1/embeddings")
        .json(&json!({"model": "embed", "input": [101, 102]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let reply: Value = response.json().await.unwrap();
    assert_eq!(reply["error"]["param"], "input");
}

#[tokio::test]
async fn anthropic_token_counts_use_gemini_count_tokens() {
    let mock = MockGemini::start().await;
    let gateway = gateway_for(&mock).await;
    let response = gateway
        .client
        .post(format!("{}/v1/messages/count_tokens", gateway.url))
        .header("x-api-key", MASTER_KEY)
        .json(&json!({"model": "flash", "system": "be brief",
                      "messages": [{"role": "user", "content": "count these four words"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // The mock counts words: the system prompt's two and the message's four.
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"input_tokens": 6})
    );
    let upstream = mock.last_request();
    assert_eq!(upstream.path, "/v1beta/models/gemini-2.5-flash:countTokens");
    let counted = &upstream.body["generateContentRequest"];
    assert_eq!(counted["model"], "models/gemini-2.5-flash");
    assert_eq!(
        counted["contents"][0]["parts"][0]["text"],
        "count these four words"
    );
    assert_eq!(counted["systemInstruction"]["parts"][0]["text"], "be brief");
}
