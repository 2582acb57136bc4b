//! Virtual keys through the management API and on inference routes: created, used, limited to
//! their models, blocked, regenerated and deleted — each change seen by the very next request.

use serde_json::{Value, json};
use tollgate_testkit::MockOpenAi;

use crate::harness::*;

async fn gateway_with_two_models() -> (TestGateway, tollgate_testkit::MockProvider) {
    let mock = MockOpenAi::start().await;
    let models = [
        openai_model("gpt", "gpt-4o", &mock.base_url()),
        openai_model("mini", "gpt-4o-mini", &mock.base_url()),
    ];
    (
        TestGateway::start(&config_with_models(&models.concat())).await,
        mock,
    )
}

#[tokio::test]
async fn a_virtual_key_lives_its_whole_life_through_the_api() {
    let (gateway, _mock) = gateway_with_two_models().await;
    let (status, created) = admin_post(
        &gateway,
        "/key/generate",
        json!({"key_alias": "ci", "models": ["gpt"], "aliases": {"fast": "gpt"}, "metadata": {"team": "ml"}}),
    )
    .await;
    assert_eq!(status, 200, "{created}");
    let key = created["key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("sk-") && key.len() >= 25, "{key}");
    assert_eq!(
        created["key_name"],
        format!("sk-...{}", &key[key.len() - 4..])
    );
    assert_eq!(created["expires"], Value::Null);

    // Its models, its own alias for one; nothing else.
    assert_eq!(chat_as(&gateway, &key, "gpt").await.0, 200);
    assert_eq!(chat_as(&gateway, &key, "fast").await.0, 200);
    let (status, denied) = chat_as(&gateway, &key, "mini").await;
    assert_eq!(status, 403);
    assert_eq!(denied["error"]["code"], "key_model_access_denied");
    assert_eq!(denied["error"]["type"], "permission_error");
    assert!(
        denied["error"]["message"]
            .as_str()
            .unwrap()
            .contains("may use: gpt")
    );
    let listed: Value = gateway
        .client
        .get(format!("{}/v1/models", gateway.url))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
    assert_eq!(listed["data"][0]["id"], "gpt");

    // Info shows the key masked, never in full.
    let info = gateway
        .get(&format!("/key/info?key={key}"))
        .send()
        .await
        .unwrap();
    assert_eq!(info.status(), 200);
    let text = info.text().await.unwrap();
    assert!(!text.contains(&key));
    let info: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(info["info"]["key_alias"], "ci");
    assert_eq!(info["info"]["metadata"]["team"], "ml");

    // Blocked: refused on the very next request; unblocked: served again.
    let (status, _) = admin_post(&gateway, "/key/block", json!({"key": key})).await;
    assert_eq!(status, 200);
    let (status, refused) = chat_as(&gateway, &key, "gpt").await;
    assert_eq!(status, 401);
    assert_eq!(refused["error"]["code"], "key_blocked");
    admin_post(&gateway, "/key/unblock", json!({"key": key})).await;
    assert_eq!(chat_as(&gateway, &key, "gpt").await.0, 200);

    // Updated models apply at once.
    let (status, updated) = admin_post(
        &gateway,
        "/key/update",
        json!({"key": key, "models": ["gpt", "mini"]}),
    )
    .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(chat_as(&gateway, &key, "mini").await.0, 200);

    // Regenerated: the old key stops working, the new one carries everything over.
    let (status, regenerated) = admin_post(&gateway, "/key/regenerate", json!({"key": key})).await;
    assert_eq!(status, 200);
    let new_key = regenerated["key"].as_str().unwrap().to_owned();
    assert_ne!(new_key, key);
    assert_eq!(chat_as(&gateway, &key, "gpt").await.0, 401);
    assert_eq!(chat_as(&gateway, &new_key, "mini").await.0, 200);

    let list: Value = gateway
        .get("/key/list")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["total_count"], 1);

    let (status, deleted) =
        admin_post(&gateway, "/key/delete", json!({"key_aliases": ["ci"]})).await;
    assert_eq!(status, 200, "{deleted}");
    assert_eq!(deleted["deleted_keys"].as_array().unwrap().len(), 1);
    assert_eq!(chat_as(&gateway, &new_key, "gpt").await.0, 401);
    let info = gateway
        .get(&format!("/key/info?key={new_key}"))
        .send()
        .await
        .unwrap();
    assert_eq!(info.status(), 404);
}

#[tokio::test]
async fn bad_key_requests_name_the_field() {
    let (gateway, _mock) = gateway_with_two_models().await;
    for (body, param) in [
        (json!({"tpm_limit": -1}), "tpm_limit"),
        (json!({"models": "gpt"}), "models"),
        (json!({"models": ["gpt", "no-such-model"]}), "models"),
        (json!({"max_budget": -10}), "max_budget"),
        (json!({"budget_id": "shared"}), "budget_id"),
        (json!({"duration": "soon"}), "duration"),
        (json!({"key": "not-a-key"}), "key"),
        (json!({"aliases": {"a": 1}}), "aliases"),
    ] {
        let (status, error) = admin_post(&gateway, "/key/generate", body.clone()).await;
        assert_eq!(status, 400, "{body}: {error}");
        assert_eq!(error["error"]["param"], param, "{body}: {error}");
    }
    let (status, _) = admin_post(&gateway, "/key/generate", json!({"key_alias": "same"})).await;
    assert_eq!(status, 200);
    let (status, error) = admin_post(&gateway, "/key/generate", json!({"key_alias": "same"})).await;
    assert_eq!(status, 400);
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`same`")
    );

    // Only the master key manages keys.
    let (_, created) = admin_post(&gateway, "/key/generate", json!({})).await;
    let key = created["key"].as_str().unwrap();
    let response = gateway
        .client
        .post(format!("{}/key/generate", gateway.url))
        .bearer_auth(key)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let response = gateway
        .get("/key/info?key=sk-nobody-has-this")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn a_key_past_its_duration_is_refused() {
    let (gateway, _mock) = gateway_with_two_models().await;
    let (_, created) = admin_post(&gateway, "/key/generate", json!({"duration": "1s"})).await;
    let key = created["key"].as_str().unwrap().to_owned();
    assert!(created["expires"].as_str().unwrap().ends_with('Z'));
    assert_eq!(chat_as(&gateway, &key, "gpt").await.0, 200);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (status, refused) = chat_as(&gateway, &key, "gpt").await;
    assert_eq!(status, 401);
    assert_eq!(refused["error"]["code"], "key_expired");
}
