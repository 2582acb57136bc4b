//! Budgets: a request's worst case reserved before it is forwarded, so concurrent requests
//! never spend past `max_budget` — for a key, for a team shared by keys, for streams — and
//! spend that starts again exactly at the calendar boundary.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tollgate_core::calendar::{ManualClock, parse_iso8601};
use tollgate_testkit::{Fault, MockOpenAi};

use crate::harness::*;

/// Output at $2 per million tokens, input free: a request asking for at most 100 tokens
/// can cost at most $0.0002, whatever its prompt.
fn metered_model(api_base: &str) -> String {
    format!(
        "  - model_name: metered\n    litellm_params:\n      model: openai/metered\n      api_base: {api_base}\n      api_key: sk-provider\n    model_info:\n      input_cost_per_token: 0\n      output_cost_per_token: 0.000002\n"
    )
}

const WORST_CASE: f64 = 0.0002;

async fn new_key(gateway: &TestGateway, body: Value) -> String {
    ok(admin_post(gateway, "/key/generate", body).await)["key"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn request(stream: bool) -> Value {
    json!({"model": "metered", "max_tokens": 100, "stream": stream,
           "messages": [{"role": "user", "content": "a short answer please"}]})
}

/// Sends `count` requests at once, spread over `keys`; returns how many were answered 200,
/// after checking every other one was refused for its budget.
async fn burst(gateway: &TestGateway, keys: &[String], count: usize, stream: bool) -> usize {
    let sends = (0..count).map(|i| {
        let response = gateway
            .client
            .post(format!("{}/v1/chat/completions", gateway.url))
            .bearer_auth(&keys[i % keys.len()])
            .json(&request(stream))
            .send();
        async move {
            let response = response.await.unwrap();
            let status = response.status().as_u16();
            let text = response.text().await.unwrap();
            (status, text)
        }
    });
    let results = futures_util::future::join_all(sends).await;
    let mut succeeded = 0;
    for (status, text) in results {
        if status == 200 {
            succeeded += 1;
            continue;
        }
        assert_eq!(status, 400, "{text}");
        let error: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(error["error"]["type"], "budget_exceeded", "{text}");
        assert!(
            error["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("Budget has been exceeded!"),
            "{text}"
        );
    }
    succeeded
}

/// A mock that holds each answer long enough for the whole burst to arrive first.
async fn slow_mock() -> tollgate_testkit::MockProvider {
    let mock = MockOpenAi::start().await;
    mock.faults.fail_all(Fault::Delay(Duration::from_secs(2)));
    mock
}

#[tokio::test]
async fn two_hundred_concurrent_requests_fit_a_key_budget_of_ten_worst_cases() {
    let mock = slow_mock().await;
    let gateway = TestGateway::start(&config_with_models(&metered_model(&mock.base_url()))).await;
    let key = new_key(&gateway, json!({"max_budget": 10.0 * WORST_CASE})).await;
    assert_eq!(
        burst(&gateway, std::slice::from_ref(&key), 200, false).await,
        10
    );
    let (_, spent) = recorded_spend(&gateway, &format!("api_key={key}")).await;
    assert!(spent > 0.0 && spent <= 10.0 * WORST_CASE, "{spent}");
    let info = ok(admin_get(&gateway, &format!("/key/info?key={key}")).await);
    assert!((info["info"]["spend"].as_f64().unwrap() - spent).abs() < 1e-12);
    assert_eq!(info["info"]["max_budget"], 10.0 * WORST_CASE);
}

#[tokio::test]
async fn streams_reserve_the_same_way() {
    let mock = slow_mock().await;
    let gateway = TestGateway::start(&config_with_models(&metered_model(&mock.base_url()))).await;
    let key = new_key(&gateway, json!({"max_budget": 10.0 * WORST_CASE})).await;
    assert_eq!(
        burst(&gateway, std::slice::from_ref(&key), 200, true).await,
        10
    );
    let (_, spent) = recorded_spend(&gateway, &format!("api_key={key}")).await;
    assert!(spent > 0.0 && spent <= 10.0 * WORST_CASE, "{spent}");
}

#[tokio::test]
async fn three_keys_share_their_team_budget() {
    let mock = slow_mock().await;
    let gateway = TestGateway::start(&config_with_models(&metered_model(&mock.base_url()))).await;
    ok(admin_post(
        &gateway,
        "/team/new",
        json!({"team_id": "shared", "max_budget": 10.0 * WORST_CASE}),
    )
    .await);
    let mut keys = Vec::new();
    for _ in 0..3 {
        keys.push(new_key(&gateway, json!({"team_id": "shared"})).await);
    }
    assert_eq!(burst(&gateway, &keys, 200, false).await, 10);
    let (_, spent) = recorded_spend(&gateway, "team_id=shared").await;
    assert!(spent > 0.0 && spent <= 10.0 * WORST_CASE, "{spent}");
    let info = ok(admin_get(&gateway, "/team/info?team_id=shared").await);
    assert!((info["team_info"]["spend"].as_f64().unwrap() - spent).abs() < 1e-12);
}

#[tokio::test]
async fn a_daily_budget_starts_again_at_midnight_utc() {
    let mock = MockOpenAi::start().await;
    let clock = Arc::new(ManualClock::at(
        parse_iso8601("2026-11-21T23:59:58Z").unwrap(),
    ));
    let gateway = TestGateway::start_at(
        &config_with_models(&metered_model(&mock.base_url())),
        clock.clone(),
    )
    .await;
    let key = new_key(
        &gateway,
        json!({"max_budget": WORST_CASE, "budget_duration": "1d"}),
    )
    .await;
    let chat = |key: String| {
        let gateway = &gateway;
        async move {
            let response = gateway
                .client
                .post(format!("{}/v1/chat/completions", gateway.url))
                .bearer_auth(key)
                .json(&request(false))
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        }
    };
    assert_eq!(chat(key.clone()).await.0, 200);
    // What is left is less than a worst case: refused until the day ends.
    let (status, refused) = chat(key.clone()).await;
    assert_eq!(status, 400);
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("resets at 2026-11-22T00:00:00.000Z"),
        "{refused}"
    );
    let info = ok(admin_get(&gateway, &format!("/key/info?key={key}")).await);
    assert_eq!(info["info"]["budget_reset_at"], "2026-11-22T00:00:00.000Z");

    clock.set(parse_iso8601("2026-11-22T00:00:00Z").unwrap());
    assert_eq!(chat(key.clone()).await.0, 200, "a new day, a new budget");
    let info = ok(admin_get(&gateway, &format!("/key/info?key={key}")).await);
    assert_eq!(info["info"]["budget_reset_at"], "2026-11-23T00:00:00.000Z");
}

#[tokio::test]
async fn budget_fields_are_checked() {
    let mock = MockOpenAi::start().await;
    let gateway = TestGateway::start(&config_with_models(&metered_model(&mock.base_url()))).await;
    for (body, param) in [
        (json!({"max_budget": -1}), "max_budget"),
        (json!({"max_budget": "lots"}), "max_budget"),
        (json!({"budget_duration": "5y"}), "budget_duration"),
    ] {
        let (status, refused) = admin_post(&gateway, "/key/generate", body.clone()).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(refused["error"]["param"], param, "{refused}");
        let (status, refused) = admin_post(
            &gateway,
            "/team/new",
            json!({"team_id": "t"})
                .as_object()
                .unwrap()
                .clone()
                .into_iter()
                .chain(body.as_object().unwrap().clone())
                .collect::<serde_json::Map<_, _>>()
                .into(),
        )
        .await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(refused["error"]["param"], param, "{refused}");
    }
}

#[tokio::test]
async fn crossing_a_soft_budget_posts_one_alert_a_period() {
    let mock = MockOpenAi::start().await;
    let hooks = MockOpenAi::start().await;
    let yaml = format!(
        "{}tollgate_settings:\n  alert_webhook_url: {}/hooks/budget\n",
        config_with_models(&metered_model(&mock.base_url())),
        hooks.root_url()
    );
    let gateway = TestGateway::start(&yaml).await;
    let key = new_key(
        &gateway,
        json!({"key_alias": "watched", "soft_budget": 0.000001, "max_budget": 1}),
    )
    .await;
    for _ in 0..3 {
        let (status, _) = post_as(&gateway, &key, "/v1/chat/completions", request(false)).await;
        assert_eq!(status, 200);
    }
    let mut alerts = Vec::new();
    for _ in 0..50 {
        alerts = hooks
            .requests()
            .into_iter()
            .filter(|request| request.path == "/hooks/budget")
            .collect();
        if !alerts.is_empty() {
            // Time for a duplicate to show up, if one were sent.
            tokio::time::sleep(Duration::from_millis(200)).await;
            alerts = hooks
                .requests()
                .into_iter()
                .filter(|request| request.path == "/hooks/budget")
                .collect();
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        alerts.len(),
        1,
        "one alert for the period, however many requests"
    );
    let alert = &alerts[0].body;
    assert_eq!(alert["event"], "budget_alert");
    assert_eq!(alert["entity_type"], "key");
    assert_eq!(alert["threshold"], 0.000001);
    assert_eq!(alert["max_budget"], 1.0);
    assert!(alert["spend"].as_f64().unwrap() >= 0.000001, "{alert}");
    assert!(
        alert["text"]
            .as_str()
            .unwrap()
            .starts_with("Budget alert: key sk-..."),
        "{alert}"
    );
}

#[tokio::test]
async fn a_replica_counts_what_another_charged_once_it_reaches_the_store() {
    let mock = MockOpenAi::start().await;
    let yaml = format!(
        "{}tollgate_settings:\n  store_sync_interval: 1s\n",
        config_with_models(&metered_model(&mock.base_url()))
    );
    let store = test_store().await;
    let first = TestGateway::start_on(&yaml, store.clone()).await;
    let second = TestGateway::start_on(&yaml, store).await;
    // Room for one request of at most 5 output tokens ($0.00001); it uses about 4.
    let key = new_key(&first, json!({"max_budget": 0.00001})).await;
    let small = json!({"model": "metered", "max_tokens": 5,
                       "messages": [{"role": "user", "content": "a short answer please"}]});
    let (status, _) = post_as(&first, &key, "/v1/chat/completions", small.clone()).await;
    assert_eq!(status, 200);
    first.gateway.flush_spend().await.unwrap();

    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = post_as(&second, &key, "/v1/chat/completions", small.clone()).await;
        if status == 400 {
            assert_eq!(body["error"]["type"], "budget_exceeded", "{body}");
            break;
        }
        // Until its sync round, the second replica does not know the key; the round that
        // brings the key brings its spend, so it never serves the key as if unspent.
        assert_eq!(status, 401, "{body}");
        assert!(
            tokio::time::Instant::now() < deadline,
            "the second replica never counted the first's spend"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_shared_budget_gives_each_end_user_naming_it_its_own_allowance() {
    let mock = MockOpenAi::start().await;
    let gateway = TestGateway::start(&config_with_models(&metered_model(&mock.base_url()))).await;
    let created = ok(admin_post(
        &gateway,
        "/budget/new",
        json!({"budget_id": "starter", "max_budget": WORST_CASE, "budget_duration": "30d"}),
    )
    .await);
    assert_eq!(created["budget_id"], "starter");
    for customer in ["c1", "c2"] {
        ok(admin_post(
            &gateway,
            "/customer/new",
            json!({"user_id": customer, "budget_id": "starter"}),
        )
        .await);
    }
    let (status, refused) = admin_post(
        &gateway,
        "/customer/new",
        json!({"user_id": "c3", "budget_id": "nope"}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(refused["error"]["param"], "budget_id");

    let as_customer = |customer: &str| {
        let mut body = request(false);
        body["user"] = json!(customer);
        body
    };
    // One worst case each: the first request fits, the second cannot.
    assert_eq!(
        admin_post(&gateway, "/v1/chat/completions", as_customer("c1"))
            .await
            .0,
        200
    );
    let (status, refused) = admin_post(&gateway, "/v1/chat/completions", as_customer("c1")).await;
    assert_eq!(status, 400);
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("End user c1"),
        "{refused}"
    );
    assert_eq!(
        admin_post(&gateway, "/v1/chat/completions", as_customer("c2"))
            .await
            .0,
        200,
        "c2 spends its own"
    );

    // Raising the shared budget raises it for everyone naming it, at once.
    ok(admin_post(
        &gateway,
        "/budget/update",
        json!({"budget_id": "starter", "max_budget": 1}),
    )
    .await);
    assert_eq!(
        admin_post(&gateway, "/v1/chat/completions", as_customer("c1"))
            .await
            .0,
        200
    );
    let shown = ok(admin_get(&gateway, "/customer/info?end_user_id=c2").await);
    assert!(shown["spend"].as_f64().unwrap() > 0.0, "{shown}");
    assert!(shown["budget_reset_at"].is_string(), "{shown}");
    let info = ok(admin_post(&gateway, "/budget/info", json!({"budgets": ["starter"]})).await);
    assert_eq!(info[0]["max_budget"], 1.0);
    assert_eq!(info[0]["budget_duration"], "30d");
    let listed = ok(admin_get(&gateway, "/budget/list").await);
    assert_eq!(listed.as_array().unwrap().len(), 1);
    // A budget still named cannot be deleted from under its holders.
    let (status, refused) = admin_post(&gateway, "/budget/delete", json!({"id": "starter"})).await;
    assert_eq!(status, 400, "{refused}");
    assert_eq!(refused["error"]["param"], "id");
    let message = refused["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("end user c1") && message.contains("end user c2"),
        "{refused}"
    );
    for customer in ["c1", "c2"] {
        ok(admin_post(
            &gateway,
            "/customer/update",
            json!({"user_id": customer, "budget_id": null}),
        )
        .await);
    }
    ok(admin_post(&gateway, "/budget/delete", json!({"id": "starter"})).await);
    assert_eq!(
        admin_get(&gateway, "/budget/info?budget_id=starter")
            .await
            .0,
        404
    );
}

/// A chat request with `key`, tagged through the `x-litellm-tags` header: its status and body.
async fn tagged_chat(gateway: &TestGateway, key: &str, tags: &str) -> (u16, Value) {
    let response = gateway
        .client
        .post(format!("{}/v1/chat/completions", gateway.url))
        .bearer_auth(key)
        .header("x-litellm-tags", tags)
        .json(&request(false))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn a_tag_budget_holds_for_every_request_carrying_the_tag() {
    let mock = slow_mock().await;
    let gateway = TestGateway::start(&config_with_models(&metered_model(&mock.base_url()))).await;
    let created = ok(admin_post(
        &gateway,
        "/tag/new",
        json!({"name": "engineering", "description": "Engineering cost centre",
               "max_budget": 10.0 * WORST_CASE, "budget_duration": "30d", "models": []}),
    )
    .await);
    assert_eq!(created["name"], "engineering");
    ok(admin_post(
        &gateway,
        "/organization/new",
        json!({"organization_id": "acme", "organization_alias": "Acme"}),
    )
    .await);
    // Three keys carrying the tag, each with budget to spare: the tag's is the one that binds.
    let mut tagged = Vec::new();
    for _ in 0..3 {
        tagged.push(
            new_key(
                &gateway,
                json!({"tags": ["engineering"], "organization_id": "acme", "max_budget": 1}),
            )
            .await,
        );
    }
    assert_eq!(burst(&gateway, &tagged, 200, false).await, 10);
    let (_, spent) = recorded_spend(&gateway, "").await;
    assert!(spent > 0.0 && spent <= 10.0 * WORST_CASE, "{spent}");

    // With less room left than one worst case, a key without the tag is refused only when its
    // request carries the tag (here by header).
    ok(admin_post(
        &gateway,
        "/tag/update",
        json!({"name": "engineering", "max_budget": spent + WORST_CASE / 2.0}),
    )
    .await);
    let untagged = new_key(&gateway, json!({})).await;
    let (status, refused) = tagged_chat(&gateway, &untagged, "support, engineering").await;
    assert_eq!(status, 400, "{refused}");
    assert_eq!(refused["error"]["type"], "budget_exceeded");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Tag engineering has spent"),
        "{refused}"
    );
    assert_eq!(tagged_chat(&gateway, &untagged, "support").await.0, 200);
    // So is a request naming it in its own `tags`, as LiteLLM takes them.
    let mut body_tagged = request(false);
    body_tagged["tags"] = json!(["engineering"]);
    let (status, refused) = post_as(&gateway, &untagged, "/v1/chat/completions", body_tagged).await;
    assert_eq!(status, 400, "{refused}");
    assert_eq!(refused["error"]["type"], "budget_exceeded");

    let info = ok(admin_post(&gateway, "/tag/info", json!({"names": ["engineering"]})).await);
    let tag = &info["engineering"];
    assert!(
        (tag["spend"].as_f64().unwrap() - spent).abs() < 1e-12,
        "{info}"
    );
    assert_eq!(tag["max_budget"], spent + WORST_CASE / 2.0);
    assert_eq!(tag["description"], "Engineering cost centre");
    assert!(tag["budget_reset_at"].is_string(), "{info}");
    let organization = ok(admin_get(&gateway, "/organization/info?organization_id=acme").await);
    assert!(
        (organization["spend"].as_f64().unwrap() - spent).abs() < 1e-12,
        "{organization}"
    );
    let listed = ok(admin_get(&gateway, "/tag/list").await);
    assert_eq!(listed["engineering"]["name"], "engineering");

    // What a tag cannot do is refused, not saved and ignored.
    for (field, value) in [("models", json!(["metered"])), ("rpm_limit", json!(10))] {
        let mut body = json!({"name": "other"});
        body[field] = value;
        let (status, refused) = admin_post(&gateway, "/tag/new", body).await;
        assert_eq!(status, 400, "{refused}");
        assert_eq!(refused["error"]["param"], field);
    }

    // Raising the tag's budget lets its requests through at once; deleting the tag lifts it.
    ok(admin_post(
        &gateway,
        "/tag/update",
        json!({"name": "engineering", "max_budget": 1}),
    )
    .await);
    assert_eq!(tagged_chat(&gateway, &untagged, "engineering").await.0, 200);
    ok(admin_post(
        &gateway,
        "/tag/update",
        json!({"name": "engineering", "max_budget": 0}),
    )
    .await);
    assert_eq!(tagged_chat(&gateway, &untagged, "engineering").await.0, 400);
    ok(admin_post(&gateway, "/tag/delete", json!({"name": "engineering"})).await);
    assert_eq!(tagged_chat(&gateway, &untagged, "engineering").await.0, 200);
    assert_eq!(
        admin_get(&gateway, "/tag/info?name=engineering").await.0,
        404
    );
}

#[tokio::test]
async fn a_key_budget_for_one_model_leaves_its_other_models_alone() {
    let mock = slow_mock().await;
    let models = format!(
        "{}{}",
        metered_model(&mock.base_url()),
        metered_model(&mock.base_url()).replace("model_name: metered", "model_name: spare")
    );
    let gateway = TestGateway::start(&config_with_models(&models)).await;
    let (status, refused) = admin_post(
        &gateway,
        "/key/generate",
        json!({"model_max_budget": {"metered": {"budget_limit": "ten", "time_period": "1d"}}}),
    )
    .await;
    assert_eq!(status, 400, "{refused}");
    assert_eq!(refused["error"]["param"], "model_max_budget");
    let (status, refused) = admin_post(
        &gateway,
        "/key/generate",
        json!({"model_max_budget": {"no-such-model": 1}}),
    )
    .await;
    assert_eq!(status, 400, "{refused}");

    // LiteLLM's shape, the limit as a string as its UI sends it.
    let limit = format!("{}", 10.0 * WORST_CASE);
    let key = new_key(
        &gateway,
        json!({"max_budget": 1, "model_max_budget":
               {"metered": {"budget_limit": limit, "time_period": "1d"}}}),
    )
    .await;
    assert_eq!(
        burst(&gateway, std::slice::from_ref(&key), 200, false).await,
        10
    );
    let (status, refused) = chat_as(&gateway, &key, "metered").await;
    assert_eq!(status, 400, "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("on model metered"),
        "{refused}"
    );
    assert_eq!(chat_as(&gateway, &key, "spare").await.0, 200);

    let (_, spent) = recorded_spend(&gateway, &format!("api_key={key}&model=metered")).await;
    assert!(spent > 0.0 && spent <= 10.0 * WORST_CASE, "{spent}");
    let info = ok(admin_get(&gateway, &format!("/key/info?key={key}")).await);
    let shown = &info["info"];
    assert!(
        (shown["model_spend"]["metered"].as_f64().unwrap() - spent).abs() < 1e-12,
        "{info}"
    );
    assert_eq!(
        shown["model_max_budget"]["metered"]["budget_limit"],
        10.0 * WORST_CASE
    );
    assert_eq!(shown["model_max_budget"]["metered"]["time_period"], "1d");

    // Its older shape, dollars alone; removing the budget lifts it.
    ok(admin_post(
        &gateway,
        "/key/update",
        json!({"key": key, "model_max_budget": {"metered": 1}}),
    )
    .await);
    assert_eq!(chat_as(&gateway, &key, "metered").await.0, 200);
    ok(admin_post(
        &gateway,
        "/key/update",
        json!({"key": key, "model_max_budget": null}),
    )
    .await);
    let info = ok(admin_get(&gateway, &format!("/key/info?key={key}")).await);
    assert_eq!(info["info"]["model_max_budget"], json!({}));
}

#[tokio::test]
async fn a_shared_budget_gives_its_rate_limits_to_whoever_leaves_them_unset() {
    let mock = MockOpenAi::start().await;
    let gateway = TestGateway::start(&config_with_models(&metered_model(&mock.base_url()))).await;
    ok(admin_post(
        &gateway,
        "/budget/new",
        json!({"budget_id": "tier-free", "max_budget": 10, "rpm_limit": 2}),
    )
    .await);
    let tiered = new_key(&gateway, json!({"budget_id": "tier-free"})).await;
    let own_limit = new_key(&gateway, json!({"budget_id": "tier-free", "rpm_limit": 5})).await;
    for _ in 0..2 {
        assert_eq!(chat_as(&gateway, &tiered, "metered").await.0, 200);
    }
    let (status, refused) = chat_as(&gateway, &tiered, "metered").await;
    assert_eq!(status, 429, "{refused}");
    for _ in 0..3 {
        assert_eq!(chat_as(&gateway, &own_limit, "metered").await.0, 200);
    }
}
