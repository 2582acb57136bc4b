//! Starts a real gateway on an ephemeral port, from YAML, for tests to call over HTTP.

use std::path::Path;
use std::sync::Arc;

use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tollgate_core::calendar::ManualClock;
use tollgate_core::config;
use tollgate_server::Gateway;

pub const MASTER_KEY: &str = "sk-test-master";
const JOURNAL_MAX_BYTES: u64 = 64 << 20;

pub struct TestGateway {
    pub url: String,
    pub client: reqwest::Client,
    pub gateway: Arc<Gateway>,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<std::io::Result<()>>>,
}

impl TestGateway {
    /// A gateway serving `yaml` (a LiteLLM-format config).
    pub async fn start(yaml: &str) -> Self {
        Self::start_on(yaml, test_store().await).await
    }

    /// A gateway serving `yaml` from `store` (which other gateways may share, as replicas do).
    pub async fn start_on(yaml: &str, store: tollgate_server::Store) -> Self {
        Self::start_with_journal(yaml, store, &fresh_path("spend-journal")).await
    }

    /// A gateway whose spend journal is the directory `journal` (which may hold segments
    /// left by an earlier gateway).
    pub async fn start_with_journal(
        yaml: &str,
        store: tollgate_server::Store,
        journal: &Path,
    ) -> Self {
        Self::start_with(yaml, store, journal, JOURNAL_MAX_BYTES, None).await
    }

    /// A gateway whose spend journal refuses more once it holds `max_bytes`.
    pub async fn start_with_journal_limit(
        yaml: &str,
        store: tollgate_server::Store,
        max_bytes: u64,
    ) -> Self {
        Self::start_with(yaml, store, &fresh_path("spend-journal"), max_bytes, None).await
    }

    /// A gateway whose budgets read the time from `clock`.
    pub async fn start_at(yaml: &str, clock: Arc<ManualClock>) -> Self {
        let journal = fresh_path("spend-journal");
        Self::start_with(
            yaml,
            test_store().await,
            &journal,
            JOURNAL_MAX_BYTES,
            Some(clock),
        )
        .await
    }

    async fn start_with(
        yaml: &str,
        store: tollgate_server::Store,
        journal: &Path,
        journal_max_bytes: u64,
        clock: Option<Arc<ManualClock>>,
    ) -> Self {
        let config =
            config::load_str(yaml, Path::new("test-config.yaml")).expect("test config is valid");
        let journal = tollgate_server::Journal::open(journal, journal_max_bytes)
            .expect("the spend journal opens");
        let mut gateway = Gateway::new(config, 1).expect("gateway builds");
        if let Some(clock) = clock {
            gateway = gateway.with_clock(clock);
        }
        let gateway = Arc::new(
            gateway
                .with_store(store, journal)
                .await
                .expect("the store loads"),
        );
        tokio::spawn(tollgate_server::background_tasks(gateway.clone()));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(tollgate_server::serve(
            listener,
            gateway.clone(),
            async move {
                let _ = stopped.await;
            },
        ));
        TestGateway {
            url,
            client: reqwest::Client::new(),
            gateway,
            stop: Some(stop),
            server: Some(server),
        }
    }

    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.client
            .post(format!("{}{path}", self.url))
            .bearer_auth(MASTER_KEY)
    }

    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.client
            .get(format!("{}{path}", self.url))
            .bearer_auth(MASTER_KEY)
    }

    pub fn delete(&self, path: &str) -> reqwest::RequestBuilder {
        self.client
            .delete(format!("{}{path}", self.url))
            .bearer_auth(MASTER_KEY)
    }

    /// Sends the shutdown signal; returns the server task to await.
    pub fn shutdown(&mut self) -> JoinHandle<std::io::Result<()>> {
        let _ = self.stop.take().expect("not yet shut down").send(());
        self.server.take().expect("server running")
    }
}

/// A store of its own for each test gateway: a fresh SQLite file.
/// A fresh store: a PostgreSQL schema of its own when `TOLLGATE_TEST_STORE=postgres` (how
/// `scripts/test` runs the management tests a second time), else a SQLite file of its own.
pub async fn test_store() -> tollgate_server::Store {
    if std::env::var("TOLLGATE_TEST_STORE").is_ok_and(|store| store == "postgres")
        && let Some(store) = tollgate_testkit::databases::postgres().await
    {
        return store;
    }
    sqlite_store().await
}

/// A path in the temp directory that no other test uses (nothing there yet).
pub fn fresh_path(what: &str) -> std::path::PathBuf {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let path = std::env::temp_dir().join(format!(
        "tollgate-gateway-test-{}-{}-{what}",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let _ = std::fs::remove_file(&path);
    let _ = std::fs::remove_dir_all(&path);
    path
}

async fn sqlite_store() -> tollgate_server::Store {
    let path = fresh_path("store.db");
    tollgate_server::Store::connect(&format!("sqlite://{}?mode=rwc", path.display()))
        .await
        .expect("test store opens")
}

/// A config with the master key and the given `model_list` YAML entries.
pub fn config_with_models(models: &str) -> String {
    format!("general_settings:\n  master_key: {MASTER_KEY}\nmodel_list:\n{models}")
}

/// One OpenAI-compatible deployment named `name` whose upstream model is `model`.
pub fn openai_model(name: &str, model: &str, api_base: &str) -> String {
    format!(
        "  - model_name: {name}\n    litellm_params:\n      model: openai/{model}\n      api_base: {api_base}\n      api_key: sk-provider-secret-key\n"
    )
}

/// Reads a streamed response to the end and returns its `data:` payloads.
pub async fn read_events(mut response: reqwest::Response) -> Vec<String> {
    let mut text = Vec::new();
    while let Some(chunk) = response.chunk().await.expect("stream reads") {
        text.extend_from_slice(&chunk);
    }
    sse_payloads(&String::from_utf8(text).expect("utf-8"))
}

pub fn sse_payloads(text: &str) -> Vec<String> {
    text.split("\n\n")
        .filter_map(|event| event.strip_prefix("data: "))
        .map(str::to_owned)
        .collect()
}

/// The content deltas of a chat stream, concatenated.
pub fn streamed_content(events: &[String]) -> String {
    events
        .iter()
        .filter(|e| e.as_str() != "[DONE]")
        .filter_map(|e| serde_json::from_str::<serde_json::Value>(e).ok())
        .filter_map(|v| {
            v["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect()
}

/// A chat request with the master key: status and JSON body.
pub async fn chat(gateway: &TestGateway, body: Value) -> (u16, Value) {
    admin_post(gateway, "/v1/chat/completions", body).await
}

/// A chat stream's chunks, `[DONE]` left out.
pub fn chunks(events: &[String]) -> Vec<Value> {
    events
        .iter()
        .filter(|e| e.as_str() != "[DONE]")
        .map(|e| serde_json::from_str(e).unwrap())
        .collect()
}

/// The JSON a structured-output answer carries as its content (a forced tool's call turned
/// back into text): it finished as `stop`, with no tool calls shown.
pub fn structured_content(reply: &Value) -> Value {
    assert_eq!(reply["choices"][0]["finish_reason"], "stop", "{reply}");
    assert!(
        reply["choices"][0]["message"]["tool_calls"].is_null(),
        "{reply}"
    );
    serde_json::from_str(reply["choices"][0]["message"]["content"].as_str().unwrap()).unwrap()
}

/// Stores `gateway`'s journaled spend, then the spend records `query` (`/spend/logs` filters)
/// finds: how many, and what the successful ones cost in dollars.
pub async fn recorded_spend(gateway: &TestGateway, query: &str) -> (u64, f64) {
    gateway.gateway.flush_spend().await.unwrap();
    let logs = ok(admin_get(gateway, &format!("/spend/logs?page_size=1000&{query}")).await);
    let total = logs["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|record| record["status"] == "success")
        .map(|record| record["spend"].as_f64().unwrap())
        .sum();
    (logs["total"].as_u64().unwrap(), total)
}

/// POSTs `body` to the chat route with the master key; the response as it came.
pub async fn post_chat(gateway: &TestGateway, body: &Value) -> reqwest::Response {
    gateway
        .post("/v1/chat/completions")
        .json(body)
        .send()
        .await
        .unwrap()
}

/// A management call with the master key: status and JSON body.
pub async fn admin_post(gateway: &TestGateway, path: &str, body: Value) -> (u16, Value) {
    let response = gateway.post(path).json(&body).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// A chat request with `key`: status and JSON body.
pub async fn chat_as(gateway: &TestGateway, key: &str, model: &str) -> (u16, Value) {
    let response = gateway
        .client
        .post(format!("{}/v1/chat/completions", gateway.url))
        .bearer_auth(key)
        .json(&json!({"model": model, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// A management read with the master key: status and JSON body.
pub async fn admin_get(gateway: &TestGateway, path: &str) -> (u16, Value) {
    let response = gateway.get(path).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// A delete with the master key: status and JSON body.
pub async fn admin_delete(gateway: &TestGateway, path: &str) -> (u16, Value) {
    let response = gateway.delete(path).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// A GET with `key`: status and JSON body.
pub async fn get_as(gateway: &TestGateway, key: &str, path: &str) -> (u16, Value) {
    let response = gateway
        .client
        .get(format!("{}{path}", gateway.url))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

/// A POST with `key`: status and JSON body.
pub async fn post_as(gateway: &TestGateway, key: &str, path: &str, body: Value) -> (u16, Value) {
    let response = gateway
        .client
        .post(format!("{}{path}", gateway.url))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

/// The body of a 200, failing with the body otherwise.
pub fn ok(reply: (u16, Value)) -> Value {
    assert_eq!(reply.0, 200, "{}", reply.1);
    reply.1
}

/// Checks the refusal of a parameter the deployment's provider cannot take: a 400 in OpenAI's
/// error shape for `param`, whose message names each of `named` (what was refused, the
/// provider).
pub fn assert_unsupported_parameter(status: u16, reply: &Value, param: &str, named: &[&str]) {
    assert_eq!(status, 400, "{reply}");
    let error = reply["error"].as_object().expect("an OpenAI error body");
    let mut fields: Vec<&str> = error.keys().map(String::as_str).collect();
    fields.sort_unstable();
    assert_eq!(fields, ["code", "message", "param", "type"], "{reply}");
    assert_eq!(error["type"], "invalid_request_error", "{reply}");
    assert_eq!(error["param"], param, "{reply}");
    assert_eq!(error["code"], "unsupported_parameter", "{reply}");
    let message = error["message"].as_str().expect("a message");
    for name in named {
        assert!(message.contains(name), "`{name}` not in: {message}");
    }
}

/// A `/v1/messages` request as Claude Code sends it — one tool, and `tool_choice` of `choice`
/// with `disable_parallel_tool_use: true` — asserted to be answered as a message.
pub async fn claude_code_turn_without_parallel_tools(
    gateway: &TestGateway,
    model: &str,
    choice: &str,
) {
    let response = gateway
        .post("/v1/messages")
        .json(&json!({"model": model, "max_tokens": 100,
            "tools": [{"name": "get_weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}],
            "tool_choice": {"type": choice, "disable_parallel_tool_use": true},
            "messages": [{"role": "user", "content": "Paris"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let reply: Value = response.json().await.unwrap();
    assert_eq!(reply["type"], "message", "{reply}");
}

/// Claude behind a platform (Vertex AI's `rawPredict`, Bedrock's `invoke`) takes from an OpenAI
/// client what Anthropic's own API takes, through the same translation: a named tool and an
/// image in, the call out and its result back; a JSON schema answered through a forced tool;
/// `reasoning_effort` as a thinking budget, the signed thinking back. `sent` reads the body
/// the platform received last.
pub async fn claude_on_a_platform_carries_tools_images_json_and_thinking(
    gateway: &TestGateway,
    model: &str,
    sent: impl Fn() -> Value,
) {
    use tollgate_testkit::anthropic::{SIGNATURE, THINKING};
    let chat = async |body: Value| {
        let (status, reply) = chat(gateway, body).await;
        assert_eq!(status, 200, "{reply}");
        reply
    };
    let tools = json!([{"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]);

    let reply = chat(json!({"model": model, "tools": tools,
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        "messages": [{"role": "user", "content": [
            {"type": "text", "text": "Paris"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]}]}))
    .await;
    assert_eq!(reply["choices"][0]["finish_reason"], "tool_calls");
    let call = &reply["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(call["function"]["name"], "get_weather", "{reply}");
    let body = sent();
    assert_eq!(
        body["tools"],
        json!([{"name": "get_weather", "description": "Weather in a city",
                "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}])
    );
    assert_eq!(
        body["tool_choice"],
        json!({"type": "tool", "name": "get_weather"})
    );
    assert_eq!(
        body["messages"][0]["content"],
        json!([{"type": "text", "text": "Paris"},
               {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}])
    );

    let reply = chat(json!({"model": model, "tools": tools, "messages": [
        {"role": "user", "content": "Paris"},
        {"role": "assistant", "content": null, "tool_calls": [{"id": call["id"], "type": "function",
            "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
        {"role": "tool", "tool_call_id": call["id"], "content": "18C and sunny"}]}))
    .await;
    assert_eq!(reply["choices"][0]["message"]["content"], "done");
    let body = sent();
    assert_eq!(
        body["messages"][1],
        json!({"role": "assistant", "content": [{"type": "tool_use", "id": call["id"], "name": "get_weather", "input": {"city": "Paris"}}]})
    );
    assert_eq!(
        body["messages"][2],
        json!({"role": "user", "content": [{"type": "tool_result", "tool_use_id": call["id"], "content": "18C and sunny"}]})
    );

    let schema =
        json!({"type": "object", "properties": {"echo": {"type": "string"}}, "required": ["echo"]});
    let reply = chat(json!({"model": model, "messages": [{"role": "user", "content": "structured"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "reply", "schema": schema}}}))
    .await;
    assert_eq!(structured_content(&reply), json!({"echo": "structured"}));
    assert_eq!(sent()["tools"][0]["input_schema"], schema);

    let reply = chat(json!({"model": model, "reasoning_effort": "low",
        "messages": [{"role": "user", "content": "think"}]}))
    .await;
    let message = &reply["choices"][0]["message"];
    assert_eq!(message["reasoning_content"], THINKING);
    assert_eq!(
        message["thinking_blocks"],
        json!([{"type": "thinking", "thinking": THINKING, "signature": SIGNATURE}])
    );
    assert_eq!(
        sent()["thinking"],
        json!({"type": "enabled", "budget_tokens": 1024})
    );
}

/// An OpenAI-format provider (OpenAI, Azure, the registry) gets what the client wrote, with
/// only `model` (`sent_model`) changed and, on streams, usage asked for: images, a JSON
/// schema, `reasoning_effort` and tools reach it as they are, and its tool calls come back,
/// whole and as streamed argument deltas. `sent` reads the body the provider received last.
pub async fn openai_format_relays_tools_images_json_and_reasoning(
    gateway: &TestGateway,
    model: &str,
    sent_model: Option<&str>,
    sent: impl Fn() -> Value,
) {
    let tools = json!([{"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]);
    let mut body = json!({"model": model, "reasoning_effort": "low", "max_completion_tokens": 64,
        "messages": [{"role": "user", "content": [
            {"type": "text", "text": "caption this"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"}}]}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "caption", "strict": true, "schema": {
            "type": "object", "properties": {"caption": {"type": "string"}}, "required": ["caption"],
            "additionalProperties": false}}}});
    let response = post_chat(gateway, &body).await;
    assert_eq!(response.status(), 200);
    let mut expected = body.clone();
    match sent_model {
        Some(name) => expected["model"] = json!(name),
        None => {
            expected.as_object_mut().unwrap().remove("model");
        }
    }
    let mut received = sent();
    if sent_model.is_none() {
        received.as_object_mut().unwrap().remove("model");
    }
    assert_eq!(received, expected, "relayed as written");

    body = json!({"model": model, "tools": tools, "tool_choice": "required",
        "messages": [{"role": "user", "content": "Paris"}]});
    let reply: Value = post_chat(gateway, &body).await.json().await.unwrap();
    assert_eq!(
        reply["choices"][0]["finish_reason"], "tool_calls",
        "{reply}"
    );
    assert_eq!(
        reply["choices"][0]["message"]["tool_calls"][0]["function"]["name"],
        "get_weather"
    );
    assert_eq!(sent()["tools"], tools);

    body["stream"] = json!(true);
    let chunks = chunks(&read_events(post_chat(gateway, &body).await).await);
    let arguments: String = chunks
        .iter()
        .filter_map(|chunk| {
            chunk["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"].as_str()
        })
        .collect();
    let arguments: Value = serde_json::from_str(&arguments).unwrap();
    assert_eq!(arguments, json!({"echo": "Paris"}));
    assert!(
        chunks
            .iter()
            .any(|chunk| chunk["choices"][0]["finish_reason"] == "tool_calls")
    );
    assert!(
        chunks
            .iter()
            .all(|chunk| chunk.get("usage").is_none_or(Value::is_null)),
        "the usage chunk the gateway asked for is not shown"
    );
}
