//! Teams, users, organisations and end users through the management API, and what they
//! change for requests: model lists intersected, blocks seen at once, and who may manage what.

use serde_json::json;
use tollgate_testkit::MockOpenAi;

use crate::harness::*;

async fn gateway() -> (TestGateway, tollgate_testkit::MockProvider) {
    let mock = MockOpenAi::start().await;
    let models = [
        openai_model("gpt", "gpt-4o", &mock.base_url()),
        openai_model("mini", "gpt-4o-mini", &mock.base_url()),
        openai_model("o3", "o3", &mock.base_url()),
    ];
    (
        TestGateway::start(&config_with_models(&models.concat())).await,
        mock,
    )
}

#[tokio::test]
async fn a_team_key_may_use_only_what_key_team_and_organization_all_allow() {
    let (gateway, _mock) = gateway().await;
    ok(admin_post(
        &gateway,
        "/organization/new",
        json!({"organization_id": "acme", "organization_alias": "Acme", "models": ["gpt", "mini"]}),
    )
    .await);
    ok(admin_post(
        &gateway,
        "/team/new",
        json!({"team_id": "ml", "organization_id": "acme", "models": ["gpt", "o3"]}),
    )
    .await);
    let key = ok(admin_post(
        &gateway,
        "/key/generate",
        json!({"team_id": "ml", "models": ["all-team-models"]}),
    )
    .await)["key"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(chat_as(&gateway, &key, "gpt").await.0, 200);
    let (status, denied) = chat_as(&gateway, &key, "mini").await;
    assert_eq!(status, 403, "{denied}");
    assert!(
        denied["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Team `ml`")
    );
    let (status, denied) = chat_as(&gateway, &key, "o3").await;
    assert_eq!(status, 403);
    assert!(
        denied["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Organization `acme`")
    );
    let (_, models) = get_as(&gateway, &key, "/v1/models").await;
    let ids: Vec<&str> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["gpt"]);

    // Blocking the team stops its keys on the very next request, unblocking restores them.
    ok(admin_post(&gateway, "/team/block", json!({"team_id": "ml"})).await);
    let (status, blocked) = chat_as(&gateway, &key, "gpt").await;
    assert_eq!(
        (status, blocked["error"]["code"].as_str()),
        (401, Some("team_blocked"))
    );
    ok(admin_post(&gateway, "/team/unblock", json!({"team_id": "ml"})).await);
    assert_eq!(chat_as(&gateway, &key, "gpt").await.0, 200);
}

#[tokio::test]
async fn teams_users_and_organizations_answer_litellm_shapes_and_refuse_bad_input() {
    let (gateway, _mock) = gateway().await;
    let team = ok(admin_post(
        &gateway,
        "/team/new",
        json!({"team_alias": "Search", "rpm_limit": 10, "members_with_roles": [{"role": "admin", "user_id": "alice"}]}),
    )
    .await);
    let team_id = team["team_id"].as_str().unwrap().to_owned();
    assert_eq!(team_id.len(), 36, "a generated UUID");
    assert_eq!(team["members_with_roles"][0]["role"], "admin");
    // Adding a member made the user, who now lists the team.
    let alice = ok(admin_get(&gateway, "/user/info?user_id=alice").await);
    assert_eq!(alice["user_info"]["teams"], json!([team_id]));

    ok(admin_post(
        &gateway,
        "/team/member_add",
        json!({"team_id": team_id, "member": {"role": "user", "user_id": "bob"}}),
    )
    .await);
    let (status, again) = admin_post(
        &gateway,
        "/team/member_add",
        json!({"team_id": team_id, "member": {"user_id": "bob"}}),
    )
    .await;
    assert_eq!(status, 400, "{again}");
    let info = ok(admin_get(&gateway, &format!("/team/info?team_id={team_id}")).await);
    assert_eq!(
        info["team_info"]["members_with_roles"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    ok(admin_post(
        &gateway,
        "/team/member_delete",
        json!({"team_id": team_id, "user_id": "bob"}),
    )
    .await);
    let bob = ok(admin_get(&gateway, "/user/info?user_id=bob").await);
    assert_eq!(bob["user_info"]["teams"], json!([]));

    // Bad input names the field; unknown ids are 404s.
    for (path, body, param) in [
        ("/team/new", json!({"rpm_limit": -1}), "rpm_limit"),
        ("/team/new", json!({"models": "gpt"}), "models"),
        ("/team/new", json!({"models": ["gpt", "gpt-9"]}), "models"),
        ("/user/new", json!({"models": ["gpt-9"]}), "models"),
        (
            "/organization/new",
            json!({"organization_alias": "Acme", "models": ["gpt-9"]}),
            "models",
        ),
        (
            "/team/new",
            json!({"organization_id": "nope"}),
            "organization_id",
        ),
        ("/key/generate", json!({"team_id": "nope"}), "team_id"),
        ("/user/new", json!({"user_role": "emperor"}), "user_role"),
        (
            "/organization/new",
            json!({"models": []}),
            "organization_alias",
        ),
        ("/customer/new", json!({"alias": "x"}), "user_id"),
        ("/team/delete", json!({}), "team_ids"),
    ] {
        let (status, error) = admin_post(&gateway, path, body.clone()).await;
        assert_eq!(status, 400, "{path} {body}: {error}");
        assert_eq!(error["error"]["param"], param, "{path} {body}: {error}");
    }
    let (status, _) = admin_post(
        &gateway,
        "/team/update",
        json!({"team_id": "nope", "rpm_limit": 1}),
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = admin_get(&gateway, "/organization/info?organization_id=nope").await;
    assert_eq!(status, 404);

    // A new user gets a key of their own, as in LiteLLM.
    let carol = ok(admin_post(
        &gateway,
        "/user/new",
        json!({"user_id": "carol", "user_role": "internal_user"}),
    )
    .await);
    assert!(carol["key"].as_str().unwrap().starts_with("sk-"));
    let users = ok(admin_get(&gateway, "/user/list?role=internal_user").await);
    assert_eq!(users["total"], 3, "{users}");

    // Deleting the team deletes its keys.
    let team_key =
        ok(admin_post(&gateway, "/key/generate", json!({"team_id": team_id})).await)["key"]
            .as_str()
            .unwrap()
            .to_owned();
    let deleted = ok(admin_post(&gateway, "/team/delete", json!({"team_ids": [team_id]})).await);
    assert_eq!(deleted["deleted_keys"].as_array().unwrap().len(), 1);
    assert_eq!(chat_as(&gateway, &team_key, "gpt").await.0, 401);
}

#[tokio::test]
async fn a_team_admin_manages_their_own_team_and_nothing_else() {
    let (gateway, _mock) = gateway().await;
    for team in ["red", "blue"] {
        ok(admin_post(&gateway, "/team/new", json!({"team_id": team})).await);
    }
    ok(admin_post(
        &gateway,
        "/team/member_add",
        json!({"team_id": "red", "member": [{"role": "admin", "user_id": "ann"}, {"role": "user", "user_id": "ron"}]}),
    )
    .await);
    ok(admin_post(
        &gateway,
        "/team/member_add",
        json!({"team_id": "blue", "member": {"user_id": "bea"}}),
    )
    .await);
    let ann = ok(admin_post(
        &gateway,
        "/key/generate",
        json!({"user_id": "ann", "team_id": "red"}),
    )
    .await)["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let blue_key = ok(admin_post(
        &gateway,
        "/key/generate",
        json!({"user_id": "bea", "team_id": "blue"}),
    )
    .await);
    let blue_token = blue_key["token"].as_str().unwrap().to_owned();

    // Her team: she makes a key for a member, sees and blocks it.
    let rons = ok(post_as(
        &gateway,
        &ann,
        "/key/generate",
        json!({"user_id": "ron", "team_id": "red"}),
    )
    .await);
    let rons_token = rons["token"].as_str().unwrap();
    ok(post_as(&gateway, &ann, "/key/block", json!({"key": rons_token})).await);
    let listed = ok(get_as(&gateway, &ann, "/key/list?team_id=red").await);
    assert_eq!(listed["total_count"], 2);
    assert_eq!(
        ok(get_as(&gateway, &ann, "/team/info?team_id=red").await)["team_id"],
        "red"
    );

    // Another team: invisible, untouchable.
    let (status, _) = get_as(&gateway, &ann, &format!("/key/info?key={blue_token}")).await;
    assert_eq!(status, 404);
    let (status, _) = post_as(&gateway, &ann, "/key/block", json!({"key": blue_token})).await;
    assert_eq!(status, 404);
    let (status, _) = post_as(&gateway, &ann, "/key/generate", json!({"team_id": "blue"})).await;
    assert_eq!(status, 403);
    let (status, _) = get_as(&gateway, &ann, "/team/info?team_id=blue").await;
    assert_eq!(status, 404);
    let listed = ok(get_as(&gateway, &ann, "/key/list?team_id=blue").await);
    assert_eq!(listed["total_count"], 0, "none of blue's keys: {listed}");
    let teams = ok(get_as(&gateway, &ann, "/team/list").await);
    assert_eq!(teams.as_array().unwrap().len(), 1);

    // And nothing beyond keys.
    for (path, body) in [
        ("/team/new", json!({"team_id": "green"})),
        ("/team/update", json!({"team_id": "red", "rpm_limit": 1})),
        ("/user/new", json!({"user_id": "mallory"})),
        ("/organization/new", json!({"organization_alias": "x"})),
    ] {
        let (status, error) = post_as(&gateway, &ann, path, body).await;
        assert_eq!(status, 403, "{path}: {error}");
        assert_eq!(error["error"]["type"], "permission_error");
    }
    let (status, _) = get_as(&gateway, &ann, "/user/list").await;
    assert_eq!(status, 403);

    // A proxy_admin's key may do what the master key does.
    ok(admin_post(
        &gateway,
        "/user/update",
        json!({"user_id": "ann", "user_role": "proxy_admin"}),
    )
    .await);
    ok(post_as(&gateway, &ann, "/team/new", json!({"team_id": "green"})).await);
}

#[tokio::test]
async fn every_change_is_in_the_audit_log_with_who_and_what() {
    let (gateway, _mock) = gateway().await;
    ok(admin_post(
        &gateway,
        "/team/new",
        json!({"team_id": "red", "rpm_limit": 10, "metadata": {"api_key": "sk-leaked"}}),
    )
    .await);
    ok(admin_post(
        &gateway,
        "/team/update",
        json!({"team_id": "red", "rpm_limit": 20}),
    )
    .await);
    ok(admin_post(
        &gateway,
        "/team/member_add",
        json!({"team_id": "red", "member": {"role": "admin", "user_id": "ann"}}),
    )
    .await);
    let ann = ok(admin_post(
        &gateway,
        "/key/generate",
        json!({"user_id": "ann", "team_id": "red"}),
    )
    .await);
    let ann_key = ann["key"].as_str().unwrap();
    let made_by_ann = ok(post_as(
        &gateway,
        ann_key,
        "/key/generate",
        json!({"team_id": "red", "key_alias": "ann-made"}),
    )
    .await);
    let token = made_by_ann["token"].as_str().unwrap();
    ok(post_as(&gateway, ann_key, "/key/block", json!({"key": token})).await);

    // The team's history, newest first, secrets masked.
    let teams = ok(admin_get(&gateway, "/audit?table_name=tollgate_teams").await);
    let entries = teams["audit_logs"].as_array().unwrap();
    let actions: Vec<_> = entries
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["updated", "updated", "created"], "{teams}");
    let update = &entries[1];
    assert_eq!(update["changed_by"], "master_key");
    assert_eq!(update["object_id"], "red");
    assert_eq!(update["before_value"]["rpm_limit"], 10);
    assert_eq!(update["updated_values"]["rpm_limit"], 20);
    assert_eq!(update["updated_values"]["metadata"]["api_key"], "********");
    assert!(!teams.to_string().contains("sk-leaked"));
    assert!(update["updated_at"].as_str().unwrap().ends_with('Z'));

    // A key ann made and blocked: her user id and her key's hash.
    let key_history = ok(admin_get(&gateway, &format!("/audit?object_id={token}")).await);
    assert_eq!(key_history["total"], 2, "{key_history}");
    let blocked = &key_history["audit_logs"][0];
    assert_eq!(blocked["action"], "blocked");
    assert_eq!(blocked["changed_by"], "ann");
    assert_eq!(blocked["changed_by_api_key"], ann["token"]);
    assert_eq!(blocked["before_value"]["blocked"], false);
    assert_eq!(blocked["updated_values"]["blocked"], true);
    let by_id = ok(admin_get(
        &gateway,
        &format!("/audit/{}", blocked["id"].as_str().unwrap()),
    )
    .await);
    assert_eq!(&by_id, blocked);

    let only_blocks = ok(admin_get(&gateway, "/audit?action=blocked&page_size=1").await);
    assert_eq!(only_blocks["total"], 1);
    // Team, user, two keys: seven changes since the day the first was made.
    let first_day = &entries[2]["updated_at"].as_str().unwrap()[..10];
    let dated = ok(admin_get(&gateway, &format!("/audit?start_date={first_day}")).await);
    assert_eq!(dated["total"], 7, "{dated}");
    let before = ok(admin_get(&gateway, "/audit?end_date=2000-01-01").await);
    assert_eq!(before["total"], 0);

    // Bad filters name themselves; unknown entries are 404; non-admins may not read it.
    for (query, param) in [
        ("action=exploded", "action"),
        ("start_date=yesterday", "start_date"),
        ("page=0", "page"),
    ] {
        let (status, error) = admin_get(&gateway, &format!("/audit?{query}")).await;
        assert_eq!(
            (status, error["error"]["param"].as_str()),
            (400, Some(param)),
            "{error}"
        );
    }
    assert_eq!(admin_get(&gateway, "/audit/nope").await.0, 404);
    assert_eq!(get_as(&gateway, ann_key, "/audit").await.0, 403);
}
