//! Model listing and health probes.

use serde_json::Value;
use tollgate_testkit::{Fault, MockAnthropic, MockOpenAi};

use crate::harness::*;

const TWO_GROUPS: &str = "  - model_name: gpt-4o\n    litellm_params:\n      model: mock/a\n  - model_name: gpt-4o\n    litellm_params:\n      model: mock/b\n  - model_name: team/embedder\n    litellm_params:\n      model: mock/c\n";

#[tokio::test]
async fn models_lists_each_group_once() {
    let gateway = TestGateway::start(&config_with_models(TWO_GROUPS)).await;
    let list: Value = gateway
        .get("/v1/models")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["object"], "list");
    let ids: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["gpt-4o", "team/embedder"]);
    assert_eq!(list["data"][0]["object"], "model");
    assert!(list["data"][0]["created"].as_u64().unwrap() > 1_600_000_000);
}

#[tokio::test]
async fn one_model_by_id_including_ids_with_slashes() {
    let gateway = TestGateway::start(&config_with_models(TWO_GROUPS)).await;
    let model: Value = gateway
        .get("/v1/models/team/embedder")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(model["id"], "team/embedder");
    assert_eq!(model["owned_by"], "mock");

    let missing = gateway.get("/v1/models/nope").send().await.unwrap();
    assert_eq!(missing.status(), 404);
    let body: Value = missing.json().await.unwrap();
    assert_eq!(body["error"]["code"], "model_not_found");
}

#[tokio::test]
async fn health_probes_answer_without_a_key() {
    let gateway = TestGateway::start(&config_with_models(TWO_GROUPS)).await;
    for path in ["/health/liveliness", "/health/liveness"] {
        let response = gateway
            .client
            .get(format!("{}{path}", gateway.url))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.json::<Value>().await.unwrap(), "I'm alive!");
    }
    let readiness = gateway
        .client
        .get(format!("{}/health/readiness", gateway.url))
        .send()
        .await
        .unwrap();
    assert_eq!(readiness.status(), 200);
    assert_eq!(
        readiness.json::<Value>().await.unwrap()["status"],
        "healthy"
    );

    gateway.gateway.start_draining();
    let draining = gateway
        .client
        .get(format!("{}/health/readiness", gateway.url))
        .send()
        .await
        .unwrap();
    assert_eq!(draining.status(), 503);
}

fn probed(model_name: &str, id: &str, model: &str, api_base: &str, mode: &str) -> String {
    format!(
        "  - model_name: {name}\n    litellm_params:\n      model: {model}\n      api_base: {api_base}\n      api_key: sk-provider-secret-key\n    model_info:\n      id: {id}\n      mode: {mode}\n",
        name = model_name
    )
}

fn entries(report: &Value, list: &str) -> Vec<String> {
    let mut ids: Vec<String> = report[list]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["model_id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn health_probes_every_deployment_by_its_mode_and_names_the_failures() {
    let (good, bad) = (MockOpenAi::start().await, MockOpenAi::start().await);
    let anthropic = MockAnthropic::start().await;
    bad.faults.fail_all(Fault::status(500));
    let models = [
        probed(
            "gpt",
            "good-chat",
            "openai/gpt-4o-mini",
            &good.base_url(),
            "chat",
        ),
        probed(
            "gpt",
            "bad-chat",
            "openai/gpt-4o-mini",
            &bad.base_url(),
            "chat",
        ),
        probed(
            "claude",
            "claude",
            "anthropic/claude-sonnet-4-5",
            &anthropic.root_url(),
            "chat",
        ),
        probed(
            "embedder",
            "embedder",
            "openai/text-embedding-3-small",
            &good.base_url(),
            "embedding",
        ),
    ];
    let gateway = TestGateway::start(&config_with_models(&models.concat())).await;

    let unauthenticated = reqwest::get(format!("{}/health", gateway.url))
        .await
        .unwrap();
    assert_eq!(unauthenticated.status(), 401);

    let response = gateway.get("/health").send().await.unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    assert!(!text.contains("sk-provider-secret-key"));
    let report: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(report["healthy_count"], 3);
    assert_eq!(report["unhealthy_count"], 1);
    assert_eq!(
        entries(&report, "healthy_endpoints"),
        ["claude", "embedder", "good-chat"]
    );
    assert_eq!(entries(&report, "unhealthy_endpoints"), ["bad-chat"]);
    let failed = &report["unhealthy_endpoints"][0];
    assert_eq!(failed["status_code"], 500);
    assert_eq!(failed["model_name"], "gpt");
    assert!(
        failed["error"]
            .as_str()
            .is_some_and(|error| !error.is_empty())
    );

    // The cheapest call per mode: a one-token chat, a one-input embedding.
    let paths: Vec<String> = good.requests().iter().map(|r| r.path.clone()).collect();
    assert!(
        paths.iter().any(|path| path.ends_with("/chat/completions")),
        "{paths:?}"
    );
    assert!(
        paths.iter().any(|path| path.ends_with("/embeddings")),
        "{paths:?}"
    );
    let chat = good
        .requests()
        .into_iter()
        .find(|r| r.path.ends_with("/chat/completions"))
        .unwrap();
    assert_eq!(chat.body["max_tokens"], 1);
    assert_eq!(anthropic.requests()[0].body["max_tokens"], 1);

    // One group only; an unknown one is a 404.
    let report: Value = gateway
        .get("/health?model=claude")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(report["healthy_count"], 1);
    assert_eq!(report["unhealthy_count"], 0);
    let response = gateway.get("/health?model=nope").send().await.unwrap();
    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn background_health_checks_cool_down_the_deployments_that_fail_them() {
    let (good, bad) = (MockOpenAi::start().await, MockOpenAi::start().await);
    bad.faults.fail_all(Fault::status(500));
    let models = [
        probed(
            "gpt",
            "good",
            "openai/gpt-4o-mini",
            &good.base_url(),
            "chat",
        ),
        probed("gpt", "bad", "openai/gpt-4o-mini", &bad.base_url(), "chat"),
    ];
    // Requests alone would never cool `bad` (1000 failures allowed a minute) and are not
    // retried: only the probes can keep clients away from it.
    let gateway = TestGateway::start(&format!(
        "general_settings:\n  master_key: {MASTER_KEY}\n  background_health_checks: true\n  health_check_interval: 0.2\nmodel_list:\n{}router_settings:\n  num_retries: 0\n  allowed_fails: 1000\n  cooldown_time: 60\n",
        models.concat()
    ))
    .await;

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let report: Value = gateway
            .get("/health")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if report["unhealthy_count"] == 1 {
            assert_eq!(entries(&report, "unhealthy_endpoints"), ["bad"]);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no background round: {report}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    for _ in 0..30 {
        let response = gateway
            .post("/v1/chat/completions")
            .json(&serde_json::json!({"model": "gpt", "messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["x-tollgate-model-id"], "good");
    }
}
