//! Spend records survive `kill -9`: every answer a client received under load has its record
//! once the gateway is started again, stored exactly once.

mod support;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use support::{Served, write_config};

const MASTER_KEY: &str = "sk-crash-master";
const CLIENTS: usize = 16;

fn config() -> std::path::PathBuf {
    write_config(
        "crash",
        &format!(
            "general_settings:\n  master_key: {MASTER_KEY}\nmodel_list:\n  - model_name: echo\n    litellm_params:\n      model: mock/echo\n    model_info:\n      input_cost_per_token: 0.000001\n      output_cost_per_token: 0.000002\n"
        ),
    )
}

fn start(config: &std::path::Path) -> (Served, String) {
    let mut served = Served::start(&config.to_path_buf(), &["--log-format", "json"]);
    let listening: Value = serde_json::from_str(&served.wait_for("tollgate listening")).unwrap();
    let address = listening["address"].as_str().unwrap().to_owned();
    (served, format!("http://{address}"))
}

/// Every spend record the gateway has stored: request id and status.
async fn stored_records(client: &reqwest::Client, url: &str) -> Vec<(String, String)> {
    let mut records = Vec::new();
    for page in 1.. {
        let body: Value = client
            .get(format!("{url}/spend/logs?page_size=1000&page={page}"))
            .bearer_auth(MASTER_KEY)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let data = body["data"].as_array().unwrap();
        if data.is_empty() {
            break;
        }
        records.extend(data.iter().map(|record| {
            (
                // The id each client request carried (`x-request-id`).
                record["client_request_id"].as_str().unwrap().to_owned(),
                record["status"].as_str().unwrap().to_owned(),
            )
        }));
    }
    records
}

#[test]
fn every_answer_a_client_saw_is_recorded_after_kill_9() {
    let config = config();
    let _ = std::fs::remove_dir_all(config.parent().unwrap().join("spend-journal"));
    let _ = std::fs::remove_file(config.parent().unwrap().join("tollgate.db"));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();

    let (mut served, url) = start(&config);
    let answered: Arc<Mutex<HashSet<String>>> = Arc::default();
    runtime.block_on(async {
        let client = reqwest::Client::new();
        let mut clients = Vec::new();
        for worker in 0..CLIENTS {
            let (client, url, answered) = (client.clone(), url.clone(), answered.clone());
            clients.push(tokio::spawn(async move {
                for n in 0.. {
                    let id = format!("crash-{worker}-{n}");
                    let sent = client
                        .post(format!("{url}/v1/chat/completions"))
                        .bearer_auth(MASTER_KEY)
                        .header("x-request-id", &id)
                        .json(&json!({"model": "echo",
                            "messages": [{"role": "user", "content": "spend some money"}]}))
                        .send()
                        .await;
                    // The gateway is gone: this client stops.
                    let Ok(response) = sent else { break };
                    if response.status() != 200 {
                        break;
                    }
                    // Answered only once the whole body is in.
                    match response.json::<Value>().await {
                        Ok(body) if body["choices"].is_array() => {
                            answered.lock().unwrap().insert(id);
                        }
                        _ => break,
                    }
                }
            }));
        }
        tokio::time::sleep(Duration::from_millis(1500)).await;
        served.child.kill().expect("SIGKILL is delivered");
        for client in clients {
            client.await.unwrap();
        }
    });
    let _ = served.child.wait();
    let answered = answered.lock().unwrap().clone();
    assert!(answered.len() > 100, "load ran: {} answers", answered.len());

    let (_restarted, url) = start(&config);
    let records = runtime.block_on(stored_records(&reqwest::Client::new(), &url));
    let ids: Vec<&str> = records.iter().map(|(id, _)| id.as_str()).collect();
    let distinct: HashSet<&str> = ids.iter().copied().collect();
    assert_eq!(distinct.len(), ids.len(), "each request stored once");
    let missing: Vec<&String> = answered
        .iter()
        .filter(|id| !distinct.contains(id.as_str()))
        .collect();
    assert!(missing.is_empty(), "answered but not recorded: {missing:?}");
    // At most the requests in flight when the process died were recorded without their
    // answer reaching the client (the provider was paid for them all the same).
    let succeeded = records
        .iter()
        .filter(|(_, status)| status == "success")
        .count();
    assert!(
        succeeded >= answered.len() && succeeded <= answered.len() + CLIENTS,
        "{succeeded} records for {} answers",
        answered.len()
    );
}
