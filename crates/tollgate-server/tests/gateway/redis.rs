//! Replicas sharing a Redis (`router_settings.redis_url`), each with the same store: a key's
//! rate limits and budget hold across them as they hold within one — requests sent to both at
//! once never pass an `rpm_limit`, `max_parallel_requests` or `max_budget` together — and a
//! replica whose Redis is away keeps serving, counting on its own.
//!
//! Needs the Redis at `TOLLGATE_TEST_REDIS_URL` (see `tollgate_testkit::redis`).

use std::time::Duration;

use serde_json::{Value, json};
use tollgate_testkit::{Fault, MockOpenAi, MockProvider};

use crate::harness::*;

/// Output at $2 per million tokens, input free: a request asking for at most 100 tokens can
/// cost at most $0.0002, whatever its prompt. `other` is a second model keys are not given.
fn models(api_base: &str) -> String {
    format!(
        "  - model_name: metered\n    litellm_params:\n      model: openai/metered\n      api_base: {api_base}\n      api_key: sk-provider\n    model_info:\n      input_cost_per_token: 0\n      output_cost_per_token: 0.000002\n{}",
        openai_model("other", "gpt-4o", api_base)
    )
}

const WORST_CASE: f64 = 0.0002;

fn config(mock: &MockProvider, redis_url: &str) -> String {
    format!(
        "{}router_settings:\n  redis_url: {redis_url}\ntollgate_settings:\n  store_sync_interval: 50ms\n  redis_key_prefix: {}\n",
        config_with_models(&models(&mock.base_url())),
        tollgate_testkit::redis::unique_prefix()
    )
}

/// Two replicas on one store and one Redis; `None` when there is no test Redis.
async fn replicas(mock: &MockProvider) -> Option<(TestGateway, TestGateway)> {
    let redis_url = tollgate_testkit::redis::redis_url().await?;
    let yaml = config(mock, &redis_url);
    let store = test_store().await;
    let a = TestGateway::start_on(&yaml, store.clone()).await;
    let b = TestGateway::start_on(&yaml, store).await;
    Some((a, b))
}

/// A key made through `a`, once `b` knows it too (asked for a model the key may not use, so
/// no limit is spent finding out).
async fn key_on_both(a: &TestGateway, b: &TestGateway, fields: Value) -> String {
    let mut body = json!({"models": ["metered"]});
    body.as_object_mut()
        .unwrap()
        .extend(fields.as_object().unwrap().clone());
    let key = ok(admin_post(a, "/key/generate", body).await)["key"]
        .as_str()
        .unwrap()
        .to_owned();
    for _ in 0..400 {
        if chat_as(b, &key, "other").await.0 == 403 {
            return key;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the key never reached the second replica");
}

fn request() -> Value {
    json!({"model": "metered", "max_tokens": 100,
           "messages": [{"role": "user", "content": "a short answer please"}]})
}

/// Sends `count` requests with `key` at once, alternating between the replicas; each answer's
/// status and body.
async fn burst(
    replicas: [&TestGateway; 2],
    key: &str,
    count: usize,
) -> Vec<(u16, reqwest::header::HeaderMap, Value)> {
    let sends = (0..count).map(|i| {
        let gateway = replicas[i % 2];
        let response = gateway
            .client
            .post(format!("{}/v1/chat/completions", gateway.url))
            .bearer_auth(key)
            .json(&request())
            .send();
        async move {
            let response = response.await.unwrap();
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            (status, headers, response.json::<Value>().await.unwrap())
        }
    });
    futures_util::future::join_all(sends).await
}

fn count(results: &[(u16, reqwest::header::HeaderMap, Value)], status: u16) -> usize {
    results.iter().filter(|(s, _, _)| *s == status).count()
}

#[tokio::test]
async fn an_rpm_limit_holds_across_replicas() {
    let mock = MockOpenAi::start().await;
    let Some((a, b)) = replicas(&mock).await else {
        return;
    };
    let key = key_on_both(&a, &b, json!({"rpm_limit": 60})).await;
    let results = burst([&a, &b], &key, 200).await;
    assert_eq!(count(&results, 200), 60, "exactly the limit, between both");
    assert_eq!(count(&results, 429), 140);
    let (_, headers, refusal) = results.iter().find(|(s, _, _)| *s == 429).unwrap();
    assert_eq!(refusal["error"]["code"], "rate_limit_exceeded", "{refusal}");
    assert!(
        refusal["error"]["message"]
            .as_str()
            .unwrap()
            .contains("rpm_limit is 60")
    );
    assert_eq!(headers["x-ratelimit-remaining-requests"], "0");
    let retry_after: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((55..=60).contains(&retry_after), "{retry_after}");
    // Either replica's answers count down the one shared window.
    let served: Vec<u64> = results
        .iter()
        .filter(|(s, _, _)| *s == 200)
        .map(|(_, headers, _)| {
            headers["x-ratelimit-remaining-requests"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    let mut remaining = served.clone();
    remaining.sort_unstable();
    assert_eq!(remaining, (0..60).collect::<Vec<u64>>());
}

#[tokio::test]
async fn parallel_requests_are_counted_across_replicas() {
    let mock = MockOpenAi::start().await;
    mock.faults
        .fail_all(Fault::Delay(Duration::from_millis(1500)));
    let Some((a, b)) = replicas(&mock).await else {
        return;
    };
    let key = key_on_both(&a, &b, json!({"max_parallel_requests": 3})).await;
    let results = burst([&a, &b], &key, 12).await;
    assert_eq!(
        count(&results, 200),
        3,
        "three in flight at most, between both"
    );
    assert_eq!(count(&results, 429), 9);
    // Those three have ended: their places are free again on either replica.
    let mut served = 0;
    for _ in 0..100 {
        if chat_as(&b, &key, "metered").await.0 == 200 {
            served += 1;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(
        served, 1,
        "the ended requests' places were never given back"
    );
}

#[tokio::test]
async fn a_budget_holds_across_replicas_and_either_shows_all_its_spend() {
    let mock = MockOpenAi::start().await;
    // Every answer waits until the whole burst has arrived.
    mock.faults.fail_all(Fault::Delay(Duration::from_secs(2)));
    let Some((a, b)) = replicas(&mock).await else {
        return;
    };
    let key = key_on_both(&a, &b, json!({"max_budget": 10.0 * WORST_CASE})).await;
    let results = burst([&a, &b], &key, 200).await;
    assert_eq!(count(&results, 200), 10, "ten worst cases, between both");
    assert_eq!(count(&results, 400), 190);
    let (_, _, refusal) = results.iter().find(|(s, _, _)| *s == 400).unwrap();
    assert_eq!(refusal["error"]["type"], "budget_exceeded", "{refusal}");
    let charged: f64 = results
        .iter()
        .filter(|(s, _, _)| *s == 200)
        .map(|(_, headers, _)| {
            headers["x-tollgate-response-cost"]
                .to_str()
                .unwrap()
                .parse::<f64>()
                .unwrap()
        })
        .sum();
    assert!(charged > 0.0 && charged <= 10.0 * WORST_CASE, "{charged}");
    // Each replica shows what both charged (settlement follows the answer).
    for gateway in [&a, &b] {
        let mut shown = 0.0;
        for _ in 0..100 {
            let info = ok(admin_get(gateway, &format!("/key/info?key={key}")).await);
            shown = info["info"]["spend"].as_f64().unwrap();
            if (shown - charged).abs() < 1e-12 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert!((shown - charged).abs() < 1e-12, "{shown} != {charged}");
    }
    // And the records both replicas stored add up to the same.
    b.gateway.flush_spend().await.unwrap();
    let (_, recorded) = recorded_spend(&a, &format!("api_key={key}")).await;
    assert!(
        (recorded - charged).abs() < 1e-12,
        "{recorded} != {charged}"
    );
    let (_, ready) = admin_get(&a, "/health/readiness").await;
    assert_eq!(ready["redis"], "connected", "{ready}");
}

#[tokio::test]
async fn a_replica_whose_redis_is_away_serves_and_counts_on_its_own() {
    let mock = MockOpenAi::start().await;
    // Nothing listens on port 1.
    let gateway = TestGateway::start(&config(&mock, "redis://127.0.0.1:1")).await;
    let key = ok(admin_post(&gateway, "/key/generate", json!({"rpm_limit": 2})).await)["key"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(chat_as(&gateway, &key, "metered").await.0, 200);
    assert_eq!(chat_as(&gateway, &key, "metered").await.0, 200);
    let (status, refusal) = chat_as(&gateway, &key, "metered").await;
    assert_eq!(status, 429, "the limit still holds here: {refusal}");
    let response = gateway.get("/health/readiness").send().await.unwrap();
    assert_eq!(
        response.status(),
        200,
        "serving without Redis is still ready"
    );
    let ready: Value = response.json().await.unwrap();
    assert_eq!(ready["redis"], "disconnected", "{ready}");
}
