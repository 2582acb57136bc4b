//! Several replicas on one store: a change made through one reaches the others within the
//! sync interval; a store that cannot be read leaves known keys working until the staleness
//! bound, then refuses virtual keys (never the master key) and says so in readiness.

use std::time::Duration;

use serde_json::{Value, json};
use tollgate_testkit::MockOpenAi;

use crate::harness::*;

fn config(mock: &tollgate_testkit::MockProvider, tollgate_settings: &str) -> String {
    format!(
        "{}tollgate_settings:\n{tollgate_settings}",
        config_with_models(&openai_model("gpt", "gpt-4o", &mock.base_url()))
    )
}

/// Polls `check` until it holds, failing after a generous deadline (this waits for a
/// background round; it does not time anything).
async fn eventually<F: AsyncFnMut() -> bool>(what: &str, mut check: F) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "never happened: {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn readiness(gateway: &TestGateway) -> (u16, Value) {
    let response = gateway.get("/health/readiness").send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test]
async fn changes_made_through_one_replica_reach_the_other() {
    let mock = MockOpenAi::start().await;
    let yaml = config(&mock, "  store_sync_interval: 50ms\n");
    let store = test_store().await;
    let backend = format!("{:?}", store.backend()).to_lowercase();
    let a = TestGateway::start_on(&yaml, store.clone()).await;
    let b = TestGateway::start_on(&yaml, store).await;

    let (_, created) = admin_post(&a, "/key/generate", json!({"team_id": null})).await;
    let key = created["key"].as_str().unwrap().to_owned();
    assert_eq!(
        chat_as(&a, &key, "gpt").await.0,
        200,
        "at once where it was made"
    );
    eventually("the new key works on the other replica", async || {
        chat_as(&b, &key, "gpt").await.0 == 200
    })
    .await;

    admin_post(&a, "/key/block", json!({"key": key})).await;
    eventually("the block reaches the other replica", async || {
        chat_as(&b, &key, "gpt").await.0 == 401
    })
    .await;
    admin_post(&a, "/key/unblock", json!({"key": key})).await;

    let (_, regenerated) = admin_post(&a, "/key/regenerate", json!({"key": key})).await;
    let new_key = regenerated["key"].as_str().unwrap().to_owned();
    eventually(
        "the regenerated key replaces the old one there too",
        async || {
            chat_as(&b, &new_key, "gpt").await.0 == 200 && chat_as(&b, &key, "gpt").await.0 == 401
        },
    )
    .await;

    // Teams travel too: a key of a team blocked through B is refused by A.
    admin_post(&b, "/team/new", json!({"team_id": "red"})).await;
    let (status, team_key) = admin_post(&b, "/key/generate", json!({"team_id": "red"})).await;
    assert_eq!(status, 200, "{team_key}");
    let team_key = team_key["key"].as_str().unwrap().to_owned();
    eventually("the team and its key reach A", async || {
        chat_as(&a, &team_key, "gpt").await.0 == 200
    })
    .await;
    admin_post(&b, "/team/block", json!({"team_id": "red"})).await;
    eventually("the team's block reaches A", async || {
        chat_as(&a, &team_key, "gpt").await.0 == 401
    })
    .await;

    admin_post(&a, "/key/delete", json!({"keys": [new_key]})).await;
    eventually("the deletion reaches B", async || {
        chat_as(&b, &new_key, "gpt").await.0 == 401
    })
    .await;

    // Deployments too: added through A, served by B; deleted, gone from B.
    let (status, added) = admin_post(
        &a,
        "/model/new",
        json!({"model_name": "fresh", "litellm_params": {"model": "openai/gpt-4o-mini", "api_base": mock.base_url(), "api_key": "sk-provider"}}),
    )
    .await;
    assert_eq!(status, 200, "{added}");
    eventually("the new deployment serves on B", async || {
        chat_as(&b, MASTER_KEY, "fresh").await.0 == 200
    })
    .await;
    let id = added["model_info"]["id"].as_str().unwrap();
    admin_post(&a, "/model/delete", json!({"id": id})).await;
    eventually("the deleted deployment leaves B", async || {
        chat_as(&b, MASTER_KEY, "fresh").await.0 == 404
    })
    .await;

    let (status, ready) = readiness(&b).await;
    assert_eq!(status, 200);
    assert_eq!(ready["db"], "connected", "{ready}");
    assert_eq!(ready["store"]["backend"], backend.as_str());
}

#[tokio::test]
async fn an_unreadable_store_keeps_known_keys_until_the_staleness_bound() {
    let mock = MockOpenAi::start().await;
    let yaml = config(
        &mock,
        "  store_sync_interval: 50ms\n  store_max_staleness: 2s\n",
    );
    let store = test_store().await;
    let gateway = TestGateway::start_on(&yaml, store.clone()).await;
    let (_, created) = admin_post(&gateway, "/key/generate", json!({})).await;
    let key = created["key"].as_str().unwrap().to_owned();

    store.close().await;
    eventually("readiness notices the store is gone", async || {
        readiness(&gateway).await.1["db"] == "disconnected"
    })
    .await;
    // Within the bound: still ready, and the key still works.
    let (status, ready) = readiness(&gateway).await;
    assert_eq!(
        (status, &ready["status"]),
        (200, &json!("healthy")),
        "{ready}"
    );
    assert_eq!(chat_as(&gateway, &key, "gpt").await.0, 200);

    eventually("past the bound, readiness turns 503", async || {
        readiness(&gateway).await.0 == 503
    })
    .await;
    assert_eq!(readiness(&gateway).await.1["status"], "store_stale");
    let (status, refused) = chat_as(&gateway, &key, "gpt").await;
    assert_eq!(status, 503, "{refused}");
    assert_eq!(refused["error"]["code"], "store_unavailable");
    assert_eq!(
        chat_as(&gateway, MASTER_KEY, "gpt").await.0,
        200,
        "the master key still works"
    );
}
