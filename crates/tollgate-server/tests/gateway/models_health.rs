//! Model listing and health probes.

use serde_json::Value;

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
