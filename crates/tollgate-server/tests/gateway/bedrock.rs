//! Amazon Bedrock: SigV4-signed (or API-key) requests, with keys from the config, a profile,
//! STS web identity, the container endpoint or instance metadata; OpenAI and Anthropic clients
//! served by the Converse API (streams in AWS event-stream frames), Claude natively through
//! InvokeModel, Titan and Cohere embeddings, and Bedrock's errors.

use std::collections::HashMap;
use std::time::Duration;

use futures_util::future::join_all;
use serde_json::{Value, json};
use tollgate_testkit::bedrock::{
    ACCESS_KEY_ID, API_KEY, CACHE_READ, CONTAINER_AUTHORIZATION, INSTANCE_ROLE, REASONING, REGION,
    ROLE_ARN, SECRET_ACCESS_KEY, SESSION_TOKEN, SIGNATURE, TEMPORARY_ACCESS_KEY_ID,
    WEB_IDENTITY_TOKEN,
};
use tollgate_testkit::{Fault, MockBedrock, MockProvider, RecordedRequest};

use crate::harness::*;

const CLAUDE: &str = "anthropic.claude-sonnet-4-5-20250929-v1:0";

fn bedrock(name: &str, model: &str, mock: &MockProvider, extra: &str) -> String {
    format!(
        "  - model_name: {name}\n    litellm_params:\n      model: bedrock/{model}\n      api_base: {}\n      aws_access_key_id: {ACCESS_KEY_ID}\n      aws_secret_access_key: {SECRET_ACCESS_KEY}\n      aws_region_name: {REGION}\n{extra}",
        mock.root_url()
    )
}

async fn gateway_for(mock: &MockProvider) -> TestGateway {
    let models = [
        bedrock("nova", "us.amazon.nova-pro-v1:0", mock, ""),
        bedrock("claude", CLAUDE, mock, ""),
        bedrock("claude-invoke", &format!("invoke/{CLAUDE}"), mock, ""),
        bedrock("error-400", "error-400", mock, ""),
        bedrock("error-429", "error-429", mock, ""),
        bedrock("stream-error", "stream-error", mock, ""),
        bedrock(
            "session",
            "us.amazon.nova-lite-v1:0",
            mock,
            &format!("      aws_session_token: {SESSION_TOKEN}\n"),
        ),
        format!(
            "  - model_name: keyed\n    litellm_params:\n      model: bedrock/us.amazon.nova-micro-v1:0\n      api_base: {}\n      api_key: {API_KEY}\n      aws_region_name: {REGION}\n",
            mock.root_url()
        ),
        format!(
            "  - model_name: profile\n    litellm_params:\n      model: bedrock/arn:aws:bedrock:{REGION}:123456789012:application-inference-profile/abc123\n      api_base: {}\n      aws_access_key_id: {ACCESS_KEY_ID}\n      aws_secret_access_key: {SECRET_ACCESS_KEY}\n",
            mock.root_url()
        ),
        bedrock("titan", "amazon.titan-embed-text-v2:0", mock, ""),
        bedrock("cohere", "cohere.embed-english-v3", mock, ""),
    ];
    TestGateway::start(&config_with_models(&models.concat())).await
}

fn weather_tool() -> Value {
    json!([{"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}])
}

#[tokio::test]
async fn an_openai_chat_becomes_a_signed_converse_call_and_back() {
    let mock = MockBedrock::start().await;
    let gateway = gateway_for(&mock).await;
    let (status, reply) = chat(
        &gateway,
        json!({"model": "nova", "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "hello from openai"}
        ], "temperature": 0.2, "max_tokens": 64, "stop": ["END"], "top_k": 5}),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(
        reply["choices"][0]["message"]["content"],
        "hello from openai"
    );
    assert_eq!(reply["choices"][0]["finish_reason"], "stop");
    assert_eq!(reply["model"], "us.amazon.nova-pro-v1:0");
    assert!(reply["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert_eq!(reply["usage"]["prompt_tokens"], 6);
    assert_eq!(reply["usage"]["completion_tokens"], 3);

    let upstream = mock.last_request();
    // The model id is one path segment; the mock recomputed the SigV4 signature.
    assert_eq!(upstream.path, "/model/us.amazon.nova-pro-v1%3A0/converse");
    let authorization = upstream.headers["authorization"].to_str().unwrap();
    assert!(authorization.starts_with(&format!("AWS4-HMAC-SHA256 Credential={ACCESS_KEY_ID}/")));
    assert!(authorization.contains(&format!("/{REGION}/bedrock/aws4_request")));
    assert!(upstream.headers.contains_key("x-amz-date"));
    assert_eq!(
        upstream.body,
        json!({"messages": [{"role": "user", "content": [{"text": "hello from openai"}]}],
               "system": [{"text": "You are terse."}],
               "inferenceConfig": {"maxTokens": 64, "temperature": 0.2, "stopSequences": ["END"]},
               "additionalModelRequestFields": {"top_k": 5}})
    );
}

#[tokio::test]
async fn a_converse_stream_reaches_an_openai_client_as_chunks() {
    let mock = MockBedrock::start().await;
    let gateway = gateway_for(&mock).await;
    let response = gateway
        .post("/v1/chat/completions")
        .json(
            &json!({"model": "nova", "stream": true, "stream_options": {"include_usage": true},
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
    let finish = chunks
        .iter()
        .find_map(|c| c["choices"][0]["finish_reason"].as_str())
        .unwrap();
    assert_eq!(finish, "stop");
    let usage = &chunks.last().unwrap()["usage"];
    assert_eq!(usage["prompt_tokens"], 4);
    assert_eq!(usage["completion_tokens"], 4);
    assert_eq!(
        mock.last_request().path,
        "/model/us.amazon.nova-pro-v1%3A0/converse-stream"
    );
}

#[tokio::test]
async fn tool_calls_round_trip_through_converse() {
    let mock = MockBedrock::start().await;
    let gateway = gateway_for(&mock).await;
    let question = json!({"role": "user", "content": "Paris"});
    let (status, reply) = chat(
        &gateway,
        json!({"model": "claude", "tools": weather_tool(), "messages": [question]}),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["choices"][0]["finish_reason"], "tool_calls");
    let call = &reply["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(call["id"], "tooluse_mock1");
    assert_eq!(call["function"]["name"], "get_weather");
    assert_eq!(
        mock.last_request().body["toolConfig"]["tools"][0],
        json!({"toolSpec": {"name": "get_weather", "description": "Weather in a city",
               "inputSchema": {"json": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}})
    );

    let (status, reply) = chat(
        &gateway,
        json!({"model": "claude", "tools": weather_tool(), "messages": [
            question, reply["choices"][0]["message"],
            {"role": "tool", "tool_call_id": "tooluse_mock1", "content": "21C"}
        ]}),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["choices"][0]["message"]["content"], "done");
    let messages = &mock.last_request().body["messages"];
    assert_eq!(
        messages[1]["content"][0],
        json!({"toolUse": {"toolUseId": "tooluse_mock1", "name": "get_weather", "input": {"echo": "Paris"}}})
    );
    assert_eq!(
        messages[2],
        json!({"role": "user", "content": [{"toolResult": {"toolUseId": "tooluse_mock1", "content": [{"text": "21C"}]}}]})
    );

    // Streamed, the call's arguments arrive in pieces and join up.
    let response = gateway
        .post("/v1/chat/completions")
        .json(&json!({"model": "claude", "stream": true, "tools": weather_tool(), "messages": [{"role": "user", "content": "Oslo"}]}))
        .send()
        .await
        .unwrap();
    let chunks = chunks(&read_events(response).await);
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
}

#[tokio::test]
async fn claude_thinking_and_prompt_caching_on_converse() {
    let mock = MockBedrock::start().await;
    let gateway = gateway_for(&mock).await;
    let (status, reply) = chat(
        &gateway,
        json!({"model": "claude", "reasoning_effort": "low", "messages": [
            {"role": "system", "content": [{"type": "text", "text": "Long policy.", "cache_control": {"type": "ephemeral"}}]},
            {"role": "user", "content": "think"}
        ]}),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    let body = mock.last_request().body;
    assert_eq!(
        body["additionalModelRequestFields"]["thinking"],
        json!({"type": "enabled", "budget_tokens": 1024})
    );
    assert_eq!(
        body["system"],
        json!([{"text": "Long policy."}, {"cachePoint": {"type": "default"}}])
    );
    let message = &reply["choices"][0]["message"];
    assert_eq!(message["reasoning_content"], REASONING);
    assert_eq!(message["thinking_blocks"][0]["signature"], SIGNATURE);
    assert_eq!(
        reply["usage"]["prompt_tokens_details"]["cached_tokens"],
        CACHE_READ
    );
    assert_eq!(reply["usage"]["prompt_tokens"], 3 + CACHE_READ);

    // Reasoning is a Claude feature here; Nova refuses it by name.
    let (status, reply) = chat(
        &gateway,
        json!({"model": "nova", "reasoning_effort": "low", "messages": [{"role": "user", "content": "think"}]}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(reply["error"]["param"], "reasoning_effort");
}

#[tokio::test]
async fn parallel_tool_calls_false_is_refused_unless_dropped() {
    let mock = MockBedrock::start().await;
    let gateway = gateway_for(&mock).await;
    let ask = |model: &str, parallel: bool| {
        json!({"model": model, "tools": weather_tool(), "parallel_tool_calls": parallel,
               "messages": [{"role": "user", "content": "Paris"}]})
    };

    // Converse's `toolChoice` cannot limit calls per turn, for Claude no more than for Nova.
    for model in ["nova", "claude"] {
        let (status, reply) = chat(&gateway, ask(model, false)).await;
        assert_unsupported_parameter(
            status,
            &reply,
            "parallel_tool_calls",
            &["`parallel_tool_calls: false`", "bedrock"],
        );
    }
    assert!(mock.requests().is_empty());

    let (status, reply) = chat(&gateway, ask("nova", true)).await;
    assert_eq!(status, 200, "{reply}");
    let allowed = mock.last_request().body;
    assert_eq!(
        allowed["toolConfig"]["tools"][0]["toolSpec"]["name"],
        "get_weather"
    );

    // `drop_params` set once for every deployment, in `litellm_settings`.
    let lenient = TestGateway::start(&format!(
        "{}litellm_settings:\n  drop_params: true\n",
        config_with_models(&bedrock("nova", "us.amazon.nova-pro-v1:0", &mock, ""))
    ))
    .await;
    let (status, reply) = chat(&lenient, ask("nova", false)).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(mock.last_request().body, allowed);
}

#[tokio::test]
async fn claude_codes_disable_parallel_tool_use_is_dropped_for_converse() {
    let mock = MockBedrock::start().await;
    let gateway = gateway_for(&mock).await;
    claude_code_turn_without_parallel_tools(&gateway, "claude", "any").await;
    let upstream = mock.last_request();
    assert!(upstream.path.ends_with("/converse"), "{}", upstream.path);
    assert_eq!(
        upstream.body["toolConfig"]["toolChoice"],
        json!({"any": {}})
    );
}

#[tokio::test]
async fn bedrock_errors_keep_their_meaning() {
    let mock = MockBedrock::start().await;
    let gateway = gateway_for(&mock).await;
    let hi = |model: &str| json!({"model": model, "messages": [{"role": "user", "content": "hi"}]});
    let (status, reply) = chat(&gateway, hi("error-400")).await;
    assert_eq!(status, 400);
    assert_eq!(reply["error"]["code"], "context_length_exceeded");
    let (status, reply) = chat(&gateway, hi("error-429")).await;
    assert_eq!(status, 429);
    assert_eq!(reply["error"]["type"], "rate_limit_error");

    let response = gateway
        .post("/v1/chat/completions")
        .json(&json!({"model": "stream-error", "stream": true, "messages": [{"role": "user", "content": "partial answer here"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let events = read_events(response).await;
    let last: Value = serde_json::from_str(events.last().unwrap()).unwrap();
    assert_eq!(last["error"]["code"], "throttlingException");
    assert!(
        last["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Too many tokens")
    );
}

#[tokio::test]
async fn session_tokens_api_keys_and_arns() {
    let mock = MockBedrock::start().await;
    let gateway = gateway_for(&mock).await;
    let hi = |model: &str| json!({"model": model, "messages": [{"role": "user", "content": "hi"}]});

    let (status, reply) = chat(&gateway, hi("session")).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(
        mock.last_request().headers["x-amz-security-token"],
        SESSION_TOKEN
    );

    let (status, reply) = chat(&gateway, hi("keyed")).await;
    assert_eq!(status, 200, "{reply}");
    let upstream = mock.last_request();
    assert_eq!(
        upstream.headers["authorization"],
        format!("Bearer {API_KEY}")
    );
    assert!(!upstream.headers.contains_key("x-amz-date"));

    // An ARN is escaped into one segment, and its region signs the request.
    let (status, reply) = chat(&gateway, hi("profile")).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(
        mock.last_request().path,
        format!(
            "/model/arn%3Aaws%3Abedrock%3A{REGION}%3A123456789012%3Aapplication-inference-profile%2Fabc123/converse"
        )
    );
}

#[tokio::test]
async fn claude_through_invoke_serves_openai_clients() {
    let mock = MockBedrock::start().await;
    let gateway = gateway_for(&mock).await;
    let (status, reply) = chat(
        &gateway,
        json!({"model": "claude-invoke", "messages": [{"role": "user", "content": "hello invoke"}]}),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["choices"][0]["message"]["content"], "hello invoke");
    let upstream = mock.last_request();
    assert_eq!(
        upstream.path,
        "/model/anthropic.claude-sonnet-4-5-20250929-v1%3A0/invoke"
    );
    assert_eq!(upstream.body["anthropic_version"], "bedrock-2023-05-31");

    let response = gateway
        .post("/v1/chat/completions")
        .json(&json!({"model": "claude-invoke", "stream": true, "stream_options": {"include_usage": true},
                      "messages": [{"role": "user", "content": "framed stream text"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let events = read_events(response).await;
    assert_eq!(streamed_content(&events), "framed stream text");
    assert!(
        mock.last_request()
            .path
            .ends_with("/invoke-with-response-stream")
    );
    assert!(mock.last_request().body.get("stream").is_none());
}

#[tokio::test]
async fn anthropic_clients_reach_claude_on_bedrock_natively() {
    let mock = MockBedrock::start().await;
    let gateway = gateway_for(&mock).await;
    let response = gateway
        .post("/v1/messages")
        .header(
            "anthropic-beta",
            "interleaved-thinking-2025-05-14, context-1m-2025-08-07",
        )
        .json(
            &json!({"model": "claude-invoke", "max_tokens": 50, "stream": true,
                      "messages": [{"role": "user", "content": "native bedrock stream"}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/event-stream; charset=utf-8"
    );
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
    assert_eq!(streamed, "native bedrock stream");
    assert_eq!(events.last().unwrap()["type"], "message_stop");
    assert!(text.contains("event: content_block_delta\ndata: "));

    let upstream = mock.last_request();
    assert_eq!(
        upstream.body,
        json!({"anthropic_version": "bedrock-2023-05-31",
               "anthropic_beta": ["context-1m-2025-08-07"],
               "messages": [{"role": "user", "content": "native bedrock stream"}], "max_tokens": 50})
    );
    assert!(!upstream.headers.contains_key("anthropic-beta"));

    // And translated through Converse for a Converse-routed Claude.
    let response = gateway
        .post("/v1/messages")
        .json(&json!({"model": "claude", "max_tokens": 50, "messages": [{"role": "user", "content": "via converse"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let reply: Value = response.json().await.unwrap();
    assert_eq!(reply["content"][0]["text"], "via converse");
    assert_eq!(reply["model"], "claude");
}

#[tokio::test]
async fn titan_and_cohere_embeddings() {
    let mock = MockBedrock::start().await;
    let gateway = gateway_for(&mock).await;
    let embed = |body: Value| {
        let gateway = &gateway;
        async move {
            let response = gateway
                .post("/v1/embeddings")
                .json(&body)
                .send()
                .await
                .unwrap();
            (
                response.status().as_u16(),
                response.json::<Value>().await.unwrap(),
            )
        }
    };

    let (status, reply) =
        embed(json!({"model": "titan", "input": "three little words", "dimensions": 256})).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["data"][0]["embedding"].as_array().unwrap().len(), 256);
    assert_eq!(reply["usage"]["prompt_tokens"], 3);
    let upstream = mock.last_request();
    assert_eq!(
        upstream.path,
        "/model/amazon.titan-embed-text-v2%3A0/invoke"
    );
    assert_eq!(
        upstream.body,
        json!({"inputText": "three little words", "dimensions": 256})
    );

    let (status, reply) = embed(
        json!({"model": "cohere", "input": ["first", "second"], "input_type": "search_query"}),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["data"].as_array().unwrap().len(), 2);
    assert_eq!(
        mock.last_request().body,
        json!({"texts": ["first", "second"], "input_type": "search_query"})
    );
}

const NOVA: &str = "us.amazon.nova-pro-v1:0";

/// A Bedrock deployment on `mock` without keys of its own: `params` or the environment say
/// where they come from.
fn keyless(name: &str, mock: &MockProvider, params: &str) -> String {
    format!(
        "  - model_name: {name}\n    litellm_params:\n      model: bedrock/{NOVA}\n      api_base: {}\n      aws_region_name: {REGION}\n{params}",
        mock.root_url()
    )
}

/// A gateway serving `models`, whose `environment_variables` blank every variable the AWS
/// credential chain reads (an empty value counts as unset), so that the test's process
/// environment does not decide, and then set `set`.
async fn gateway_with(set: &[(&str, String)], models: &str) -> TestGateway {
    let mut yaml = "environment_variables:\n".to_owned();
    for name in tollgate_core::config::AWS_CHAIN_VARIABLES {
        let value = match set.iter().find(|(set, _)| set == name) {
            Some((_, value)) => value.clone(),
            // Nothing there: no default profile.
            None if *name == "AWS_SHARED_CREDENTIALS_FILE" => "/nonexistent/aws/credentials".into(),
            None if *name == "AWS_CONFIG_FILE" => "/nonexistent/aws/config".into(),
            None => String::new(),
        };
        yaml.push_str(&format!("  {name}: '{value}'\n"));
    }
    TestGateway::start(&format!("{yaml}{}", config_with_models(models))).await
}

fn hi(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "hi"}]})
}

/// A file holding `text`, as a pod's projected token or a credentials file.
fn file_with(what: &str, text: &str) -> String {
    let path = fresh_path(what);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// The access key a request was signed with, and its session token. The Bedrock mock only
/// answers once it has recomputed the signature with that key's secret and found the session
/// token among those it issued.
fn signed_with(request: &RecordedRequest) -> (String, String) {
    let authorization = request.headers["authorization"].to_str().unwrap();
    let key = authorization
        .strip_prefix("AWS4-HMAC-SHA256 Credential=")
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("not signed: {authorization}"));
    let token = request
        .headers
        .get("x-amz-security-token")
        .map(|token| token.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (key.to_owned(), token)
}

fn form(request: &RecordedRequest) -> HashMap<String, String> {
    url::form_urlencoded::parse(&request.raw_body)
        .into_owned()
        .collect()
}

fn sts_calls(mock: &MockProvider) -> usize {
    mock.requests().iter().filter(|r| r.path == "/").count()
}

fn temporary(session: usize) -> (String, String) {
    (
        TEMPORARY_ACCESS_KEY_ID.to_owned(),
        format!("mock-temporary-session-{session}"),
    )
}

fn web_identity_params(mock: &MockProvider, token: &str) -> String {
    format!(
        "      aws_web_identity_token: {token}\n      aws_role_name: {ROLE_ARN}\n      aws_session_name: tollgate-test\n      aws_sts_endpoint: {}\n",
        mock.root_url()
    )
}

#[tokio::test]
async fn web_identity_keys_from_sts_sign_the_requests_and_are_reused() {
    let mock = MockBedrock::start().await;
    // A projected token file ends with a newline; it is read at each exchange.
    let token_file = file_with("web-identity-token", &format!("{WEB_IDENTITY_TOKEN}\n"));
    let params = web_identity_params(&mock, &format!("oidc/file/{token_file}"));
    let gateway = gateway_with(&[], &keyless("nova", &mock, &params)).await;
    let (status, reply) = chat(&gateway, hi("nova")).await;
    assert_eq!(status, 200, "{reply}");

    let requests = mock.requests();
    assert_eq!(requests.len(), 2);
    let sts = &requests[0];
    assert_eq!((sts.method.as_str(), sts.path.as_str()), ("POST", "/"));
    assert_eq!(
        sts.headers["content-type"],
        "application/x-www-form-urlencoded"
    );
    let form = form(sts);
    assert_eq!(form["Action"], "AssumeRoleWithWebIdentity");
    assert_eq!(form["Version"], "2011-06-15");
    assert_eq!(form["RoleArn"], ROLE_ARN);
    assert_eq!(form["RoleSessionName"], "tollgate-test");
    assert_eq!(form["WebIdentityToken"], WEB_IDENTITY_TOKEN);
    assert_eq!(
        requests[1].path,
        "/model/us.amazon.nova-pro-v1%3A0/converse"
    );
    assert_eq!(signed_with(&requests[1]), temporary(1));

    for _ in 0..3 {
        let (status, _) = chat(&gateway, hi("nova")).await;
        assert_eq!(status, 200);
    }
    assert_eq!(sts_calls(&mock), 1, "one exchange serves every request");
    assert_eq!(signed_with(&mock.last_request()), temporary(1));
}

#[tokio::test]
async fn eks_irsa_variables_give_web_identity_and_concurrent_first_requests_fetch_once() {
    let mock = MockBedrock::start().await;
    let token_file = file_with("irsa-token", WEB_IDENTITY_TOKEN);
    let env = [
        ("AWS_WEB_IDENTITY_TOKEN_FILE", token_file),
        ("AWS_ROLE_ARN", ROLE_ARN.to_owned()),
        ("AWS_ROLE_SESSION_NAME", "irsa-session".to_owned()),
        ("AWS_ENDPOINT_URL_STS", mock.root_url()),
    ];
    let gateway = gateway_with(&env, &keyless("nova", &mock, "")).await;
    // Polled together: all eight wait for the one exchange before any is signed.
    let replies = join_all((0..8).map(|_| chat(&gateway, hi("nova")))).await;
    assert!(
        replies.iter().all(|(status, _)| *status == 200),
        "{replies:?}"
    );
    assert_eq!(sts_calls(&mock), 1);
    let sts = &mock.requests()[0];
    assert_eq!(form(sts)["RoleSessionName"], "irsa-session");
    assert_eq!(form(sts)["RoleArn"], ROLE_ARN);
    assert_eq!(signed_with(&mock.last_request()), temporary(1));
}

#[tokio::test]
async fn temporary_keys_are_refreshed_before_they_expire() {
    // Keys that expire in four minutes are inside the five-minute margin: the request after
    // the one that fetched them fetches new ones.
    let mock = MockBedrock::start_with_credential_lifetime(Duration::from_secs(240)).await;
    let params = web_identity_params(&mock, WEB_IDENTITY_TOKEN);
    let gateway = gateway_with(&[], &keyless("nova", &mock, &params)).await;
    let (status, reply) = chat(&gateway, hi("nova")).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(signed_with(&mock.last_request()), temporary(1));
    let (status, reply) = chat(&gateway, hi("nova")).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(sts_calls(&mock), 2);
    assert_eq!(signed_with(&mock.last_request()), temporary(2));

    // An hour's keys are kept.
    let mock = MockBedrock::start_with_credential_lifetime(Duration::from_secs(3600)).await;
    let params = web_identity_params(&mock, WEB_IDENTITY_TOKEN);
    let gateway = gateway_with(&[], &keyless("nova", &mock, &params)).await;
    for _ in 0..2 {
        let (status, _) = chat(&gateway, hi("nova")).await;
        assert_eq!(status, 200);
    }
    assert_eq!(sts_calls(&mock), 1);
}

#[tokio::test]
async fn a_refused_web_identity_fails_the_call_with_a_clear_error() {
    let mock = MockBedrock::start().await;
    let params = web_identity_params(&mock, "eyJ.not-the-token.xyz");
    let gateway = gateway_with(&[], &keyless("nova", &mock, &params)).await;
    let (status, reply) = chat(&gateway, hi("nova")).await;
    assert_eq!(status, 502, "{reply}");
    let message = reply["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(&format!(
            "Could not get AWS credentials from web identity: role {ROLE_ARN} through STS at 127.0.0.1"
        )),
        "{message}"
    );
    assert!(message.contains("InvalidIdentityToken"), "{message}");
    assert!(!reply.to_string().contains("not-the-token"));
    assert!(
        mock.requests().iter().all(|r| r.path == "/"),
        "Bedrock is not called"
    );
}

#[tokio::test]
async fn container_credentials_carry_the_authorization_token() {
    let mock = MockBedrock::start().await;
    // EKS Pod Identity: a full URI and a token file the agent rotates.
    let token_file = file_with(
        "pod-identity-token",
        &format!("{CONTAINER_AUTHORIZATION}\n"),
    );
    let full_uri = format!("{}/v1/credentials", mock.root_url());
    let env = [
        ("AWS_CONTAINER_CREDENTIALS_FULL_URI", full_uri.clone()),
        ("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", token_file),
    ];
    let gateway = gateway_with(&env, &keyless("nova", &mock, "")).await;
    let (status, reply) = chat(&gateway, hi("nova")).await;
    assert_eq!(status, 200, "{reply}");
    let requests = mock.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(
        (requests[0].method.as_str(), requests[0].path.as_str()),
        ("GET", "/v1/credentials")
    );
    assert_eq!(
        requests[0].headers["authorization"],
        CONTAINER_AUTHORIZATION
    );
    assert_eq!(signed_with(&requests[1]), temporary(1));

    // A token the agent refuses fails the call with a 502 that names the source, not the token.
    let mock_refusing = MockBedrock::start().await;
    let env = [
        (
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            format!("{}/v1/credentials", mock_refusing.root_url()),
        ),
        (
            "AWS_CONTAINER_AUTHORIZATION_TOKEN",
            "wrong-pod-token".to_owned(),
        ),
    ];
    let gateway = gateway_with(&env, &keyless("nova", &mock_refusing, "")).await;
    let (status, reply) = chat(&gateway, hi("nova")).await;
    assert_eq!(status, 502, "{reply}");
    let message = reply["error"]["message"].as_str().unwrap();
    assert!(
        message
            .starts_with("Could not get AWS credentials from container credentials at 127.0.0.1"),
        "{message}"
    );
    assert!(
        message.contains("401") && message.contains("InvalidToken"),
        "{message}"
    );
    assert!(!reply.to_string().contains("wrong-pod-token"));
}

#[tokio::test]
async fn instance_metadata_gives_keys_through_imdsv2() {
    let mock = MockBedrock::start().await;
    let env = [("AWS_EC2_METADATA_SERVICE_ENDPOINT", mock.root_url())];
    // Nothing else configured: the instance's role signs.
    let gateway = gateway_with(&env, &keyless("nova", &mock, "")).await;
    let (status, reply) = chat(&gateway, hi("nova")).await;
    assert_eq!(status, 200, "{reply}");
    let requests = mock.requests();
    assert_eq!(requests.len(), 4);
    let token = &requests[0];
    assert_eq!(
        (token.method.as_str(), token.path.as_str()),
        ("PUT", "/latest/api/token")
    );
    assert_eq!(
        token.headers["x-aws-ec2-metadata-token-ttl-seconds"],
        "21600"
    );
    let roles = "/latest/meta-data/iam/security-credentials/";
    assert_eq!(
        (requests[1].method.as_str(), requests[1].path.as_str()),
        ("GET", roles)
    );
    assert_eq!(requests[2].path, format!("{roles}{INSTANCE_ROLE}"));
    // The session token from the PUT rides on both reads.
    for read in &requests[1..3] {
        assert_eq!(
            read.headers["x-aws-ec2-metadata-token"],
            "mock-imds-session-token"
        );
    }
    assert_eq!(signed_with(&requests[3]), temporary(1));
}

#[tokio::test]
async fn a_profile_of_the_shared_credentials_file_signs() {
    let mock = MockBedrock::start().await;
    let credentials = file_with(
        "aws-credentials",
        &format!(
            "[default]\naws_access_key_id = AKIAWRONGDEFAULT\naws_secret_access_key = wrong\n\n[bedrock]\naws_access_key_id = {ACCESS_KEY_ID}\naws_secret_access_key = {SECRET_ACCESS_KEY}\naws_session_token = {SESSION_TOKEN}\n"
        ),
    );
    let env = [("AWS_SHARED_CREDENTIALS_FILE", credentials.clone())];
    let models = [
        keyless("by-param", &mock, "      aws_profile_name: bedrock\n"),
        keyless("by-default", &mock, ""),
    ];
    let gateway = gateway_with(&env, &models.concat()).await;
    let (status, reply) = chat(&gateway, hi("by-param")).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(
        signed_with(&mock.last_request()),
        (ACCESS_KEY_ID.to_owned(), SESSION_TOKEN.to_owned())
    );
    // Without a name, the default profile signs (and the mock refuses its keys).
    let (status, _) = chat(&gateway, hi("by-default")).await;
    assert_eq!(status, 403);
    assert_eq!(signed_with(&mock.last_request()).0, "AKIAWRONGDEFAULT");

    // AWS_PROFILE names a profile too.
    let env = [
        ("AWS_SHARED_CREDENTIALS_FILE", credentials),
        ("AWS_PROFILE", "bedrock".to_owned()),
    ];
    let gateway = gateway_with(&env, &keyless("nova", &mock, "")).await;
    let (status, reply) = chat(&gateway, hi("nova")).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(signed_with(&mock.last_request()).0, ACCESS_KEY_ID);
}

#[tokio::test]
async fn a_profiles_credential_process_signs_and_runs_once_while_its_keys_last() {
    let mock = MockBedrock::start().await;
    let runs = fresh_path("credential-process-runs");
    let script = file_with(
        "credential-process",
        &format!(
            "echo run >> '{}'\nprintf '%s' '{{\"Version\": 1, \"AccessKeyId\": \"{ACCESS_KEY_ID}\", \"SecretAccessKey\": \"{SECRET_ACCESS_KEY}\", \"SessionToken\": \"{SESSION_TOKEN}\", \"Expiration\": \"2099-01-01T00:00:00Z\"}}'\n",
            runs.display()
        ),
    );
    let failing = file_with(
        "credential-process-failing",
        "echo 'token expired: run aws sso login' >&2\nexit 3\n",
    );
    let config = file_with(
        "aws-config",
        &format!(
            "[profile tool]\ncredential_process = sh {script}\n\n[profile broken]\ncredential_process = sh {failing}\n"
        ),
    );
    let env = [("AWS_CONFIG_FILE", config)];
    let models = [
        keyless("tool", &mock, "      aws_profile_name: tool\n"),
        keyless("broken", &mock, "      aws_profile_name: broken\n"),
    ];
    let gateway = gateway_with(&env, &models.concat()).await;
    for _ in 0..2 {
        let (status, reply) = chat(&gateway, hi("tool")).await;
        assert_eq!(status, 200, "{reply}");
        assert_eq!(
            signed_with(&mock.last_request()),
            (ACCESS_KEY_ID.to_owned(), SESSION_TOKEN.to_owned())
        );
    }
    let ran = std::fs::read_to_string(&runs).unwrap();
    assert_eq!(
        ran.lines().count(),
        1,
        "the keys are reused until they expire"
    );

    let (status, reply) = chat(&gateway, hi("broken")).await;
    assert_eq!(status, 502, "{reply}");
    let message = reply["error"]["message"].as_str().unwrap();
    assert!(message.contains("profile `broken`"), "{message}");
    assert!(message.contains("exited with code 3"), "{message}");
    assert!(message.contains("run aws sso login"), "{message}");
}

#[tokio::test]
async fn a_role_is_assumed_with_the_deployments_keys_and_its_keys_sign() {
    let mock = MockBedrock::start().await;
    let assume = |role: &str| {
        format!(
            "      aws_access_key_id: {ACCESS_KEY_ID}\n      aws_secret_access_key: {SECRET_ACCESS_KEY}\n      aws_role_name: {role}\n      aws_session_name: cross-account\n      aws_external_id: partner-7\n      aws_sts_endpoint: {}\n",
            mock.root_url()
        )
    };
    let models = [
        keyless("assumed", &mock, &assume(ROLE_ARN)),
        keyless(
            "forbidden",
            &mock,
            &assume("arn:aws:iam::999999999999:role/other"),
        ),
    ];
    let gateway = gateway_with(&[], &models.concat()).await;
    for _ in 0..2 {
        let (status, reply) = chat(&gateway, hi("assumed")).await;
        assert_eq!(status, 200, "{reply}");
        assert_eq!(signed_with(&mock.last_request()), temporary(1));
    }
    assert_eq!(sts_calls(&mock), 1, "the role's keys are reused");
    let call = mock
        .requests()
        .into_iter()
        .find(|request| request.path == "/")
        .unwrap();
    let form = form(&call);
    assert_eq!(form["Action"], "AssumeRole");
    assert_eq!(form["RoleArn"], ROLE_ARN);
    assert_eq!(form["RoleSessionName"], "cross-account");
    assert_eq!(form["ExternalId"], "partner-7");
    // Signed for STS with the deployment's own keys (the mock checked the signature).
    let authorization = call.headers["authorization"].to_str().unwrap();
    assert!(
        authorization.contains(&format!("Credential={ACCESS_KEY_ID}/"))
            && authorization.contains("/sts/aws4_request"),
        "{authorization}"
    );

    let (status, reply) = chat(&gateway, hi("forbidden")).await;
    assert_eq!(status, 502, "{reply}");
    let message = reply["error"]["message"].as_str().unwrap();
    assert!(message.contains("AccessDenied"), "{message}");
    assert!(!message.contains(SECRET_ACCESS_KEY), "{message}");
}

#[tokio::test]
async fn titan_embeds_a_list_with_one_call_per_text_in_order() {
    let mock = MockBedrock::start().await;
    let gateway = gateway_for(&mock).await;
    // More texts than calls in flight at once (8), each of another length so that each
    // vector (which the mock derives from the length) tells which text it belongs to.
    let texts: Vec<String> = (1..=11).map(|n| vec!["word"; n].join(" ")).collect();
    let response = gateway
        .post("/v1/embeddings")
        .json(&json!({"model": "titan", "input": texts, "dimensions": 3}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let reply: Value = response.json().await.unwrap();

    let calls = mock.requests();
    assert_eq!(calls.len(), texts.len());
    let mut sent: Vec<String> = calls
        .iter()
        .map(|call| {
            assert_eq!(call.path, "/model/amazon.titan-embed-text-v2%3A0/invoke");
            assert_eq!(call.body["dimensions"], 3);
            call.body["inputText"].as_str().unwrap().to_owned()
        })
        .collect();
    sent.sort_by_key(String::len);
    assert_eq!(sent, texts);

    let data = reply["data"].as_array().unwrap();
    assert_eq!(data.len(), texts.len());
    for (index, (item, text)) in data.iter().zip(&texts).enumerate() {
        assert_eq!(item["index"], index);
        // The mock's vector for a text: ((length + i) % 13) / 13.
        let expected: Vec<f64> = (0..3)
            .map(|i| ((text.len() + i) % 13) as f64 / 13.0)
            .collect();
        let got: Vec<f64> = item["embedding"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert!(
            got.iter().zip(&expected).all(|(a, b)| (a - b).abs() < 1e-6),
            "input {index}: {got:?} != {expected:?}"
        );
    }
    // Titan counts each call's words; the usage is their sum (1 + 2 + … + 11).
    assert_eq!(reply["usage"]["prompt_tokens"], 66);

    // One call failing fails the request with that call's error.
    mock.faults.push(Fault::status(400));
    let response = gateway
        .post("/v1/embeddings")
        .json(&json!({"model": "titan", "input": ["one", "two", "three"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
}

#[tokio::test]
async fn claude_through_invoke_carries_tools_images_json_and_thinking() {
    let mock = MockBedrock::start().await;
    let gateway = gateway_for(&mock).await;
    claude_on_a_platform_carries_tools_images_json_and_thinking(&gateway, "claude-invoke", || {
        let call = mock.last_request();
        assert!(call.path.ends_with("/invoke"), "{}", call.path);
        assert_eq!(call.body["anthropic_version"], "bedrock-2023-05-31");
        call.body
    })
    .await;
}

#[tokio::test]
async fn a_json_schema_is_answered_through_a_forced_tool_on_converse() {
    let mock = MockBedrock::start().await;
    let gateway = gateway_for(&mock).await;
    let schema =
        json!({"type": "object", "properties": {"echo": {"type": "string"}}, "required": ["echo"]});
    let (status, reply) = chat(
        &gateway,
        json!({"model": "nova", "messages": [{"role": "user", "content": "structured"}],
               "response_format": {"type": "json_schema", "json_schema": {"name": "reply", "schema": schema}}}),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(structured_content(&reply), json!({"echo": "structured"}));
    let sent = mock.last_request().body;
    assert_eq!(
        sent["toolConfig"]["tools"][0]["toolSpec"]["inputSchema"]["json"],
        schema
    );
    assert_eq!(
        sent["toolConfig"]["toolChoice"],
        json!({"tool": {"name": "json_tool_call"}})
    );
}
