//! Deployments added, changed and removed through `/model/*` at run time: they serve at once,
//! join the config file's groups, keep their provider keys sealed in the store, come back
//! after a restart, and are described by `/model/info` without secrets.

use serde_json::{Value, json};
use tollgate_testkit::MockOpenAi;

use crate::harness::*;

const SECRET: &str = "sk-provider-db-secret";

fn refused(reply: (u16, Value), status: u16, param: Option<&str>) {
    assert_eq!(reply.0, status, "{}", reply.1);
    assert_eq!(reply.1["error"]["param"].as_str(), param, "{}", reply.1);
}

#[tokio::test]
async fn a_deployment_added_through_the_api_serves_at_once_and_survives_a_restart() {
    let mock = MockOpenAi::start().await;
    let yaml = config_with_models(&openai_model("gpt", "gpt-4o", &mock.base_url()));
    let store = test_store().await;
    let gateway = TestGateway::start_on(&yaml, store.clone()).await;

    let added = ok(admin_post(
        &gateway,
        "/model/new",
        json!({
            "model_name": "fresh",
            "litellm_params": {"model": "openai/gpt-4o-mini", "api_base": mock.base_url(), "api_key": SECRET},
            "model_info": {"id": "db-1", "input_cost_per_token": 0.000001}
        }),
    )
    .await);
    assert_eq!(added["model_info"]["id"], "db-1");
    assert_eq!(added["model_info"]["db_model"], true);
    assert_eq!(added["litellm_params"]["model"], "openai/gpt-4o-mini");
    assert!(!added.to_string().contains(SECRET), "{added}");

    // It serves now, with its own key, and is listed.
    assert_eq!(chat_as(&gateway, MASTER_KEY, "fresh").await.0, 200);
    let upstream = mock.last_request();
    assert_eq!(upstream.body["model"], "gpt-4o-mini");
    assert_eq!(
        upstream.headers["authorization"],
        format!("Bearer {SECRET}")
    );
    let listed = ok(admin_get(&gateway, "/v1/models").await);
    assert!(listed.to_string().contains("\"fresh\""), "{listed}");

    // Sealed at rest.
    let stored = store
        .get::<tollgate_store::ModelRecord>("db-1")
        .await
        .unwrap()
        .unwrap();
    let sealed = stored.litellm_params["api_key"].as_str().unwrap();
    assert!(
        sealed.starts_with("enc:v1:") && !sealed.contains(SECRET),
        "{sealed}"
    );

    // One joins the config file's group; /model/info describes both kinds.
    ok(admin_post(
        &gateway,
        "/model/new",
        json!({"model_name": "gpt", "litellm_params": {"model": "openai/o3", "api_base": mock.base_url(), "api_key": SECRET}, "model_info": {"id": "db-2"}}),
    )
    .await);
    let info = ok(admin_get(&gateway, "/model/info").await);
    let gpt: Vec<&Value> = info["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|entry| entry["model_name"] == "gpt")
        .collect();
    assert_eq!(gpt.len(), 2, "{info}");
    assert_eq!(gpt[0]["model_info"]["db_model"], false);
    assert_eq!(gpt[1]["model_info"]["db_model"], true);
    assert!(!info.to_string().contains(SECRET));
    let one = ok(admin_get(&gateway, "/v1/model/info?litellm_model_id=db-1").await);
    assert_eq!(one["data"].as_array().unwrap().len(), 1);
    assert_eq!(
        one["data"][0]["model_info"]["input_cost_per_token"],
        0.000001
    );
    assert_eq!(
        admin_get(&gateway, "/model/info?litellm_model_id=nope")
            .await
            .0,
        404
    );

    // An update keeps the secret it was not given.
    ok(admin_post(
        &gateway,
        "/model/update",
        json!({"model_id": "db-1", "litellm_params": {"model": "openai/gpt-4o"}}),
    )
    .await);
    assert_eq!(chat_as(&gateway, MASTER_KEY, "fresh").await.0, 200);
    let upstream = mock.last_request();
    assert_eq!(upstream.body["model"], "gpt-4o");
    assert_eq!(
        upstream.headers["authorization"],
        format!("Bearer {SECRET}")
    );

    // The audit log has them, secrets masked.
    let audit = ok(admin_get(&gateway, "/audit?table_name=tollgate_models").await);
    assert_eq!(audit["total"], 3, "{audit}");
    assert_eq!(
        audit["audit_logs"][0]["updated_values"]["litellm_params"]["api_key"],
        "********"
    );

    // Deleted: gone at once.
    ok(admin_post(&gateway, "/model/delete", json!({"id": "db-1"})).await);
    assert_eq!(chat_as(&gateway, MASTER_KEY, "fresh").await.0, 404);
    assert!(
        !ok(admin_get(&gateway, "/v1/models").await)
            .to_string()
            .contains("\"fresh\"")
    );

    // A restart (same store) serves what is stored, its key opened again.
    drop(gateway);
    let restarted = TestGateway::start_on(&yaml, store).await;
    let info = ok(admin_get(&restarted, "/model/info?litellm_model_id=db-2").await);
    assert_eq!(info["data"][0]["model_info"]["db_model"], true);
    let mut picked_o3 = false;
    for _ in 0..20 {
        assert_eq!(chat_as(&restarted, MASTER_KEY, "gpt").await.0, 200);
        let upstream = mock.last_request();
        if upstream.body["model"] == "o3" {
            assert_eq!(
                upstream.headers["authorization"],
                format!("Bearer {SECRET}")
            );
            picked_o3 = true;
        }
    }
    assert!(
        picked_o3,
        "the stored deployment takes its share of the group"
    );
}

#[tokio::test]
async fn bad_deployments_are_refused_naming_the_field() {
    let mock = MockOpenAi::start().await;
    let gateway = TestGateway::start(&config_with_models(&openai_model(
        "gpt",
        "gpt-4o",
        &mock.base_url(),
    )))
    .await;
    let new = |body: Value| admin_post(&gateway, "/model/new", body);
    refused(
        new(json!({"model_name": "x"})).await,
        400,
        Some("litellm_params"),
    );
    refused(
        new(json!({"litellm_params": {"model": "openai/x"}})).await,
        400,
        Some("model_name"),
    );
    refused(
        new(json!({"model_name": "x", "litellm_params": {"model": "nope/x"}})).await,
        400,
        Some("litellm_params.model"),
    );
    refused(
        new(json!({"model_name": "x", "litellm_params": {"model": "openai/x", "api_key": "sk-x", "rpm": "lots"}}))
            .await,
        400,
        Some("litellm_params.rpm"),
    );
    refused(
        new(json!({"model_name": "x/*", "litellm_params": {"model": "openai/*"}})).await,
        400,
        Some("model_name"),
    );
    ok(new(json!({"model_name": "x", "litellm_params": {"model": "openai/x", "api_key": "sk-x", "api_base": mock.base_url()}, "model_info": {"id": "dup"}})).await);
    refused(
        new(json!({"model_name": "y", "litellm_params": {"model": "openai/y", "api_key": "sk-y"}, "model_info": {"id": "dup"}})).await,
        400,
        Some("model_info.id"),
    );

    // The config file's deployments are changed in the config file.
    let config_id = ok(admin_get(&gateway, "/model/info").await)["data"][0]["model_info"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    refused(
        admin_post(&gateway, "/model/update", json!({"model_id": config_id})).await,
        400,
        Some("model_id"),
    );
    refused(
        admin_post(&gateway, "/model/delete", json!({"id": config_id})).await,
        400,
        Some("model_id"),
    );
    assert_eq!(
        admin_post(&gateway, "/model/delete", json!({"id": "ghost"}))
            .await
            .0,
        404
    );

    // Only admins change deployments; a key sees only its models' deployments.
    let key = ok(admin_post(&gateway, "/key/generate", json!({"models": ["x"]})).await)["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _) = post_as(
        &gateway,
        &key,
        "/model/new",
        json!({"model_name": "z", "litellm_params": {"model": "openai/z"}}),
    )
    .await;
    assert_eq!(status, 403);
    let seen = ok(get_as(&gateway, &key, "/model/info").await);
    let names: Vec<&str> = seen["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["model_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["x"]);
}
