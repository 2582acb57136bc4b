//! Cost and spend: the price of each answer in its response headers, one spend record per
//! request through the journal into the store, totals on `/key/info`, reports, and records
//! left in the journal by a killed process stored once on the next start.

use std::time::Duration;

use serde_json::{Value, json};
use tollgate_server::Journal;
use tollgate_store::SpendRecord;
use tollgate_testkit::{MockOpenAi, MockOptions, MockProvider};

use crate::harness::*;

/// $1 per million prompt tokens, $2 per million completion tokens: 1,000 and 2,000
/// nano-dollars a token.
fn priced_model(name: &str, api_base: &str) -> String {
    format!(
        "  - model_name: {name}\n    litellm_params:\n      model: openai/house-model\n      api_base: {api_base}\n      api_key: sk-provider\n    model_info:\n      input_cost_per_token: 0.000001\n      output_cost_per_token: 0.000002\n"
    )
}

/// A gateway serving one priced model, `house`, from `mock`.
async fn house_gateway(mock: &MockProvider) -> TestGateway {
    TestGateway::start(&config_with_models(&priced_model(
        "house",
        &mock.base_url(),
    )))
    .await
}

/// Nano-dollars as the cost header writes dollars.
fn dollars(nanos: u64) -> String {
    let text = format!("{}.{:09}", nanos / 1_000_000_000, nanos % 1_000_000_000);
    let text = text.trim_end_matches('0').trim_end_matches('.');
    text.to_owned()
}

fn expected_nanos(usage: &Value) -> u64 {
    usage["prompt_tokens"].as_u64().unwrap() * 1_000
        + usage["completion_tokens"].as_u64().unwrap() * 2_000
}

async fn new_key(gateway: &TestGateway, body: Value) -> String {
    let created = ok(admin_post(gateway, "/key/generate", body).await);
    created["key"].as_str().unwrap().to_owned()
}

async fn spend_logs(gateway: &TestGateway, query: &str) -> Value {
    gateway.gateway.flush_spend().await.expect("spend flushes");
    ok(admin_get(gateway, &format!("/spend/logs?{query}")).await)
}

#[tokio::test]
async fn an_answer_carries_its_cost_and_leaves_one_spend_record() {
    let mock = MockOpenAi::start().await;
    let gateway = house_gateway(&mock).await;
    ok(admin_post(&gateway, "/team/new", json!({"team_id": "research"})).await);
    let key = new_key(
        &gateway,
        json!({"key_alias": "ci", "team_id": "research", "user_id": "ada", "tags": ["batch"]}),
    )
    .await;

    let response = gateway
        .client
        .post(format!("{}/v1/chat/completions", gateway.url))
        .bearer_auth(&key)
        .header("x-request-id", "req-spend-1")
        .header("x-litellm-tags", "team-a, ")
        .json(
            &json!({"model": "house", "user": "customer-7", "tags": ["etl-run"],
                      "metadata": {"tags": ["nightly"], "job": "etl"},
                      "messages": [{"role": "user", "content": "count these five words please"}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // The gateway's own `tags` is read, never forwarded.
    let upstream = mock.last_request().body;
    assert!(upstream.get("tags").is_none(), "{upstream}");
    assert_eq!(upstream["metadata"]["job"], "etl");
    let cost_header = response.headers()["x-tollgate-response-cost"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        response.headers()["x-litellm-response-cost"],
        cost_header.as_str()
    );
    let body: Value = response.json().await.unwrap();
    let nanos = expected_nanos(&body["usage"]);
    assert!(nanos > 0);
    assert_eq!(cost_header, dollars(nanos));

    let logs = spend_logs(&gateway, "request_id=req-spend-1").await;
    assert_eq!(logs["total"], 1, "{logs}");
    let record = &logs["data"][0];
    assert_eq!(record["spend_usd"], dollars(nanos));
    assert_eq!(record["api_key"], tollgate_policy::keys::hash_key(&key));
    assert_eq!(record["key_alias"], "ci");
    assert_eq!(record["team_id"], "research");
    assert_eq!(record["user"], "ada");
    assert_eq!(record["end_user"], "customer-7");
    assert_eq!(record["model_group"], "house");
    assert_eq!(record["model"], "house-model");
    assert_eq!(record["custom_llm_provider"], "openai");
    assert_eq!(record["prompt_tokens"], body["usage"]["prompt_tokens"]);
    assert_eq!(
        record["completion_tokens"],
        body["usage"]["completion_tokens"]
    );
    assert_eq!(record["status"], "success");
    assert_eq!(
        record["request_tags"],
        json!(["batch", "etl-run", "nightly", "team-a"])
    );
    assert_eq!(record["metadata"]["job"], "etl");
    assert_eq!(record["estimated"], false);

    // The key's running total.
    let info = ok(get_as(&gateway, &key, &format!("/key/info?key={key}")).await);
    assert_eq!(info["info"]["spend"].as_f64().unwrap(), nanos as f64 / 1e9);
}

#[tokio::test]
async fn a_stream_is_charged_from_its_final_usage_chunk() {
    let mock = MockOpenAi::start().await;
    let gateway = house_gateway(&mock).await;
    let response = gateway
        .post("/v1/chat/completions")
        .header("x-request-id", "req-stream-1")
        .json(&json!({"model": "house", "stream": true,
                      "stream_options": {"include_usage": true},
                      "messages": [{"role": "user", "content": "stream me a few words"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let events = read_events(response).await;
    let usage = events
        .iter()
        .filter_map(|event| serde_json::from_str::<Value>(event).ok())
        .find(|chunk| chunk["usage"].is_object())
        .expect("the client asked for usage")["usage"]
        .clone();

    let logs = spend_logs(&gateway, "request_id=req-stream-1").await;
    let record = &logs["data"][0];
    assert_eq!(record["stream"], true);
    assert_eq!(record["spend_usd"], dollars(expected_nanos(&usage)));
    assert_eq!(record["completion_tokens"], usage["completion_tokens"]);
}

/// A chat with `model` ("one two three"): the cost header's dollars, and the answer.
async fn priced_chat(gateway: &TestGateway, model: &str) -> (String, Value) {
    let response = gateway
        .post("/v1/chat/completions")
        .json(&json!({"model": model, "messages": [{"role": "user", "content": "one two three"}]}))
        .send()
        .await
        .unwrap();
    let cost = response.headers()["x-tollgate-response-cost"]
        .to_str()
        .unwrap()
        .to_owned();
    (cost, response.json().await.unwrap())
}

#[tokio::test]
async fn the_built_in_price_table_prices_a_known_model() {
    let mock = MockOpenAi::start().await;
    let gateway = TestGateway::start(&config_with_models(&openai_model(
        "mini",
        "gpt-4o-mini",
        &mock.base_url(),
    )))
    .await;
    let (cost, body) = priced_chat(&gateway, "mini").await;
    // prices.yaml: gpt-4o-mini is $0.15 in and $0.60 out per million tokens.
    let nanos = body["usage"]["prompt_tokens"].as_u64().unwrap() * 150
        + body["usage"]["completion_tokens"].as_u64().unwrap() * 600;
    assert_eq!(cost, dollars(nanos));
    let calculated = ok(admin_post(
        &gateway,
        "/spend/calculate",
        json!({"completion_response": {"model": "mini", "usage": body["usage"]}}),
    )
    .await);
    assert_eq!(calculated["cost_usd"], dollars(nanos));
}

#[tokio::test]
async fn a_deployment_priced_by_the_second_is_charged_for_its_duration() {
    // A hosted endpoint billed while it works: prompt tokens at $1/M, output at $0.01 a second.
    let mock = MockOpenAi::start_with(
        MockOptions {
            latency: Duration::from_millis(300),
            ..MockOptions::default()
        },
        "127.0.0.1:0",
    )
    .await;
    let gateway = TestGateway::start(&config_with_models(&format!(
        "  - model_name: hosted\n    litellm_params:\n      model: openai/hosted-model\n      api_base: {}\n      api_key: sk-provider\n    model_info:\n      input_cost_per_token: 0.000001\n      output_cost_per_second: 0.01\n",
        mock.base_url()
    )))
    .await;
    let started = std::time::Instant::now();
    let (cost, body) = priced_chat(&gateway, "hosted").await;
    let cost: f64 = cost.parse().unwrap();
    let waited = started.elapsed().as_secs_f64();
    let prompt = body["usage"]["prompt_tokens"].as_f64().unwrap() * 0.000001;
    // At least the provider's 300 ms at $0.01 a second; at most what the client waited.
    assert!(cost >= prompt + 0.003, "{cost}");
    assert!(
        cost <= prompt + waited * 0.01 + 1e-9,
        "{cost} after {waited} s"
    );

    let logs = spend_logs(&gateway, "model=hosted").await;
    assert_eq!(logs["data"][0]["spend"].as_f64().unwrap(), cost, "{logs}");
    // `/spend/calculate` prices a given duration exactly: 2.5 s and the prompt.
    let calculated = ok(admin_post(
        &gateway,
        "/spend/calculate",
        json!({"completion_response": {"model": "hosted", "usage": {"prompt_tokens": 1000, "completion_tokens": 99999, "total_tokens": 100999}},
               "response_time_ms": 2500}),
    )
    .await);
    assert_eq!(calculated["cost_usd"], "0.026");
}

#[tokio::test]
async fn requests_sharing_a_client_request_id_each_keep_their_spend() {
    // Services pass one x-request-id on to every call they make for a request, and clients
    // retry under the same id: neither may cost a record.
    let mock = MockOpenAi::start().await;
    let gateway = house_gateway(&mock).await;
    let key = new_key(&gateway, json!({"key_alias": "shared-ids"})).await;
    let mut charged = 0;
    let mut call_ids = Vec::new();
    for words in ["one two", "three four five"] {
        let response = gateway
            .client
            .post(format!("{}/v1/chat/completions", gateway.url))
            .bearer_auth(&key)
            .header("x-request-id", "checkout-7f3a")
            .json(&json!({"model": "house", "messages": [{"role": "user", "content": words}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["x-request-id"], "checkout-7f3a");
        let call_id = response.headers()["x-litellm-call-id"].to_str().unwrap();
        assert_eq!(response.headers()["x-tollgate-call-id"], call_id);
        call_ids.push(call_id.to_owned());
        let body: Value = response.json().await.unwrap();
        charged += expected_nanos(&body["usage"]);
    }
    assert_ne!(call_ids[0], call_ids[1]);
    // Without an id of the client's, the one the gateway mints is both.
    let response = gateway
        .client
        .post(format!("{}/v1/chat/completions", gateway.url))
        .bearer_auth(&key)
        .json(&json!({"model": "house", "messages": [{"role": "user", "content": "six"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["x-litellm-call-id"],
        response.headers()["x-request-id"]
    );
    let body: Value = response.json().await.unwrap();
    charged += expected_nanos(&body["usage"]);

    let logs = spend_logs(&gateway, "request_id=checkout-7f3a").await;
    assert_eq!(logs["total"], 2, "{logs}");
    let records = logs["data"].as_array().unwrap();
    assert!(
        records
            .iter()
            .all(|record| record["client_request_id"] == "checkout-7f3a")
    );
    // Each record is under the call id its response carried, and found by it.
    for call_id in &call_ids {
        assert!(
            records
                .iter()
                .any(|record| record["request_id"] == *call_id)
        );
        let found = spend_logs(&gateway, &format!("request_id={call_id}")).await;
        assert_eq!(found["total"], 1, "{found}");
    }
    // The key reads its own spend, named or not, though no user owns it.
    for path in [format!("/key/info?key={key}"), "/key/info".to_owned()] {
        let info = ok(get_as(&gateway, &key, &path).await);
        assert_eq!(
            info["info"]["spend"].as_f64().unwrap(),
            charged as f64 / 1e9
        );
    }
    let other = new_key(&gateway, json!({})).await;
    assert_eq!(
        get_as(&gateway, &other, &format!("/key/info?key={key}"))
            .await
            .0,
        404
    );
    // The master key has no key of its own to default to.
    assert_eq!(admin_get(&gateway, "/key/info").await.0, 400);
}

#[tokio::test]
async fn failures_are_recorded_at_no_cost() {
    let mock = MockOpenAi::start().await;
    let broken = priced_model("broken", &mock.base_url()).replace("house-model", "error-400");
    let gateway = TestGateway::start(&config_with_models(&broken)).await;
    let response = gateway
        .post("/v1/chat/completions")
        .header("x-request-id", "req-fails")
        .json(&json!({"model": "broken", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let error: Value = response.json().await.unwrap();
    let logs = spend_logs(&gateway, "request_id=req-fails").await;
    assert_eq!(logs["total"], 1, "{logs}");
    let record = &logs["data"][0];
    assert_eq!(record["http_status"], 400);
    assert_eq!(record["status"], "failure");
    assert_eq!(record["spend"], 0.0);
    // The provider's error code, which routing and reports tell failures apart by.
    assert_eq!(record["error_class"], error["error"]["code"]);
    assert!(record["error_class"].is_string());
}

fn left_behind(id: &str, key_hash: &str, nanos: u64) -> SpendRecord {
    SpendRecord {
        request_id: id.to_owned(),
        call_type: "/v1/chat/completions".into(),
        key_hash: Some(key_hash.to_owned()),
        model_group: Some("house".into()),
        prompt_tokens: 10,
        completion_tokens: 5,
        spend: nanos,
        status: "success".into(),
        http_status: 200,
        start_time: 1_795_219_200_000,
        end_time: 1_795_219_200_500,
        ..SpendRecord::default()
    }
}

#[tokio::test]
async fn records_left_in_the_journal_are_stored_once_on_the_next_start() {
    let mock = MockOpenAi::start().await;
    let yaml = config_with_models(&priced_model("house", &mock.base_url()));
    let store = test_store().await;
    let dir = fresh_path("journal");
    let key_hash = "ab".repeat(32);
    // A process killed before its journal was drained left two records behind.
    {
        let journal = Journal::open(&dir, 1 << 20).unwrap();
        journal
            .append(left_behind("left-1", &key_hash, 1_250))
            .unwrap();
        journal
            .append(left_behind("left-2", &key_hash, 2_500))
            .unwrap();
    }
    let first = TestGateway::start_with_journal(&yaml, store.clone(), &dir).await;
    let logs = spend_logs(&first, &format!("api_key={key_hash}")).await;
    assert_eq!(logs["total"], 2, "{logs}");

    // The same records replayed again (a crash between commit and delete) count once.
    {
        let journal = Journal::open(&dir, 1 << 20).unwrap();
        journal
            .append(left_behind("left-1", &key_hash, 1_250))
            .unwrap();
    }
    let second = TestGateway::start_with_journal(&yaml, store, &dir).await;
    let logs = spend_logs(&second, &format!("api_key={key_hash}")).await;
    assert_eq!(logs["total"], 2);
    let report = ok(admin_get(
        &second,
        "/global/spend/report?group_by=key&start_date=2026-11-21&end_date=2026-11-21",
    )
    .await);
    assert_eq!(report["data"][0]["api_key"], key_hash.as_str());
    assert_eq!(report["data"][0]["requests"], 2);
    assert_eq!(report["data"][0]["spend"].as_f64().unwrap(), 3_750.0 / 1e9);
    let by_day = ok(admin_get(
        &second,
        "/global/spend/report?group_by=day&start_date=2026-11-20&end_date=2026-11-22",
    )
    .await);
    assert_eq!(
        by_day["data"],
        json!([{"date": "2026-11-21", "spend": 3_750.0 / 1e9,
        "requests": 2, "failed_requests": 0, "prompt_tokens": 20, "completion_tokens": 10,
        "total_tokens": 30}])
    );
}

#[tokio::test]
async fn spend_reports_need_an_admin_and_valid_dates() {
    let mock = MockOpenAi::start().await;
    let gateway = house_gateway(&mock).await;
    let key = new_key(&gateway, json!({})).await;
    assert_eq!(get_as(&gateway, &key, "/spend/logs").await.0, 403);
    let (status, body) = admin_get(&gateway, "/spend/logs?start_date=last-week").await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["param"], "start_date");
    let (status, body) = admin_get(&gateway, "/global/spend/report?group_by=planet").await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["param"], "group_by");
}

/// A store reached through a proxy the test can cut, to take the database away; `None`
/// without PostgreSQL (said on stderr; `.ci/run` requires it).
async fn store_behind_a_proxy() -> Option<(tollgate_server::Store, tollgate_testkit::TcpProxy)> {
    let url = tollgate_testkit::databases::postgres_url().await?;
    let parsed = url::Url::parse(&url).unwrap();
    let target = format!(
        "{}:{}",
        parsed.host_str().unwrap(),
        parsed.port().unwrap_or(5432)
    );
    let proxy = tollgate_testkit::TcpProxy::start(target.parse().unwrap()).await;
    let mut proxied = parsed.clone();
    proxied.set_host(Some("127.0.0.1")).unwrap();
    proxied.set_port(Some(proxy.addr().port())).unwrap();
    let store = tollgate_server::Store::connect(proxied.as_str())
        .await
        .unwrap();
    Some((store, proxy))
}

/// Flushes the journal once the database is back (the pool's broken connections fail once
/// each before new ones are made).
async fn flush_after_outage(gateway: &TestGateway) {
    for _ in 0..10 {
        if gateway.gateway.flush_spend().await.is_ok() {
            return;
        }
    }
    panic!("the journal does not drain though the database is back");
}

#[tokio::test]
async fn requests_are_served_while_the_database_is_down_and_every_record_arrives_after() {
    let Some((store, proxy)) = store_behind_a_proxy().await else {
        return;
    };

    let mock = MockOpenAi::start().await;
    let gateway = TestGateway::start_on(
        &config_with_models(&priced_model("house", &mock.base_url())),
        store,
    )
    .await;
    let key = new_key(&gateway, json!({"key_alias": "through-outage"})).await;
    let chat = |n: usize| {
        let gateway = &gateway;
        let key = key.clone();
        async move {
            gateway
                .client
                .post(format!("{}/v1/chat/completions", gateway.url))
                .bearer_auth(key)
                .header("x-request-id", format!("outage-{n}"))
                .json(
                    &json!({"model": "house", "messages": [{"role": "user", "content": "hello"}]}),
                )
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    for n in 0..10 {
        assert_eq!(chat(n).await, 200);
    }
    proxy.cut();
    let during = futures_util::future::join_all((10..60).map(chat)).await;
    assert!(during.iter().all(|status| *status == 200), "{during:?}");
    assert!(
        gateway.gateway.flush_spend().await.is_err(),
        "the database is down"
    );

    proxy.restore();
    flush_after_outage(&gateway).await;
    let logs = ok(admin_get(
        &gateway,
        &format!("/spend/logs?api_key={key}&page_size=100"),
    )
    .await);
    assert_eq!(logs["total"], 60, "every request's record arrived");
}

#[tokio::test]
async fn a_full_journal_refuses_requests_until_the_database_is_back() {
    let Some((store, proxy)) = store_behind_a_proxy().await else {
        return;
    };
    let mock = MockOpenAi::start().await;
    let yaml = config_with_models(&priced_model("house", &mock.base_url()));
    // Room for a few records only.
    let gateway = TestGateway::start_with_journal_limit(&yaml, store, 2_000).await;
    let chat = || async {
        let response = gateway
            .post("/v1/chat/completions")
            .json(&json!({"model": "house", "messages": [{"role": "user", "content": "hello"}]}))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json::<Value>().await.unwrap())
    };
    proxy.cut();
    let mut answered = 0;
    let refusal = loop {
        let (status, body) = chat().await;
        if status != 200 {
            break (status, body);
        }
        answered += 1;
        assert!(answered < 20, "the journal never filled");
    };
    assert!(answered >= 1);
    assert_eq!(refusal.0, 503, "{}", refusal.1);
    assert_eq!(refusal.1["error"]["code"], "spend_journal_full");
    let (status, ready) = admin_get(&gateway, "/health/readiness").await;
    assert_eq!(status, 503);
    assert_eq!(ready["status"], "spend_journal_full");

    proxy.restore();
    flush_after_outage(&gateway).await;
    assert_eq!(chat().await.0, 200);
    let logs = spend_logs(&gateway, "model=house").await;
    assert_eq!(
        logs["total"],
        answered + 1,
        "nothing answered went unrecorded"
    );
}

#[tokio::test]
async fn a_stream_the_client_leaves_is_charged_an_estimate_flagged_as_such() {
    let mock = MockOpenAi::start().await;
    // The provider sends one chunk, then nothing: its usage never comes.
    let stalling = priced_model("stalling", &mock.base_url()).replace("house-model", "stall");
    let gateway = TestGateway::start(&config_with_models(&stalling)).await;
    let mut response = gateway
        .post("/v1/chat/completions")
        .header("x-request-id", "req-left")
        .json(&json!({"model": "stalling", "stream": true,
                      "messages": [{"role": "user", "content": "tell me a long story about budgets"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.chunk().await.unwrap().is_some(),
        "the first event arrives"
    );
    drop(response);

    let mut record = Value::Null;
    for _ in 0..50 {
        let logs = spend_logs(&gateway, "request_id=req-left").await;
        if logs["total"] == 1 {
            record = logs["data"][0].clone();
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(record["estimated"], true, "{record}");
    assert_eq!(record["error_class"], "client_disconnected");
    let prompt = record["prompt_tokens"].as_u64().unwrap();
    let completion = record["completion_tokens"].as_u64().unwrap();
    assert!(prompt > 5, "the prompt counted by the tokenizer: {record}");
    assert!(completion >= 1, "the events relayed: {record}");
    assert_eq!(
        record["spend_usd"],
        dollars(prompt * 1_000 + completion * 2_000),
        "{record}"
    );
}
