//! Every error a client can meet, in OpenAI's shape with the right status.

use std::time::Duration;

use serde_json::{Value, json};
use tollgate_testkit::MockOpenAi;

use crate::harness::*;

async fn error_of(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    assert_eq!(response.headers()["content-type"], "application/json");
    let body: Value = response.json().await.unwrap();
    let error = &body["error"];
    for field in ["message", "type", "param", "code"] {
        assert!(
            error.get(field).is_some(),
            "error body lacks `{field}`: {body}"
        );
    }
    (status, error.clone())
}

fn chat(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "hi"}]})
}

/// A chat request for `model` that the gateway refuses: its status and `error` object.
async fn chat_error(gateway: &TestGateway, model: &str) -> (u16, Value) {
    error_of(
        gateway
            .post("/v1/chat/completions")
            .json(&chat(model))
            .send()
            .await
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn malformed_and_incomplete_bodies_are_400_naming_the_field() {
    let gateway = TestGateway::start(&config_with_models(
        "  - model_name: echo\n    litellm_params:\n      model: mock/echo\n",
    ))
    .await;

    let (status, error) = error_of(
        gateway
            .post("/v1/chat/completions")
            .body("{\"model\": \"echo\", ")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(error["code"], "invalid_json");

    let (status, error) = error_of(
        gateway
            .post("/v1/chat/completions")
            .json(&json!({"messages": []}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, error["param"].as_str()), (400, Some("model")));

    let (status, error) = error_of(
        gateway
            .post("/v1/chat/completions")
            .json(&json!({"model": "echo", "messages": [], "stream": "yes"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, error["param"].as_str()), (400, Some("stream")));
    assert!(error["message"].as_str().unwrap().contains("boolean"));

    let (status, error) = error_of(
        gateway
            .post("/v1/chat/completions")
            .json(&json!({"model": "echo"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, error["param"].as_str()), (400, Some("messages")));

    let (status, error) = error_of(
        gateway
            .post("/v1/embeddings")
            .json(&json!({"model": "echo"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, error["param"].as_str()), (400, Some("input")));

    let (status, _) = error_of(
        gateway
            .post("/v1/chat/completions")
            .json(&json!(["not", "an", "object"]))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn an_unknown_model_is_404() {
    let gateway = TestGateway::start(&config_with_models(
        "  - model_name: echo\n    litellm_params:\n      model: mock/echo\n",
    ))
    .await;
    let (status, error) = chat_error(&gateway, "gpt-5-turbo").await;
    assert_eq!(status, 404);
    assert_eq!(error["code"], "model_not_found");
    assert!(error["message"].as_str().unwrap().contains("gpt-5-turbo"));
}

#[tokio::test]
async fn a_body_over_the_limit_is_413() {
    let yaml = format!(
        "general_settings:\n  master_key: {MASTER_KEY}\n  max_request_size_mb: 0.001\nmodel_list:\n  - model_name: echo\n    litellm_params:\n      model: mock/echo\n"
    );
    let gateway = TestGateway::start(&yaml).await;
    let big = json!({"model": "echo", "messages": [{"role": "user", "content": "x".repeat(2000)}]});
    let (status, error) = error_of(
        gateway
            .post("/v1/chat/completions")
            .json(&big)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 413);
    assert_eq!(error["code"], "request_too_large");

    // Chunked, so no content-length tells in advance.
    let body = reqwest::Body::wrap(http_body_util::Full::new(bytes::Bytes::from(
        big.to_string(),
    )));
    let chunked = gateway
        .post("/v1/chat/completions")
        .header("transfer-encoding", "chunked")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(chunked.status(), 413);

    let small = gateway
        .post("/v1/chat/completions")
        .json(&chat("echo"))
        .send()
        .await
        .unwrap();
    assert_eq!(small.status(), 200);
}

#[tokio::test]
async fn an_unreachable_provider_is_502() {
    let closed_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let gateway = TestGateway::start(&config_with_models(&openai_model(
        "m",
        "gpt-4o",
        &format!("http://127.0.0.1:{closed_port}/v1"),
    )))
    .await;
    let (status, error) = chat_error(&gateway, "m").await;
    assert_eq!(status, 502);
    assert_eq!(error["code"], "upstream_unreachable");
    assert!(
        error["message"].as_str().unwrap().contains("refused"),
        "{error}"
    );
}

#[tokio::test]
async fn a_provider_slower_than_the_timeout_is_504() {
    let mock = MockOpenAi::start().await;
    let models = format!(
        "  - model_name: m\n    litellm_params:\n      model: openai/slow\n      api_base: {}\n      api_key: k\n      timeout: 0.3\n",
        mock.base_url()
    );
    let gateway = TestGateway::start(&config_with_models(&models)).await;
    let started = std::time::Instant::now();
    let (status, error) = chat_error(&gateway, "m").await;
    assert_eq!(status, 504);
    assert_eq!(error["code"], "upstream_timeout");
    assert!(started.elapsed() < Duration::from_secs(5));
    // The abandoned provider call is cancelled, not left running.
    assert!(mock.wait_for_cancelled(1, Duration::from_secs(5)).await);
}

/// A provider host that never completes the TCP handshake (its listen queue is full, so the
/// kernel drops the SYNs): the deployment's `connect_timeout` ends the attempt, well before
/// its request `timeout`.
#[tokio::test]
async fn a_provider_that_never_accepts_is_given_up_at_the_connect_timeout() {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(0).unwrap();
    let address = listener.local_addr().unwrap();
    // Fill the listen queue: connections it takes stay open and unaccepted; the first one
    // that does not complete shows the queue full.
    let mut queued = Vec::new();
    loop {
        match tokio::time::timeout(
            Duration::from_millis(200),
            tokio::net::TcpStream::connect(address),
        )
        .await
        {
            Ok(stream) => queued.push(stream.unwrap()),
            Err(_) => break,
        }
        assert!(queued.len() < 64, "the listen queue never filled");
    }

    let models = format!(
        "  - model_name: m\n    litellm_params:\n      model: openai/gpt-4o\n      api_base: http://{address}/v1\n      api_key: k\n      timeout: 30\n      connect_timeout: 0.3\n"
    );
    let gateway = TestGateway::start(&format!(
        "{}router_settings:\n  num_retries: 0\n",
        config_with_models(&models)
    ))
    .await;
    let started = std::time::Instant::now();
    let (status, error) = chat_error(&gateway, "m").await;
    let elapsed = started.elapsed();
    assert_eq!(status, 504, "{error}");
    assert_eq!(error["code"], "upstream_timeout", "{error}");
    assert_eq!(
        error["message"],
        format!("openai at {address} did not accept a connection within 0.3s.")
    );
    assert!(elapsed >= Duration::from_millis(250), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
    drop(listener);
}

#[tokio::test]
async fn provider_errors_keep_their_status_and_message() {
    let mock = MockOpenAi::start().await;
    let models: String = ["error-429", "error-500", "error-400", "html-error"]
        .iter()
        .map(|model| openai_model(model, model, &mock.base_url()))
        .collect();
    let gateway = TestGateway::start(&config_with_models(&models)).await;

    let response = gateway
        .post("/v1/chat/completions")
        .json(&chat("error-429"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["retry-after"], "7");
    let (status, error) = error_of(response).await;
    assert_eq!(status, 429);
    assert_eq!(error["type"], "rate_limit_error");
    assert_eq!(error["code"], "rate_limit_exceeded");
    assert_eq!(error["message"], "Rate limit reached for requests");

    let (status, error) = chat_error(&gateway, "error-500").await;
    assert_eq!(status, 500);
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("server had an error")
    );

    let (status, error) = chat_error(&gateway, "error-400").await;
    assert_eq!(status, 400);
    assert_eq!(error["code"], "context_length_exceeded");

    let (status, error) = chat_error(&gateway, "html-error").await;
    assert_eq!(status, 502);
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("502 Bad Gateway")
    );
}

#[tokio::test]
async fn a_provider_key_echoed_in_an_error_never_reaches_the_client() {
    let mock = MockOpenAi::start().await;
    let gateway = TestGateway::start(&config_with_models(&openai_model(
        "m",
        "error-401",
        &mock.base_url(),
    )))
    .await;
    let response = gateway
        .post("/v1/chat/completions")
        .json(&chat("m"))
        .send()
        .await
        .unwrap();
    let text = response.text().await.unwrap();
    assert!(!text.contains("sk-provider-secret-key"), "{text}");
    assert!(text.contains("[REDACTED]"), "{text}");
}

#[tokio::test]
async fn unknown_paths_and_methods_get_openai_shaped_errors() {
    let gateway = TestGateway::start(&config_with_models(
        "  - model_name: echo\n    litellm_params:\n      model: mock/echo\n",
    ))
    .await;
    let (status, error) = error_of(gateway.post("/v1/not-a-route").send().await.unwrap()).await;
    assert_eq!(status, 404);
    assert_eq!(error["code"], "unknown_url");
    let (status, _) = error_of(gateway.get("/v1/chat/completions").send().await.unwrap()).await;
    assert_eq!(status, 405);
}

#[tokio::test]
async fn a_stream_that_breaks_mid_way_ends_with_an_error_event() {
    let mock = MockOpenAi::start().await;
    let gateway = TestGateway::start(&config_with_models(&openai_model(
        "m",
        "break",
        &mock.base_url(),
    )))
    .await;
    let response = gateway
        .post("/v1/chat/completions")
        .json(&json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": "a b c"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let events = read_events(response).await;
    let last: Value = serde_json::from_str(events.last().unwrap()).unwrap();
    assert_eq!(last["error"]["code"], "upstream_unreachable", "{events:?}");
    assert!(
        !events.iter().any(|e| e == "[DONE]"),
        "a broken stream must not look complete"
    );
}

#[tokio::test]
async fn a_stream_that_outlives_the_timeout_ends_with_an_error_event() {
    let mock = MockOpenAi::start().await;
    let models = format!(
        "  - model_name: m\n    litellm_params:\n      model: openai/stall\n      api_base: {}\n      api_key: k\n      timeout: 0.5\n",
        mock.base_url()
    );
    let gateway = TestGateway::start(&config_with_models(&models)).await;
    let response = gateway
        .post("/v1/chat/completions")
        .json(&json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": "a b c"}]}))
        .send()
        .await
        .unwrap();
    let events = read_events(response).await;
    assert!(events.len() >= 2, "{events:?}");
    let last: Value = serde_json::from_str(events.last().unwrap()).unwrap();
    assert_eq!(last["error"]["code"], "upstream_timeout");
    assert!(
        mock.wait_for_cancelled(1, Duration::from_secs(5)).await,
        "the stalled provider stream is closed"
    );
}

#[tokio::test]
async fn a_stream_with_no_first_event_in_time_is_a_504_not_a_broken_stream() {
    let mock = MockOpenAi::start().await;
    let models = format!(
        "  - model_name: m\n    litellm_params:\n      model: openai/silent\n      api_base: {}\n      api_key: k\n      stream_timeout: 0.3\n",
        mock.base_url()
    );
    let gateway = TestGateway::start(&config_with_models(&models)).await;
    let response = gateway
        .post("/v1/chat/completions")
        .json(
            &json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": "hi"}]}),
        )
        .send()
        .await
        .unwrap();
    let (status, error) = error_of(response).await;
    assert_eq!(status, 504);
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("no stream event within 0.3s"),
        "{error}"
    );
    assert!(mock.wait_for_cancelled(1, Duration::from_secs(5)).await);
}
