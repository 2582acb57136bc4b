//! The `tollgate` binary as an operator meets it: start-up messages, config errors, logs,
//! `check-config`, the management commands, `spend`, and a clean exit on SIGTERM.

mod support;

use support::{Served, block_on, tollgate, write_config};

const ECHO_MODELS: &str =
    "model_list:\n  - model_name: echo\n    litellm_params:\n      model: mock/echo\n";

/// What `tollgate check-config` prints for a config it accepts.
fn checked(config: &std::path::Path) -> String {
    let output = tollgate().arg("check-config").arg(config).output().unwrap();
    assert!(output.status.success());
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn check_config_prints_the_model_table_with_keys_redacted() {
    let config = write_config(
        "check",
        "model_list:\n  - model_name: gpt-4o\n    litellm_params:\n      model: openai/gpt-4o\n      api_key: sk-never-print-me\n  - model_name: local\n    litellm_params:\n      model: ollama/llama3\nrouter_settings:\n  client_ttl: 3600\n",
    );
    let text = checked(&config);
    assert!(
        text.contains("OK — 2 model group(s), 2 deployment(s)"),
        "{text}"
    );
    assert!(text.contains("https://api.openai.com/v1"), "{text}");
    assert!(text.contains("http://localhost:11434/v1"), "{text}");
    assert!(text.contains("<redacted>"), "{text}");
    assert!(!text.contains("sk-never-print-me"), "{text}");
    assert!(text.contains("router_settings.client_ttl"), "{text}");
    assert!(text.contains("redis: none"), "{text}");

    // A LiteLLM config's Redis is named, its password masked.
    let config = write_config(
        "check-redis",
        "model_list: []\nrouter_settings:\n  redis_host: cache.internal\n  redis_port: 6380\n  redis_password: hunter2\n",
    );
    let text = checked(&config);
    assert!(
        text.contains("redis: redis://:****@cache.internal:6380 (from router_settings.redis_host; keys under `tollgate:`)"),
        "{text}"
    );
    assert!(!text.contains("hunter2"), "{text}");
}

#[test]
fn a_bad_config_stops_start_up_naming_the_field() {
    let config = write_config(
        "bad",
        "model_list:\n  - model_name: x\n    litellm_params:\n      model: nonsense/model\n",
    );
    for args in [vec!["check-config"], vec!["serve", "--config"]] {
        let output = tollgate().args(&args).arg(&config).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert!(
            stderr.contains("model_list[0].litellm_params.model"),
            "{stderr}"
        );
        assert!(
            stderr.contains("unknown provider prefix `nonsense`"),
            "{stderr}"
        );
    }
}

#[test]
fn serving_logs_one_line_per_request_and_exits_cleanly_on_sigterm() {
    let config = write_config(
        "serve",
        &format!(
            "{ECHO_MODELS}litellm_settings:\n  drop_params: true\n  success_callback: [\"langfuse\"]\nrouter_settings:\n  client_ttl: 3600\n"
        ),
    );
    let mut served = Served::start(&config, &["--log-format", "json", "--workers", "2"]);

    // The unused keys are listed in one warning, and the open gateway is called out.
    let warning = served.wait_for("accepted but not acted on");
    let warning: serde_json::Value = serde_json::from_str(&warning).unwrap();
    assert_eq!(warning["level"], "WARN");
    assert_eq!(
        warning["keys"],
        "litellm_settings.success_callback, router_settings.client_ttl"
    );
    served.wait_for("no general_settings.master_key");
    let listening: serde_json::Value =
        serde_json::from_str(&served.wait_for("tollgate listening")).unwrap();
    let address = listening["address"].as_str().unwrap().to_owned();
    assert_eq!(listening["workers"], 2);

    let status = block_on(async {
        // Fresh connections, spread by the kernel over both workers.
        for _ in 0..8 {
            let status = reqwest::Client::new()
                .post(format!("http://{address}/v1/chat/completions"))
                .body(r#"{"model":"echo","messages":[{"role":"user","content":"warm up"}]}"#)
                .send()
                .await
                .unwrap()
                .status();
            assert_eq!(status, 200);
        }
        reqwest::Client::new()
            .post(format!("http://{address}/v1/chat/completions"))
            .header("x-request-id", "cli-test-request")
            .body(r#"{"model":"echo","messages":[{"role":"user","content":"log me"}]}"#)
            .send()
            .await
            .unwrap()
            .status()
    });
    assert_eq!(status, 200);

    let access: serde_json::Value =
        serde_json::from_str(&served.wait_for("cli-test-request")).unwrap();
    assert_eq!(access["target"], "tollgate::access");
    assert_eq!(access["status"], 200);
    assert_eq!(access["model"], "echo");
    assert_eq!(access["provider"], "mock");
    assert_eq!(access["total_tokens"], 4);

    assert_eq!(served.terminate(), 0, "{}", served.seen.join("\n"));
    assert!(
        served
            .seen
            .iter()
            .any(|line| line.contains("drained; exiting"))
    );
    let count = |needle: &str| served.seen.iter().filter(|l| l.contains(needle)).count();
    assert_eq!(count("cli-test-request"), 1, "{}", served.seen.join("\n"));
    assert_eq!(count("accepted but not acted on"), 1);
}

/// Two deployments that refuse connections, and one retry: each request logs the failed
/// attempt before it is tried again.
const DEAD_MODELS: &str = "model_list:\n  - model_name: dead\n    litellm_params:\n      model: openai/gpt-4o\n      api_base: http://127.0.0.1:1/v1\n      api_key: sk-x\n  - model_name: dead\n    litellm_params:\n      model: openai/gpt-4o\n      api_base: http://127.0.0.1:2/v1\n      api_key: sk-x\nrouter_settings:\n  num_retries: 1\n  retry_after: 0\n";

#[test]
fn lines_logged_while_a_request_is_served_carry_its_request_id() {
    for format in ["json", "text"] {
        let config = write_config(&format!("request-id-{format}"), DEAD_MODELS);
        let mut served = Served::start(&config, &["--log-format", format]);
        let listening = served.wait_for("tollgate listening");
        assert!(!listening.contains("request_id"), "{listening}");
        let address = listening
            .split(['"', ' '])
            .find_map(|part| part.strip_prefix("address=").map(str::to_owned))
            .or_else(|| {
                let line: serde_json::Value = serde_json::from_str(&listening).ok()?;
                Some(line["address"].as_str()?.to_owned())
            })
            .unwrap_or_else(|| panic!("no address in {listening}"));

        let status = block_on(async {
            reqwest::Client::new()
                .post(format!("http://{address}/v1/chat/completions"))
                .header("x-request-id", "retried request 7")
                .body(r#"{"model":"dead","messages":[{"role":"user","content":"hi"}]}"#)
                .send()
                .await
                .unwrap()
                .status()
        });
        assert_eq!(status, 502);

        let retry = served.wait_for("attempt failed; trying again");
        if format == "json" {
            let retry: serde_json::Value = serde_json::from_str(&retry).unwrap();
            assert_eq!(retry["request_id"], "retried request 7", "{retry}");
            assert_eq!(retry["level"], "INFO", "{retry}");
        } else {
            assert!(
                retry.ends_with(r#" request_id="retried request 7""#),
                "{retry}"
            );
        }
        assert_eq!(served.terminate(), 0);
    }
}

/// The README's quick start: `examples/quickstart.yaml` serves chat and embeddings from the
/// built-in mock provider, behind its master key.
#[test]
fn the_quick_start_config_serves_chat_and_embeddings() {
    let config = std::path::PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/quickstart.yaml"
    ));
    assert!(checked(&config).contains("OK — 2 model group(s)"));
    let mut served = Served::start(&config, &["--log-format", "json"]);
    let listening: serde_json::Value =
        serde_json::from_str(&served.wait_for("tollgate listening")).unwrap();
    let address = listening["address"].as_str().unwrap().to_owned();

    block_on(async {
        let client = reqwest::Client::new();
        let post = |path: &str, body: &'static str| {
            client
                .post(format!("http://{address}/v1/{path}"))
                .bearer_auth("sk-tollgate-quickstart")
                .header("content-type", "application/json")
                .body(body)
        };
        let chat = post(
            "chat/completions",
            r#"{"model": "echo", "messages": [{"role": "user", "content": "hello"}]}"#,
        )
        .send()
        .await
        .unwrap();
        assert_eq!(chat.status(), 200);
        let chat: serde_json::Value = chat.json().await.unwrap();
        assert_eq!(chat["choices"][0]["message"]["content"], "hello");

        let embeddings = post(
            "embeddings",
            r#"{"model": "text-embedding-mock", "input": ["one", "two"]}"#,
        )
        .send()
        .await
        .unwrap();
        assert_eq!(embeddings.status(), 200);
        let embeddings: serde_json::Value = embeddings.json().await.unwrap();
        let data = embeddings["data"].as_array().unwrap();
        assert_eq!(data.len(), 2);
        assert!(!data[0]["embedding"].as_array().unwrap().is_empty());
        assert_ne!(data[0]["embedding"], data[1]["embedding"]);

        let unkeyed = client
            .post(format!("http://{address}/v1/chat/completions"))
            .body(r#"{"model": "echo", "messages": [{"role": "user", "content": "hello"}]}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(unkeyed.status(), 401);
    });
    assert_eq!(served.terminate(), 0);
}

#[test]
fn text_logs_are_the_default() {
    let config = write_config(
        "text",
        &format!("{ECHO_MODELS}general_settings:\n  master_key: sk-x\n"),
    );
    let mut served = Served::start(&config, &[]);
    let line = served.wait_for("tollgate listening");
    assert!(line.contains(" INFO "), "{line}");
    assert!(serde_json::from_str::<serde_json::Value>(&line).is_err());
    assert!(
        !served
            .seen
            .iter()
            .any(|l| l.contains("master_key is configured")),
        "a keyed gateway is not called open"
    );
    // Ctrl-C drains as SIGTERM does.
    assert_eq!(served.stop_with("INT"), 0);
    assert!(served.seen.iter().any(|l| l.contains("drained; exiting")));
}

#[test]
fn a_port_already_in_use_is_an_error_not_a_shared_port() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let config = write_config("taken", ECHO_MODELS);
    let output = tollgate()
        .args(["serve", "--config"])
        .arg(&config)
        .args(["--host", "127.0.0.1", "--port", &port])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("cannot listen on"), "{stderr}");
}

/// `tollgate <args>` against the gateway at `address` with the master key: stdout, or the
/// failure's stderr.
fn manage(address: &str, args: &[&str]) -> Result<String, String> {
    let output = tollgate()
        .args(args)
        .env("TOLLGATE_URL", format!("http://{address}"))
        .env("TOLLGATE_API_KEY", "sk-cli-master")
        .output()
        .unwrap();
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    if output.status.success() {
        Ok(text(&output.stdout))
    } else {
        Err(text(&output.stderr))
    }
}

#[test]
fn keys_teams_and_users_are_managed_from_the_command_line() {
    let config = write_config(
        "manage",
        &format!("{ECHO_MODELS}general_settings:\n  master_key: sk-cli-master\n"),
    );
    let mut served = Served::start(&config, &["--log-format", "json"]);
    let listening: serde_json::Value =
        serde_json::from_str(&served.wait_for("tollgate listening")).unwrap();
    let address = listening["address"].as_str().unwrap().to_owned();

    let team = manage(
        &address,
        &[
            "teams", "create", "--id", "red", "--models", "echo", "--rpm", "60",
        ],
    )
    .unwrap();
    assert!(team.contains("team_id") && team.contains("red"), "{team}");
    manage(
        &address,
        &["teams", "add-member", "red", "ann", "--role", "admin"],
    )
    .unwrap();

    // Scripts read --json; the key is there once.
    let created: serde_json::Value = serde_json::from_str(
        &manage(
            &address,
            &[
                "keys", "create", "--alias", "ci", "--team", "red", "--user", "ann", "--json",
            ],
        )
        .unwrap(),
    )
    .unwrap();
    let key = created["key"].as_str().unwrap().to_owned();
    let token = created["token"].as_str().unwrap().to_owned();
    assert!(key.starts_with("sk-"));

    // People read tables.
    let listed = manage(&address, &["keys", "list", "--team", "red"]).unwrap();
    let lines: Vec<&str> = listed.lines().collect();
    assert!(
        lines[0].starts_with("TOKEN") && lines[0].contains("ALIAS"),
        "{listed}"
    );
    assert!(
        lines[1].starts_with(&token) && lines[1].contains(" ci "),
        "{listed}"
    );
    assert!(
        lines[1].contains("red") && lines[1].contains("ann"),
        "{listed}"
    );
    assert_eq!(lines[2], "(1 of 1)");
    let info = manage(&address, &["keys", "info", &key]).unwrap();
    assert!(
        info.lines()
            .any(|line| line.starts_with("key_alias") && line.ends_with("ci")),
        "{info}"
    );
    assert!(!info.contains(&key), "the key itself is never shown again");

    manage(&address, &["keys", "block", &token]).unwrap();
    let blocked = manage(&address, &["keys", "info", &token, "--json"]).unwrap();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&blocked).unwrap()["info"]["blocked"],
        true
    );

    let teams = manage(&address, &["teams", "list"]).unwrap();
    assert!(teams.lines().nth(1).unwrap().starts_with("red"), "{teams}");
    let users = manage(&address, &["users", "list"]).unwrap();
    assert!(
        users
            .lines()
            .any(|line| line.starts_with("ann") && line.contains("red")),
        "{users}"
    );

    // Refusals come back in the API's words, with a failing exit status.
    let err = manage(&address, &["teams", "info", "blue"]).unwrap_err();
    assert!(
        err.contains("404") && err.contains("No team `blue` exists."),
        "{err}"
    );
    let err = manage(&address, &["keys", "create", "--team", "blue"]).unwrap_err();
    assert!(
        err.contains("400") && err.contains("param: team_id"),
        "{err}"
    );

    let deleted = manage(&address, &["teams", "delete", "red", "--json"]).unwrap();
    let deleted: serde_json::Value = serde_json::from_str(&deleted).unwrap();
    assert_eq!(deleted["deleted_keys"], serde_json::json!([token]));
    assert_eq!(served.terminate(), 0);
}

#[test]
fn spend_is_reported_from_the_command_line() {
    let config = write_config(
        "spend",
        "general_settings:\n  master_key: sk-cli-master\nmodel_list:\n  - model_name: echo\n    litellm_params:\n      model: mock/echo\n    model_info:\n      input_cost_per_token: 0.000001\n      output_cost_per_token: 0.000002\n",
    );
    let _ = std::fs::remove_file(config.parent().unwrap().join("tollgate.db"));
    let mut served = Served::start(&config, &["--log-format", "json"]);
    let listening: serde_json::Value =
        serde_json::from_str(&served.wait_for("tollgate listening")).unwrap();
    let address = listening["address"].as_str().unwrap().to_owned();

    manage(&address, &["teams", "create", "--id", "red"]).unwrap();
    let created: serde_json::Value = serde_json::from_str(
        &manage(&address, &["keys", "create", "--team", "red", "--json"]).unwrap(),
    )
    .unwrap();
    let key = created["key"].as_str().unwrap().to_owned();
    block_on(async {
        for (bearer, text) in [
            (key.as_str(), "one"),
            (key.as_str(), "two words"),
            ("sk-cli-master", "three more words"),
        ] {
            let status = reqwest::Client::new()
                .post(format!("http://{address}/v1/chat/completions"))
                .bearer_auth(bearer)
                .body(format!(
                    r#"{{"model":"echo","messages":[{{"role":"user","content":"{text}"}}]}}"#
                ))
                .send()
                .await
                .unwrap()
                .status();
            assert_eq!(status, 200);
        }
    });

    // Records reach the store in batches: wait for all three.
    let mut report = serde_json::Value::Null;
    for _ in 0..100 {
        report = serde_json::from_str(
            &manage(
                &address,
                &["spend", "--by", "team", "--since", "7d", "--json"],
            )
            .unwrap(),
        )
        .unwrap();
        let requests: u64 = report["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|row| row["requests"].as_u64().unwrap())
            .sum();
        if requests == 3 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // --json is the API's answer as is.
    let direct: serde_json::Value = block_on(async {
        reqwest::Client::new()
            .get(format!(
                "http://{address}/global/spend/report?group_by=team&start_date={}&end_date={}",
                &report["start_date"].as_str().unwrap()[..10],
                &report["end_date"].as_str().unwrap()[..10]
            ))
            .bearer_auth("sk-cli-master")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    });
    assert_eq!(report, direct);
    let start = report["start_date"].as_str().unwrap()[..10].to_owned();
    let end = report["end_date"].as_str().unwrap()[..10].to_owned();
    let day = |date: &str| tollgate_core::calendar::day_start_ms(date).unwrap();
    assert_eq!(
        day(&end) - day(&start),
        6 * tollgate_core::calendar::MS_PER_DAY,
        "7d is the last seven days, today included"
    );

    // The table: one row per team (the master key's requests have none), then the total.
    let rows = report["data"].as_array().unwrap();
    let row_of = |team: serde_json::Value| rows.iter().find(|row| row["team_id"] == team).unwrap();
    let (red, none) = (row_of("red".into()), row_of(serde_json::Value::Null));
    let six = |dollars: f64| format!("{dollars:.6}");
    let table = manage(&address, &["spend", "--by", "team", "--since", "7d"]).unwrap();
    let lines: Vec<Vec<&str>> = table
        .lines()
        .skip(2)
        .map(|line| line.split_whitespace().collect())
        .collect();
    assert!(
        table.starts_with(&format!(
            "Spend by team from {start} to {end} (UTC days, both included):\n\nTEAM"
        )),
        "{table}"
    );
    let expect = |name: &str, row: &serde_json::Value| -> Vec<String> {
        vec![
            name.to_owned(),
            row["requests"].to_string(),
            row["failed_requests"].to_string(),
            row["prompt_tokens"].to_string(),
            row["completion_tokens"].to_string(),
            six(row["spend"].as_f64().unwrap()),
        ]
    };
    assert_eq!(
        lines[0],
        [
            "TEAM",
            "REQUESTS",
            "FAILED",
            "PROMPT",
            "TOKENS",
            "COMPLETION",
            "TOKENS",
            "SPEND",
            "($)"
        ]
    );
    assert!(
        lines.contains(&expect("red", red).iter().map(String::as_str).collect()),
        "{table}"
    );
    assert!(
        lines.contains(&expect("-", none).iter().map(String::as_str).collect()),
        "{table}"
    );
    assert_eq!(red["requests"], 2);
    let total = lines.last().unwrap();
    assert_eq!(total[..2], ["TOTAL", "3"], "{table}");
    let spent = red["spend"].as_f64().unwrap() + none["spend"].as_f64().unwrap();
    assert!(spent > 0.0);
    assert_eq!(total[5], six(spent), "{table}");

    // By day: today's row.
    let by_day = manage(&address, &["spend", "--by", "day", "--since", "1d"]).unwrap();
    assert!(
        by_day
            .lines()
            .any(|line| line.starts_with(&format!("{end}  3 "))),
        "{by_day}"
    );

    // Flags that cannot be a range are refused before any call.
    let err = manage(&address, &["spend", "--since", "7x"]).unwrap_err();
    assert!(
        err.contains("--since must be a number of days or weeks"),
        "{err}"
    );
    assert_eq!(served.terminate(), 0);
}
