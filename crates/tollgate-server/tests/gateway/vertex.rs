//! Vertex AI: OAuth tokens from a service-account key (signed JWT), from the metadata server,
//! reused and refreshed; Gemini models at their regional URLs; Claude on Vertex through
//! `rawPredict` / `streamRawPredict`, for OpenAI and Anthropic clients.

use std::path::PathBuf;
use std::time::Duration;

use futures_util::future::join_all;
use serde_json::{Value, json};
use tollgate_testkit::{MockGemini, MockProvider};

use crate::harness::*;

/// Writes the mock's service-account key to a file, as users keep theirs.
fn key_file(mock: &MockProvider) -> PathBuf {
    let path = std::env::temp_dir().join(format!(
        "tollgate-test-sa-{}-{}.json",
        std::process::id(),
        mock.addr().port()
    ));
    std::fs::write(&path, MockGemini::service_account_json(mock)).unwrap();
    path
}

fn vertex(name: &str, model: &str, mock: &MockProvider, credentials: &str) -> String {
    format!(
        "  - model_name: {name}\n    litellm_params:\n      model: vertex_ai/{model}\n      api_base: {}\n      vertex_location: europe-west4\n{credentials}",
        mock.root_url()
    )
}

async fn gateway_for(mock: &MockProvider) -> TestGateway {
    let credentials = format!("      vertex_credentials: {}\n", key_file(mock).display());
    let models = [
        vertex("gemini", "gemini-2.5-flash", mock, &credentials),
        vertex("claude", "claude-sonnet-4-5@20250929", mock, &credentials),
    ];
    TestGateway::start(&config_with_models(&models.concat())).await
}

fn hi(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "hello vertex"}]})
}

fn token_requests(mock: &MockProvider) -> usize {
    mock.requests()
        .iter()
        .filter(|r| r.path == "/token" || r.path.starts_with("/computeMetadata/"))
        .count()
}

#[tokio::test]
async fn gemini_on_vertex_authenticates_with_the_service_account_and_reuses_the_token() {
    let mock = MockGemini::start().await;
    let gateway = gateway_for(&mock).await;
    let (status, reply) = chat(&gateway, hi("gemini")).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["choices"][0]["message"]["content"], "hello vertex");

    let requests = mock.requests();
    // The mock's token endpoint verified the JWT's signature and claims before issuing.
    assert_eq!(requests[0].path, "/token");
    assert_eq!(
        requests[0].headers["content-type"],
        "application/x-www-form-urlencoded"
    );
    let call = &requests[1];
    assert_eq!(
        call.path,
        "/v1/projects/tollgate-test/locations/europe-west4/publishers/google/models/gemini-2.5-flash:generateContent"
    );
    assert_eq!(call.headers["authorization"], "Bearer ya29.mock-token-1");

    for _ in 0..3 {
        let (status, _) = chat(&gateway, hi("gemini")).await;
        assert_eq!(status, 200);
    }
    assert_eq!(token_requests(&mock), 1, "one token serves every request");
    assert_eq!(
        mock.last_request().headers["authorization"],
        "Bearer ya29.mock-token-1"
    );
}

#[tokio::test]
async fn workload_identity_federation_exchanges_the_pods_token_and_impersonates() {
    use tollgate_testkit::gemini::{
        SERVICE_ACCOUNT_EMAIL, WORKLOAD_AUDIENCE, WORKLOAD_IDENTITY_TOKEN,
    };
    let mock = MockGemini::start().await;
    let write = |name: &str, text: &str| {
        let path = fresh_path(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    // A projected Kubernetes token as a text file, and an identity provider's JSON answer.
    let text_token = write("ksa-token", &format!("{WORKLOAD_IDENTITY_TOKEN}\n"));
    let json_token = write(
        "oidc-answer",
        &json!({"id_token": WORKLOAD_IDENTITY_TOKEN, "expires_in": 3600}).to_string(),
    );
    let credentials = |source: Value, impersonate: bool| {
        let mut config = json!({
            "type": "external_account",
            "audience": WORKLOAD_AUDIENCE,
            "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
            "token_url": format!("{}/v1/token", mock.root_url()),
            "credential_source": source,
        });
        if impersonate {
            config["service_account_impersonation_url"] = json!(format!(
                "{}/v1/projects/-/serviceAccounts/{SERVICE_ACCOUNT_EMAIL}:generateAccessToken",
                mock.root_url()
            ));
        }
        let file = write("external-account.json", &config.to_string());
        format!("      vertex_project: tollgate-test\n      vertex_credentials: {file}\n")
    };
    let models = [
        vertex(
            "impersonated",
            "gemini-2.5-flash",
            &mock,
            &credentials(json!({"file": text_token}), true),
        ),
        vertex(
            "federated",
            "gemini-2.5-flash",
            &mock,
            &credentials(
                json!({"file": json_token, "format": {"type": "json", "subject_token_field_name": "id_token"}}),
                false,
            ),
        ),
    ];
    let gateway = TestGateway::start(&config_with_models(&models.concat())).await;

    for _ in 0..2 {
        let (status, reply) = chat(&gateway, hi("impersonated")).await;
        assert_eq!(status, 200, "{reply}");
    }
    let requests = mock.requests();
    let paths: Vec<&str> = requests.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(paths[0], "/v1/token", "{paths:?}");
    assert!(paths[1].ends_with(":generateAccessToken"), "{paths:?}");
    assert_eq!(paths.len(), 4, "one exchange serves both calls: {paths:?}");
    let exchange: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(&requests[0].raw_body)
            .into_owned()
            .collect();
    assert_eq!(exchange["subject_token"], WORKLOAD_IDENTITY_TOKEN);
    assert_eq!(exchange["audience"], WORKLOAD_AUDIENCE);
    // The federated token asked for the service account's, which signs the calls.
    assert_eq!(
        requests[1].headers["authorization"],
        "Bearer ya29.mock-token-1"
    );
    assert_eq!(
        requests[3].headers["authorization"],
        "Bearer ya29.mock-token-2"
    );

    // Without impersonation the federated token itself is used; the JSON answer's field is
    // the subject token.
    let (status, reply) = chat(&gateway, hi("federated")).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(
        mock.last_request().headers["authorization"],
        "Bearer ya29.mock-token-3"
    );
}

#[tokio::test]
async fn a_token_is_refreshed_before_it_expires() {
    // Tokens that live 2s are refreshed after half their life.
    let mock = MockGemini::start_with_token_lifetime(2).await;
    let gateway = gateway_for(&mock).await;
    let (status, _) = chat(&gateway, hi("gemini")).await;
    assert_eq!(status, 200);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, _) = chat(&gateway, hi("gemini")).await;
    assert_eq!(status, 200);
    assert_eq!(token_requests(&mock), 2);
    assert_eq!(
        mock.last_request().headers["authorization"],
        "Bearer ya29.mock-token-2"
    );
}

#[tokio::test]
async fn concurrent_first_requests_fetch_one_token() {
    let mock = MockGemini::start().await;
    let gateway = gateway_for(&mock).await;
    // Polled together: all eight wait for the first token before any is answered.
    let replies = join_all((0..8).map(|_| chat(&gateway, hi("gemini")))).await;
    assert!(replies.iter().all(|(status, _)| *status == 200));
    assert_eq!(token_requests(&mock), 1);
}

#[tokio::test]
async fn without_a_key_file_the_metadata_server_gives_the_token() {
    let mock = MockGemini::start().await;
    let yaml = format!(
        "environment_variables:\n  GCE_METADATA_HOST: {}\n  VERTEXAI_PROJECT: from-env\n{}",
        mock.addr(),
        config_with_models(&vertex("gemini", "gemini-2.5-flash", &mock, ""))
    );
    let gateway = TestGateway::start(&yaml).await;
    let (status, reply) = chat(&gateway, hi("gemini")).await;
    assert_eq!(status, 200, "{reply}");
    let requests = mock.requests();
    assert_eq!(
        requests[0].path,
        "/computeMetadata/v1/instance/service-accounts/default/token"
    );
    assert_eq!(requests[0].headers["metadata-flavor"], "Google");
    assert!(
        requests[1]
            .path
            .starts_with("/v1/projects/from-env/locations/europe-west4/")
    );
}

#[tokio::test]
async fn a_refused_token_request_fails_the_call_with_a_clear_error() {
    let mock = MockGemini::start().await;
    // User credentials the mock's token endpoint does not accept (it wants a JWT grant).
    let credentials =
        json!({"type": "authorized_user", "client_id": "id", "client_secret": "secret-xyz",
                             "refresh_token": "refresh-xyz", "quota_project_id": "user-project",
                             "token_uri": format!("{}/token", mock.root_url())})
        .to_string();
    let yaml = config_with_models(&vertex(
        "gemini",
        "gemini-2.5-flash",
        &mock,
        &format!("      vertex_credentials: '{credentials}'\n"),
    ));
    let gateway = TestGateway::start(&yaml).await;
    let (status, reply) = chat(&gateway, hi("gemini")).await;
    assert_eq!(status, 502, "{reply}");
    let message = reply["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("Could not get a Vertex AI access token"),
        "{message}"
    );
    assert!(message.contains("invalid_grant"), "{message}");
    let token_request = &mock.requests()[0];
    assert_eq!(
        String::from_utf8_lossy(&token_request.raw_body),
        "grant_type=refresh_token&client_id=id&client_secret=secret-xyz&refresh_token=refresh-xyz"
    );
    assert!(!reply.to_string().contains("secret-xyz"));
}

#[tokio::test]
async fn claude_on_vertex_serves_openai_clients() {
    let mock = MockGemini::start().await;
    let gateway = gateway_for(&mock).await;
    let (status, reply) = chat(&gateway, hi("claude")).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["choices"][0]["message"]["content"], "hello vertex");
    let call = mock.last_request();
    assert_eq!(
        call.path,
        "/v1/projects/tollgate-test/locations/europe-west4/publishers/anthropic/models/claude-sonnet-4-5@20250929:rawPredict"
    );
    assert_eq!(call.body["anthropic_version"], "vertex-2023-10-16");
    assert!(call.body.get("model").is_none());
    assert!(call.headers.get("anthropic-version").is_none());

    let response = gateway
        .post("/v1/chat/completions")
        .json(&json!({"model": "claude", "stream": true, "messages": [{"role": "user", "content": "streamed from vertex"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let events = read_events(response).await;
    assert_eq!(streamed_content(&events), "streamed from vertex");
    assert!(mock.last_request().path.ends_with(":streamRawPredict"));
}

#[tokio::test]
async fn parallel_tool_calls_false_is_refused_by_gemini_but_kept_by_claude_on_vertex() {
    let mock = MockGemini::start().await;
    let gateway = gateway_for(&mock).await;
    let ask = |model: &str| {
        json!({"model": model, "parallel_tool_calls": false,
               "tools": [{"type": "function", "function": {"name": "get_weather",
                          "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
               "messages": [{"role": "user", "content": "Paris"}]})
    };
    let (status, reply) = chat(&gateway, ask("gemini")).await;
    assert_unsupported_parameter(
        status,
        &reply,
        "parallel_tool_calls",
        &["`parallel_tool_calls: false`", "vertex_ai"],
    );
    assert!(
        !mock
            .requests()
            .iter()
            .any(|r| r.path.ends_with(":generateContent"))
    );

    // Claude has the control: Anthropic's `disable_parallel_tool_use`.
    let (status, reply) = chat(&gateway, ask("claude")).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(
        mock.last_request().body["tool_choice"],
        json!({"type": "auto", "disable_parallel_tool_use": true})
    );
}

#[tokio::test]
async fn claude_on_vertex_serves_anthropic_clients_natively() {
    let mock = MockGemini::start().await;
    let gateway = gateway_for(&mock).await;
    let response = gateway
        .post("/v1/messages")
        .header(
            "anthropic-beta",
            "claude-code-20250219,interleaved-thinking-2025-05-14,prompt-caching-scope-2026-01-05",
        )
        .json(&json!({"model": "claude", "max_tokens": 64, "messages": [{"role": "user", "content": "native call"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let reply: Value = response.json().await.unwrap();
    assert_eq!(reply["content"][0]["text"], "native call");
    let call = mock.last_request();
    assert!(call.path.ends_with(":rawPredict"));
    assert_eq!(
        call.body,
        json!({"anthropic_version": "vertex-2023-10-16", "messages": [{"role": "user", "content": "native call"}], "max_tokens": 64})
    );
    // Only the flags Vertex knows are passed on; it refuses the others.
    assert_eq!(
        call.headers["anthropic-beta"],
        "interleaved-thinking-2025-05-14"
    );
}

#[tokio::test]
async fn vertex_text_embeddings_use_predict_and_report_its_token_counts() {
    let mock = MockGemini::start().await;
    let credentials = format!("      vertex_credentials: {}\n", key_file(&mock).display());
    let gateway = TestGateway::start(&config_with_models(&vertex(
        "embed",
        "text-embedding-005",
        &mock,
        &credentials,
    )))
    .await;
    let response = gateway
        .post("/v1/embeddings")
        .json(&json!({"model": "embed", "input": ["three words here", "two words"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let reply: Value = response.json().await.unwrap();
    assert_eq!(reply["data"].as_array().unwrap().len(), 2);
    assert_eq!(reply["usage"]["prompt_tokens"], 5);
    let call = mock.last_request();
    assert!(
        call.path
            .ends_with("/publishers/google/models/text-embedding-005:predict")
    );
    assert_eq!(
        call.body,
        json!({"instances": [{"content": "three words here"}, {"content": "two words"}]})
    );
}

#[tokio::test]
async fn anthropic_token_counts_on_vertex_gemini_send_the_prompt_parts() {
    let mock = MockGemini::start().await;
    let gateway = gateway_for(&mock).await;
    let response = gateway
        .client
        .post(format!("{}/v1/messages/count_tokens", gateway.url))
        .header("x-api-key", MASTER_KEY)
        .json(&json!({"model": "gemini", "messages": [{"role": "user", "content": "three words here"}],
                      "tools": [{"name": "get_weather", "input_schema": {"type": "object"}}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"input_tokens": 3})
    );
    let upstream = mock.last_request();
    assert!(
        upstream
            .path
            .ends_with("/publishers/google/models/gemini-2.5-flash:countTokens"),
        "{}",
        upstream.path
    );
    let fields: Vec<&String> = upstream.body.as_object().unwrap().keys().collect();
    assert_eq!(fields, ["contents", "tools"]);
}

#[tokio::test]
async fn claude_on_vertex_carries_tools_images_json_and_thinking() {
    let mock = MockGemini::start().await;
    let gateway = gateway_for(&mock).await;
    claude_on_a_platform_carries_tools_images_json_and_thinking(&gateway, "claude", || {
        let call = mock.last_request();
        assert!(call.path.ends_with(":rawPredict"), "{}", call.path);
        call.body
    })
    .await;
}

#[tokio::test]
async fn gemini_on_vertex_carries_images_json_schema_and_reasoning() {
    use tollgate_testkit::gemini::THOUGHT;
    let mock = MockGemini::start().await;
    let gateway = gateway_for(&mock).await;
    let (status, reply) = chat(
        &gateway,
        json!({"model": "gemini", "reasoning_effort": "low",
               "messages": [{"role": "user", "content": [
                   {"type": "text", "text": "describe"},
                   {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]}],
               "response_format": {"type": "json_schema", "json_schema": {"name": "caption", "schema": {
                   "type": "object", "properties": {"caption": {"type": "string"}}, "required": ["caption"]}}}}),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["choices"][0]["message"]["reasoning_content"], THOUGHT);
    let call = mock.last_request();
    assert_eq!(
        call.path,
        "/v1/projects/tollgate-test/locations/europe-west4/publishers/google/models/gemini-2.5-flash:generateContent"
    );
    assert_eq!(
        call.body["contents"][0]["parts"],
        json!([{"text": "describe"}, {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}}])
    );
    assert_eq!(
        call.body["generationConfig"],
        json!({"responseMimeType": "application/json",
               "responseSchema": {"type": "OBJECT", "required": ["caption"], "propertyOrdering": ["caption"],
                                  "properties": {"caption": {"type": "STRING"}}},
               "thinkingConfig": {"includeThoughts": true, "thinkingBudget": 1024}})
    );
}
