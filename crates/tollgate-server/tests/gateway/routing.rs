//! Routing and reliability through real HTTP: retries on another deployment, `retry-after`
//! honoured, cooldowns that start and end, fallbacks to another provider, streams that fail
//! before or after their first byte, and the headers that say what happened.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tollgate_testkit::{Fault, MockAnthropic, MockGemini, MockOpenAi, MockProvider};

use crate::harness::{MASTER_KEY, TestGateway, post_chat, read_events, streamed_content};

/// An OpenAI-compatible deployment of group `name` with id `id`, plus extra litellm_params.
fn deployment(name: &str, id: &str, mock: &MockProvider, extra: &str) -> String {
    format!(
        "  - model_name: {name}\n    litellm_params:\n      model: openai/gpt-4o-mini\n      api_base: {}\n      api_key: sk-provider\n{extra}    model_info:\n      id: {id}\n",
        mock.base_url()
    )
}

/// An Anthropic deployment of group `claude` with id `id`.
fn claude_deployment(id: &str, mock: &MockProvider) -> String {
    format!(
        "  - model_name: claude\n    litellm_params:\n      model: anthropic/claude-sonnet-4-5\n      api_base: {}\n      api_key: sk-ant\n    model_info:\n      id: {id}\n",
        mock.root_url()
    )
}

fn config(deployments: &[String], router_settings: &str) -> String {
    format!(
        "general_settings:\n  master_key: {MASTER_KEY}\nmodel_list:\n{}router_settings:\n{router_settings}",
        deployments.concat()
    )
}

fn chat(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "ping"}]})
}

/// POSTs a one-message chat for `model`.
async fn send_chat(gateway: &TestGateway, model: &str) -> reqwest::Response {
    post_chat(gateway, &chat(model)).await
}

/// The ids `/v1/models` lists.
async fn listed_models(gateway: &TestGateway) -> Vec<String> {
    let list: Value = gateway
        .get("/v1/models")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|model| model["id"].as_str().unwrap().to_owned())
        .collect()
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .map(|value| value.to_str().unwrap())
        .unwrap_or_else(|| panic!("no {name} header"))
}

#[tokio::test]
async fn a_failing_deployment_is_retried_on_another_and_the_headers_say_so() {
    let (a, b) = (MockOpenAi::start().await, MockOpenAi::start().await);
    a.faults.fail_all(Fault::status(500));
    let gateway = TestGateway::start(&config(
        &[deployment("m", "a", &a, ""), deployment("m", "b", &b, "")],
        "  allowed_fails: 1000\n",
    ))
    .await;

    let mut retried = 0;
    for _ in 0..20 {
        let response = send_chat(&gateway, "m").await;
        assert_eq!(response.status(), 200);
        assert_eq!(header(&response, "x-tollgate-model-id"), "b");
        assert_eq!(header(&response, "x-litellm-model-id"), "b");
        assert_eq!(header(&response, "x-tollgate-model-group"), "m");
        assert_eq!(
            header(&response, "x-tollgate-api-base"),
            b.addr().to_string()
        );
        assert_eq!(header(&response, "x-tollgate-attempted-fallbacks"), "0");
        let retries: usize = header(&response, "x-tollgate-attempted-retries")
            .parse()
            .unwrap();
        assert_eq!(
            header(&response, "x-litellm-attempted-retries"),
            retries.to_string()
        );
        let overhead: f64 = header(&response, "x-tollgate-overhead-duration-ms")
            .parse()
            .unwrap();
        assert!((0.0..1000.0).contains(&overhead), "{overhead}");
        retried += retries;
    }
    // Every request that went to `a` first was retried once, on `b`.
    assert_eq!(retried, a.requests().len());
    assert!(
        retried > 0,
        "simple-shuffle sent nothing to a in 20 requests"
    );
    assert_eq!(b.requests().len(), 20);
}

#[tokio::test]
async fn a_rate_limited_deployment_cools_down_for_its_retry_after_then_serves_again() {
    let (a, b) = (MockOpenAi::start().await, MockOpenAi::start().await);
    let gateway = TestGateway::start(&config(
        &[deployment("m", "a", &a, ""), deployment("m", "b", &b, "")],
        "  cooldown_time: 30\n",
    ))
    .await;
    // Find `a` by sending until it has served once, then make it answer 429.
    while a.requests().is_empty() {
        let response = send_chat(&gateway, "m").await;
        assert_eq!(response.status(), 200);
    }
    a.faults.push(Fault::rate_limited(Duration::from_secs(1)));
    let limited_at = Instant::now();
    let mut served_by_a_again = None;
    for _ in 0..200 {
        let response = send_chat(&gateway, "m").await;
        assert_eq!(response.status(), 200, "{:?}", response.text().await);
        let served_by = header(&response, "x-tollgate-model-id").to_owned();
        if served_by == "a" && a.requests().len() > 2 {
            served_by_a_again = Some(limited_at.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The cooldown lasted the provider's retry-after (1 s), not cooldown_time (30 s).
    let back_after = served_by_a_again.expect("a came back");
    assert!(back_after >= Duration::from_millis(950), "{back_after:?}");
    assert!(back_after < Duration::from_secs(5), "{back_after:?}");
}

#[tokio::test]
async fn retry_after_is_waited_out_when_the_group_has_one_deployment() {
    let a = MockOpenAi::start().await;
    a.faults
        .push(Fault::rate_limited(Duration::from_millis(1200)));
    let gateway = TestGateway::start(&config(
        &[deployment("m", "a", &a, "")],
        "  num_retries: 1\n",
    ))
    .await;
    let started = Instant::now();
    let response = send_chat(&gateway, "m").await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-tollgate-attempted-retries"), "1");
    assert!(
        started.elapsed() >= Duration::from_millis(1200),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(a.requests().len(), 2);
    let overhead: f64 = header(&response, "x-tollgate-overhead-duration-ms")
        .parse()
        .unwrap();
    assert!(
        overhead < 500.0,
        "the wait is not the gateway's overhead: {overhead}"
    );
}

#[tokio::test]
async fn bad_requests_are_neither_retried_nor_fallen_back() {
    let (a, b) = (MockOpenAi::start().await, MockOpenAi::start().await);
    a.faults.fail_all(Fault::status(400));
    let gateway = TestGateway::start(&config(
        &[
            deployment("m", "a", &a, ""),
            deployment("backup", "b", &b, ""),
        ],
        "  fallbacks: [{m: [backup]}]\n",
    ))
    .await;
    let response = send_chat(&gateway, "m").await;
    assert_eq!(response.status(), 400);
    assert_eq!(a.requests().len(), 1);
    assert!(b.requests().is_empty());
}

#[tokio::test]
async fn a_dead_group_falls_back_to_another_provider() {
    let openai = MockOpenAi::start().await;
    openai.faults.fail_all(Fault::status(503));
    let anthropic = MockAnthropic::start().await;
    let models = [
        deployment("gpt", "openai-1", &openai, ""),
        claude_deployment("claude-1", &anthropic),
    ];
    let gateway = TestGateway::start(&config(
        &models,
        "  num_retries: 0\n  fallbacks: [{gpt: [claude]}]\n",
    ))
    .await;

    let response = send_chat(&gateway, "gpt").await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-tollgate-model-group"), "claude");
    assert_eq!(header(&response, "x-tollgate-model-id"), "claude-1");
    assert_eq!(header(&response, "x-tollgate-attempted-fallbacks"), "1");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["choices"][0]["message"]["content"], "ping");

    let mut stream = chat("gpt");
    stream["stream"] = json!(true);
    let response = post_chat(&gateway, &stream).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-tollgate-model-group"), "claude");
    assert_eq!(streamed_content(&read_events(response).await), "ping");
    assert_eq!(openai.requests().len(), 2);
}

#[tokio::test]
async fn a_request_names_its_own_fallbacks_which_no_provider_sees() {
    let openai = MockOpenAi::start().await;
    openai.faults.fail_all(Fault::status(503));
    let anthropic = MockAnthropic::start().await;
    let spare = MockOpenAi::start().await;
    let models = [
        deployment("gpt", "openai-1", &openai, ""),
        deployment("spare", "spare-1", &spare, ""),
        claude_deployment("claude-1", &anthropic),
    ];
    // The configured fallback is `spare`; the request's own list replaces it.
    let gateway = TestGateway::start(&config(
        &models,
        "  num_retries: 0\n  fallbacks: [{gpt: [spare]}]\n",
    ))
    .await;

    let mut body = chat("gpt");
    body["fallbacks"] = json!(["claude"]);
    let response = post_chat(&gateway, &body).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-tollgate-model-group"), "claude");
    assert!(spare.requests().is_empty());
    let to_openai = &openai.requests()[0];
    assert!(
        to_openai.body.get("fallbacks").is_none(),
        "{}",
        to_openai.body
    );
    assert_eq!(to_openai.body["messages"], body["messages"]);
    let to_anthropic = &anthropic.requests()[0];
    assert!(
        to_anthropic.body.get("fallbacks").is_none(),
        "{}",
        to_anthropic.body
    );

    // A name no group serves is refused before anything is sent.
    body["fallbacks"] = json!(["gpt-5-nowhere"]);
    let response = post_chat(&gateway, &body).await;
    assert_eq!(response.status(), 400);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["param"], "fallbacks");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("gpt-5-nowhere")
    );
    assert_eq!(openai.requests().len(), 1);
}

#[tokio::test]
async fn context_window_errors_go_to_the_larger_group() {
    let (small, large) = (MockOpenAi::start().await, MockOpenAi::start().await);
    let gateway = TestGateway::start(&config(
        &[
            format!(
                "  - model_name: small\n    litellm_params:\n      model: openai/error-400\n      api_base: {}\n      api_key: sk-provider\n",
                small.base_url()
            ),
            deployment("large", "large-1", &large, ""),
        ],
        "  context_window_fallbacks: [{small: [large]}]\n",
    ))
    .await;
    // The mock answers OpenAI's context_length_exceeded for model `error-400`.
    let response = send_chat(&gateway, "small").await;
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
    assert_eq!(header(&response, "x-tollgate-model-group"), "large");
    assert_eq!(small.requests().len(), 1);
}

#[tokio::test]
async fn pre_call_checks_keep_long_prompts_from_small_context_windows() {
    let (small, large, alone) = (
        MockOpenAi::start().await,
        MockOpenAi::start().await,
        MockOpenAi::start().await,
    );
    let windowed = |name: &str, id: &str, mock: &MockProvider, window: u64| {
        format!(
            "  - model_name: {name}\n    litellm_params:\n      model: openai/gpt-4o-mini\n      api_base: {}\n      api_key: sk-provider\n    model_info:\n      id: {id}\n      max_input_tokens: {window}\n",
            mock.base_url()
        )
    };
    let gateway = TestGateway::start(&config(
        &[
            windowed("m", "small", &small, 100),
            windowed("m", "large", &large, 100_000),
            windowed("tiny", "alone", &alone, 100),
        ],
        "  enable_pre_call_checks: true\n  context_window_fallbacks: [{tiny: [m]}]\n",
    ))
    .await;
    let long_prompt = "every word here counts as a token ".repeat(60);
    let long = json!({"model": "m", "messages": [{"role": "user", "content": long_prompt}]});

    // Within the group: only the deployment whose window fits is chosen.
    for _ in 0..10 {
        let response = post_chat(&gateway, &long).await;
        assert_eq!(response.status(), 200);
        assert_eq!(header(&response, "x-tollgate-model-id"), "large");
    }
    assert!(small.requests().is_empty());
    // Short prompts still go anywhere.
    for _ in 0..20 {
        send_chat(&gateway, "m").await;
    }
    assert!(!small.requests().is_empty());

    // A group with no deployment large enough moves to its context-window fallbacks before any
    // call.
    let mut to_tiny = long.clone();
    to_tiny["model"] = json!("tiny");
    let response = post_chat(&gateway, &to_tiny).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-tollgate-model-group"), "m");
    assert_eq!(header(&response, "x-tollgate-attempted-fallbacks"), "1");
    assert!(alone.requests().is_empty());

    // Anthropic clients are counted too; with nowhere to go, the answer is OpenAI's
    // context_length_exceeded without a call.
    let gateway = TestGateway::start(&config(
        &[windowed("tiny", "alone", &alone, 100)],
        "  enable_pre_call_checks: true\n",
    ))
    .await;
    let response = post_chat(&gateway, &to_tiny).await;
    assert_eq!(response.status(), 400);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["code"], "context_length_exceeded");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("at most 100 input tokens")
    );
    let response = gateway
        .post("/v1/messages")
        .json(&json!({"model": "tiny", "max_tokens": 5, "messages": [{"role": "user", "content": long_prompt}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert!(alone.requests().is_empty());
}

#[tokio::test]
async fn when_every_deployment_is_cooling_the_answer_is_429_with_retry_after() {
    let (a, b) = (MockOpenAi::start().await, MockOpenAi::start().await);
    for mock in [&a, &b] {
        mock.faults
            .fail_all(Fault::rate_limited(Duration::from_secs(30)));
    }
    let gateway = TestGateway::start(&config(
        &[deployment("m", "a", &a, ""), deployment("m", "b", &b, "")],
        "  num_retries: 3\n",
    ))
    .await;
    // First request: both answer 429 and cool down; the provider's error is relayed.
    let response = send_chat(&gateway, "m").await;
    assert_eq!(response.status(), 429);
    assert_eq!(a.requests().len() + b.requests().len(), 2);
    // Next: nothing is tried at all.
    let response = send_chat(&gateway, "m").await;
    assert_eq!(response.status(), 429);
    let retry_after: u64 = header(&response, "retry-after").parse().unwrap();
    assert!((29..=30).contains(&retry_after), "{retry_after}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "no_deployments_available");
    assert!(body["error"]["message"].as_str().unwrap().contains("`m`"));
    assert_eq!(a.requests().len() + b.requests().len(), 2);
}

#[tokio::test]
async fn a_timeout_before_the_headers_is_retried_elsewhere() {
    let (slow, fast) = (MockOpenAi::start().await, MockOpenAi::start().await);
    slow.faults.fail_all(Fault::Delay(Duration::from_secs(10)));
    let gateway = TestGateway::start(&config(
        &[
            deployment("m", "slow", &slow, "      timeout: 0.3\n"),
            deployment("m", "fast", &fast, "      timeout: 0.3\n"),
        ],
        "  routing_strategy: least-busy\n",
    ))
    .await;
    let started = Instant::now();
    for _ in 0..4 {
        let response = send_chat(&gateway, "m").await;
        assert_eq!(response.status(), 200);
        assert_eq!(header(&response, "x-tollgate-model-id"), "fast");
    }
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn a_stream_that_fails_before_its_first_byte_is_retried_transparently() {
    let (a, b) = (MockOpenAi::start().await, MockOpenAi::start().await);
    let gateway = TestGateway::start(&config(
        &[deployment("m", "a", &a, ""), deployment("m", "b", &b, "")],
        "  allowed_fails: 1000\n",
    ))
    .await;
    // Each fails its next request: the first two attempts fail, the third streams.
    a.faults.push(Fault::status(502));
    b.faults.push(Fault::status(502));
    let mut body = chat("m");
    body["stream"] = json!(true);
    let response = post_chat(&gateway, &body).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-tollgate-attempted-retries"), "2");
    assert_eq!(a.requests().len() + b.requests().len(), 3);
    assert_eq!(streamed_content(&read_events(response).await), "ping");
}

#[tokio::test]
async fn a_stream_cut_after_its_first_byte_ends_with_an_error_event() {
    let a = MockOpenAi::start().await;
    let gateway = TestGateway::start(&config(
        &[deployment("m", "a", &a, "      timeout: 0.5\n")],
        "  num_retries: 0\n",
    ))
    .await;
    let mut body = chat("m");
    body["stream"] = json!(true);
    for fault in [Fault::ResetMidStream, Fault::StallMidStream] {
        a.faults.push(fault.clone());
        let response = post_chat(&gateway, &body).await;
        assert_eq!(response.status(), 200);
        let events = read_events(response).await;
        assert_eq!(streamed_content(&events), "partial ", "{fault:?}");
        let last: Value = serde_json::from_str(events.last().unwrap()).unwrap();
        assert!(
            last["error"]["message"].is_string(),
            "{fault:?}: {events:?}"
        );
    }
}

#[tokio::test]
async fn a_stream_that_goes_silent_ends_after_the_idle_timeout_in_the_clients_format() {
    let a = MockOpenAi::start().await;
    let gateway = TestGateway::start(&config(
        &[deployment(
            "m",
            "a",
            &a,
            "      timeout: 60\n      stream_idle_timeout: 0.3\n",
        )],
        "  num_retries: 0\n",
    ))
    .await;
    let mut body = chat("m");
    body["stream"] = json!(true);
    a.faults.push(Fault::StallMidStream);
    let started = Instant::now();
    let response = post_chat(&gateway, &body).await;
    let events = read_events(response).await;
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(streamed_content(&events), "partial ");
    let last: Value = serde_json::from_str(events.last().unwrap()).unwrap();
    assert_eq!(last["error"]["code"], "upstream_timeout", "{events:?}");
    assert!(
        last["error"]["message"]
            .as_str()
            .unwrap()
            .contains("sent nothing for 0.3s"),
        "{last}"
    );

    // An Anthropic client gets Anthropic's error event.
    a.faults.push(Fault::StallMidStream);
    let response = gateway
        .post("/v1/messages")
        .json(&json!({
            "model": "m", "max_tokens": 10, "stream": true,
            "messages": [{"role": "user", "content": "ping"}],
        }))
        .send()
        .await
        .unwrap();
    let text = response.text().await.unwrap();
    assert!(text.contains("event: error"), "{text}");
    assert!(!text.contains("event: message_stop"), "{text}");
}

#[tokio::test]
async fn malformed_provider_json_is_retried_on_another_deployment() {
    let anthropic = [MockAnthropic::start().await, MockAnthropic::start().await];
    let models: Vec<String> = anthropic
        .iter()
        .enumerate()
        .map(|(index, mock)| claude_deployment(&format!("claude-{index}"), mock))
        .collect();
    let gateway = TestGateway::start(&config(&models, "  allowed_fails: 1000\n")).await;
    // Each answers its next request with a cut-short body: two failed attempts, then an answer.
    for mock in &anthropic {
        mock.faults.push(Fault::MalformedJson);
    }
    let response = send_chat(&gateway, "claude").await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-tollgate-attempted-retries"), "2");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["choices"][0]["message"]["content"], "ping");
}

#[tokio::test]
async fn aliases_route_to_their_group_and_hidden_ones_are_not_listed() {
    let a = MockOpenAi::start().await;
    let gateway = TestGateway::start(&config(
        &[deployment("m", "a", &a, "")],
        "  model_group_alias: {gpt-4: m, internal: {model: m, hidden: true}}\n",
    ))
    .await;
    for alias in ["gpt-4", "internal"] {
        let response = send_chat(&gateway, alias).await;
        assert_eq!(response.status(), 200);
        assert_eq!(header(&response, "x-tollgate-model-group"), "m");
    }
    let ids = listed_models(&gateway).await;
    assert_eq!(ids, ["m", "gpt-4"]);
}

/// 2,000 requests, 40 at a time, over three deployments; one dies (connection refused) half
/// way. No client sees a failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_dying_mid_run_is_invisible_to_clients() {
    let mocks: Vec<MockProvider> = vec![
        MockOpenAi::start().await,
        MockOpenAi::start().await,
        MockOpenAi::start().await,
    ];
    let models: Vec<String> = mocks
        .iter()
        .enumerate()
        .map(|(index, mock)| deployment("m", &format!("d{index}"), mock, ""))
        .collect();
    let gateway = Arc::new(TestGateway::start(&config(&models, "  num_retries: 2\n")).await);
    let mut mocks = mocks.into_iter();
    let doomed = mocks.next().unwrap();
    let survivors: Vec<MockProvider> = mocks.collect();

    let done = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..40 {
        let gateway = gateway.clone();
        let done = done.clone();
        workers.push(tokio::spawn(async move {
            let mut served = HashMap::<String, usize>::new();
            for _ in 0..50 {
                let response = send_chat(&gateway, "m").await;
                let status = response.status();
                let id = response.headers()["x-tollgate-model-id"]
                    .to_str()
                    .unwrap()
                    .to_owned();
                assert_eq!(status, 200, "{:?}", response.text().await);
                *served.entry(id).or_default() += 1;
                done.fetch_add(1, Ordering::Relaxed);
            }
            served
        }));
    }
    while done.load(Ordering::Relaxed) < 1000 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    drop(doomed);
    let mut served = HashMap::<String, usize>::new();
    for worker in workers {
        for (id, count) in worker.await.expect("no client saw a failure") {
            *served.entry(id).or_default() += count;
        }
    }
    assert_eq!(served.values().sum::<usize>(), 2000);
    assert!(survivors.iter().all(|mock| mock.requests().len() > 300));
}

#[tokio::test]
async fn wildcard_names_route_any_matching_model_to_their_provider() {
    let (anthropic, gemini) = (MockAnthropic::start().await, MockGemini::start().await);
    let (team, catch_all, exact) = (
        MockOpenAi::start().await,
        MockOpenAi::start().await,
        MockOpenAi::start().await,
    );
    let wildcard = |name: &str, model: &str, base: String, key: &str| {
        format!(
            "  - model_name: \"{name}\"\n    litellm_params:\n      model: \"{model}\"\n      api_base: {base}\n      api_key: {key}\n"
        )
    };
    let models = [
        wildcard("*", "openai/*", catch_all.base_url(), "sk-provider"),
        wildcard("anthropic/*", "anthropic/*", anthropic.root_url(), "sk-ant"),
        wildcard(
            "gemini/*",
            "gemini/*",
            format!("{}/v1beta", gemini.root_url()),
            tollgate_testkit::gemini::API_KEY,
        ),
        wildcard("team/*", "openai/*", team.base_url(), "sk-provider"),
        deployment("gpt", "exact", &exact, ""),
    ];
    let gateway = TestGateway::start(&config(
        &models,
        "  num_retries: 0\n  fallbacks: [{\"anthropic/*\": [gpt]}]\n",
    ))
    .await;

    let response = send_chat(&gateway, "anthropic/claude-sonnet-4-5").await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        header(&response, "x-tollgate-model-group"),
        "anthropic/claude-sonnet-4-5"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["choices"][0]["message"]["content"], "ping");
    assert_eq!(anthropic.requests()[0].body["model"], "claude-sonnet-4-5");

    // A provider that names the model in the URL gets a URL for the requested model.
    let response = send_chat(&gateway, "gemini/gemini-2.5-flash").await;
    assert_eq!(response.status(), 200);
    assert!(
        gemini.requests()[0]
            .path
            .contains("/models/gemini-2.5-flash:generateContent"),
        "{}",
        gemini.requests()[0].path
    );

    // The `*` of the name fills the `*` of the model; the most specific pattern wins; an
    // exact name beats every pattern.
    for (model, mock, upstream_model) in [
        ("team/gpt-4o-mini", &team, "gpt-4o-mini"),
        ("gpt-4.1", &catch_all, "gpt-4.1"),
        ("gpt", &exact, "gpt-4o-mini"),
    ] {
        let response = send_chat(&gateway, model).await;
        assert_eq!(response.status(), 200, "{model}");
        let last = mock.requests().pop().unwrap();
        assert_eq!(last.body["model"], upstream_model, "{model}");
    }
    assert_eq!(team.requests().len(), 1);
    assert_eq!(catch_all.requests().len(), 1);

    // Retrievable by name, though not listed.
    let response = gateway
        .get("/v1/models/anthropic/claude-opus-4-1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let model: Value = response.json().await.unwrap();
    assert_eq!(model["id"], "anthropic/claude-opus-4-1");
    assert_eq!(model["owned_by"], "anthropic");
    let ids = listed_models(&gateway).await;
    assert_eq!(ids, ["gpt"]);

    // Fallbacks configured for the pattern apply to every model it serves.
    anthropic.faults.fail_all(Fault::status(503));
    let response = send_chat(&gateway, "anthropic/claude-haiku-4-5").await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-tollgate-model-group"), "gpt");
    assert_eq!(header(&response, "x-tollgate-attempted-fallbacks"), "1");
}
