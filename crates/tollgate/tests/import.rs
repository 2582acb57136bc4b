//! `tollgate import litellm` against a LiteLLM database built from LiteLLM's own table
//! definitions (`tests/fixtures/litellm`): what lands in either store backend, that a second
//! run changes nothing, what is skipped and why — and, through the binary, that imported keys
//! work on a served gateway. Skipped, with a message, without PostgreSQL.

mod support;

use serde_json::Value;
use sha2::{Digest, Sha256};
use support::{Served, tollgate, write_config};
use tollgate_store::litellm::{Counts, Kind, Options, Report, import};
use tollgate_store::{
    CustomerRecord, EntityKind, MemberRole, OrganizationRecord, SpendRecord, Store, TeamRecord,
    UserRecord, UserRole,
};
use tollgate_testkit::databases;

const SCHEMA: &str = include_str!("fixtures/litellm/schema.sql");
const ROWS: &str = include_str!("fixtures/litellm/rows.sql");
const DAY_MS: i64 = 86_400_000;

/// A fresh PostgreSQL schema holding the fixture LiteLLM database; `None` without PostgreSQL.
async fn litellm_database() -> Option<String> {
    let url = databases::postgres_url().await?;
    databases::run_sql(&url, SCHEMA).await;
    databases::run_sql(&url, ROWS).await;
    Some(url)
}

/// A key as LiteLLM and Tollgate store it.
fn token(key: &str) -> String {
    Sha256::digest(key.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn counts(created: usize, updated: usize, unchanged: usize, skipped: usize) -> Counts {
    Counts {
        created,
        updated,
        unchanged,
        skipped,
    }
}

fn records(report: &Report, kind: Kind) -> Counts {
    report.records.get(&kind).copied().unwrap_or_default()
}

fn spend(report: &Report, kind: Kind) -> Counts {
    report.spend.get(&kind).copied().unwrap_or_default()
}

fn said(report: &Report) -> Vec<String> {
    report
        .skipped
        .iter()
        .chain(&report.notes)
        .map(|finding| {
            format!(
                "{} {}: {}",
                finding.kind.singular(),
                finding.id,
                finding.message
            )
        })
        .collect()
}

fn assert_said(report: &Report, start: &str, end: &str) {
    let said = said(report);
    assert!(
        said.iter()
            .any(|line| line.starts_with(start) && line.ends_with(end)),
        "nothing said like `{start}…{end}`:\n{}",
        said.join("\n")
    );
}

async fn total(store: &Store, kind: EntityKind, id: &str) -> u64 {
    store
        .spend_totals(kind, &[id])
        .await
        .unwrap()
        .get(id)
        .copied()
        .unwrap_or(0)
}

#[tokio::test]
async fn a_litellm_database_is_imported_into_either_store_and_a_second_run_changes_nothing() {
    let Some(source) = litellm_database().await else {
        return;
    };
    for (backend, store) in databases::all().await {
        let now = now_ms();
        let options = Options {
            dry_run: false,
            now_ms: now,
        };

        // A dry run says what it would do, and does nothing.
        let dry = import(
            &source,
            &store,
            Options {
                dry_run: true,
                ..options
            },
        )
        .await
        .unwrap();
        assert_eq!(records(&dry, Kind::Key), counts(8, 0, 0, 1), "{backend}");
        assert!(dry.changed_anything());
        assert!(store.all_keys().await.unwrap().is_empty(), "{backend}");
        assert!(store.all::<TeamRecord>().await.unwrap().is_empty());
        assert!(
            store
                .imported_spend(EntityKind::Key)
                .await
                .unwrap()
                .is_empty()
        );

        let first = import(&source, &store, options).await.unwrap();
        assert_eq!(
            records(&first, Kind::Organization),
            counts(1, 0, 0, 0),
            "{backend}"
        );
        assert_eq!(records(&first, Kind::Team), counts(2, 0, 0, 0));
        assert_eq!(records(&first, Kind::TeamMember), counts(2, 0, 0, 1));
        assert_eq!(records(&first, Kind::User), counts(3, 0, 0, 0));
        assert_eq!(records(&first, Kind::EndUser), counts(2, 0, 0, 0));
        assert_eq!(records(&first, Kind::Key), counts(8, 0, 0, 1));
        assert_eq!(first.budgets, 5);
        for (kind, entities) in [
            (Kind::Key, 5),
            (Kind::Team, 1),
            (Kind::TeamMember, 2),
            (Kind::User, 2),
            (Kind::Organization, 1),
            (Kind::EndUser, 1),
        ] {
            assert_eq!(
                spend(&first, kind),
                counts(entities, 0, 0, 0),
                "{backend} {kind:?}"
            );
        }

        // Keys: hashes kept, every field carried over, state kept.
        let alpha = store
            .key(&token("sk-litellm-alpha"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(alpha.key_name, "sk-...lpha");
        assert_eq!(alpha.key_alias.as_deref(), Some("alpha"));
        assert_eq!(alpha.team_id.as_deref(), Some("team-red"));
        assert_eq!(alpha.user_id.as_deref(), Some("ann"));
        assert_eq!(alpha.organization_id.as_deref(), Some("org-acme"));
        assert_eq!(alpha.models, ["echo"]);
        assert_eq!(alpha.aliases["fast"], "echo");
        assert_eq!(alpha.metadata["owner"], "ann");
        assert_eq!(alpha.tags, ["batch", "eu"]);
        assert_eq!(
            (
                alpha.tpm_limit,
                alpha.rpm_limit,
                alpha.max_parallel_requests
            ),
            (Some(1000), Some(10), Some(2))
        );
        assert_eq!(alpha.budget.max_budget, Some(20.0));
        assert_eq!(alpha.budget.budget_duration.as_deref(), Some("30d"));
        let per_model = &alpha.model_max_budget;
        assert_eq!(per_model.len(), 2, "{per_model:?}");
        assert_eq!(per_model["echo"].budget_limit, 2.5);
        assert_eq!(per_model["echo"].time_period.as_deref(), Some("1d"));
        assert_eq!(per_model["mock-b"].budget_limit, 0.75);
        assert_eq!(per_model["mock-b"].time_period, None);
        assert_eq!(alpha.created_by.as_deref(), Some("ann"));
        assert!(!alpha.blocked && alpha.expires_at.is_none());
        let key = |name: &'static str| {
            let store = store.clone();
            async move { store.key(&token(name)).await.unwrap().unwrap() }
        };
        assert!(key("sk-litellm-blocked").await.blocked);
        assert_eq!(
            key("sk-litellm-expired").await.expires_at,
            Some(1_577_836_800_000)
        );
        assert_eq!(key("sk-litellm-orphan").await.team_id, None);
        let shared = key("sk-litellm-shared").await;
        assert_eq!(
            (shared.budget.max_budget, shared.budget.soft_budget),
            (Some(50.0), Some(40.0))
        );
        assert_eq!(shared.budget.budget_duration.as_deref(), Some("30d"));
        assert_eq!(shared.tpm_limit, Some(2000));
        let odd = key("sk-litellm-odd-json").await;
        assert!(odd.aliases.is_empty() && odd.metadata.is_empty());
        assert_eq!(key("sk-litellm-alpha-two").await.key_alias, None);
        assert_eq!(store.all_keys().await.unwrap().len(), 8);

        // Teams with their members and budgets; users; the organisation; end users.
        let red: TeamRecord = store.get("team-red").await.unwrap().unwrap();
        assert_eq!(red.team_alias.as_deref(), Some("Red"));
        assert_eq!(red.organization_id.as_deref(), Some("org-acme"));
        assert_eq!(red.metadata["cost_center"], "R&D");
        assert_eq!(
            (red.budget.max_budget, red.budget.soft_budget),
            (Some(300.0), Some(250.0))
        );
        assert_eq!(red.budget.budget_duration.as_deref(), Some("7d"));
        assert_eq!((red.tpm_limit, red.rpm_limit), (Some(5000), Some(60)));
        let ann = red.member("ann").unwrap();
        assert_eq!(ann.role, MemberRole::Admin);
        assert_eq!(ann.user_email.as_deref(), Some("ann@acme.test"));
        assert_eq!(ann.max_budget_in_team, None);
        let bob = red.member("bob").unwrap();
        assert_eq!(
            (bob.role, bob.max_budget_in_team),
            (MemberRole::User, Some(25.0))
        );
        let blue: TeamRecord = store.get("team-blue").await.unwrap().unwrap();
        assert!(blue.blocked);
        assert!(blue.models.is_empty(), "all-proxy-models: every model");
        assert_eq!(blue.member("carol").unwrap().role, MemberRole::Admin);

        let ann: UserRecord = store.get("ann").await.unwrap().unwrap();
        assert_eq!(ann.user_role, UserRole::ProxyAdmin);
        assert_eq!(ann.teams, ["team-red"]);
        assert_eq!(ann.budget.max_budget, Some(100.0));
        let bob: UserRecord = store.get("bob").await.unwrap().unwrap();
        assert_eq!(bob.teams, ["team-red"], "team-gone left out");
        assert_eq!(bob.rpm_limit, Some(30));
        let carol: UserRecord = store.get("carol").await.unwrap().unwrap();
        assert_eq!(carol.user_role, UserRole::InternalUser);

        let acme: OrganizationRecord = store.get("org-acme").await.unwrap().unwrap();
        assert_eq!(acme.organization_alias, "Acme");
        assert_eq!(
            (acme.budget.max_budget, acme.budget.soft_budget),
            (Some(1000.0), Some(800.0))
        );
        assert_eq!(acme.budget.budget_duration.as_deref(), Some("1mo"));
        assert_eq!(
            (acme.tpm_limit, acme.rpm_limit, acme.max_parallel_requests),
            (Some(100_000), Some(1000), Some(20))
        );
        let customer: CustomerRecord = store.get("customer-1").await.unwrap().unwrap();
        assert_eq!(customer.budget.max_budget, Some(5.0));
        assert_eq!(customer.budget.budget_duration.as_deref(), Some("1d"));
        assert_eq!(customer.rpm_limit, Some(10));
        assert_eq!(customer.allowed_model_region.as_deref(), Some("eu"));
        assert_eq!(customer.default_model.as_deref(), Some("echo"));
        let customer2: CustomerRecord = store.get("customer-2").await.unwrap().unwrap();
        assert!(customer2.blocked);

        // Spend: the running totals, and today's spend for budgets whose period is running.
        let alpha_token = token("sk-litellm-alpha");
        assert_eq!(
            total(&store, EntityKind::Key, &alpha_token).await,
            4_750_000_000
        );
        assert_eq!(
            total(&store, EntityKind::Team, "team-red").await,
            42_250_000_000
        );
        assert_eq!(total(&store, EntityKind::User, "bob").await, 3_500_000_000);
        assert_eq!(
            total(&store, EntityKind::Organization, "org-acme").await,
            120_500_000_000
        );
        assert_eq!(
            total(&store, EntityKind::EndUser, "customer-1").await,
            1_250_000_000
        );
        assert_eq!(
            total(&store, EntityKind::TeamMember, "team-red/bob").await,
            2_500_000_000
        );
        let today = now.div_euclid(DAY_MS) * DAY_MS;
        let this_period = store
            .period_spend(EntityKind::Key, today, Some(&alpha_token))
            .await
            .unwrap();
        assert_eq!(this_period[&alpha_token], 4_750_000_000, "{backend}");
        let yesterday = store
            .period_spend(EntityKind::Key, today + DAY_MS, Some(&alpha_token))
            .await
            .unwrap();
        assert!(yesterday.is_empty(), "filed on the import's day");

        // What was skipped or changed, and why.
        assert_said(
            &first,
            "key plaintext: ",
            "its token is not a SHA-256 hex digest, so requests with the key could not be recognised",
        );
        assert!(
            !said(&first)
                .join("\n")
                .contains("sk-plaintext-never-hashed")
        );
        assert_said(
            &first,
            "team member team-gone/dave: ",
            "team `team-gone` is not in LiteLLM_TeamTable",
        );
        assert_said(
            &first,
            "key orphan (",
            "team `team-deleted` does not exist; imported without a team",
        );
        assert_said(
            &first,
            "key odd-json (",
            "`aliases` is a list, not a JSON object; imported without it",
        );
        assert_said(
            &first,
            "key odd-json (",
            "`metadata` is text, not a JSON object; imported without it",
        );
        assert_said(
            &first,
            "key odd-json (",
            "its per-key `config` has no Tollgate equivalent; not carried over",
        );
        assert_said(&first, "key alpha (", "imported without an alias");
        assert_said(
            &first,
            "key alpha (",
            "model_max_budget for `odd` is not carried over: `budget_limit` must be a non-negative amount of dollars, got \"lots\"",
        );
        assert_said(
            &first,
            "user bob: ",
            "team `team-gone` does not exist; left out of the user's teams",
        );
        assert_said(
            &first,
            "user carol: ",
            "role `org_admin` has no Tollgate equivalent; imported as internal_user",
        );
        assert_said(&first, "budget budget-unused: ", "not imported");

        // Again: nothing changes, nothing is added twice.
        let audit_before = store
            .audit_log(&Default::default(), 1, 1)
            .await
            .unwrap()
            .total;
        let second = import(&source, &store, options).await.unwrap();
        assert!(!second.changed_anything(), "{backend}: {second:#?}");
        assert_eq!(records(&second, Kind::Key), counts(0, 0, 8, 1));
        assert_eq!(records(&second, Kind::Team), counts(0, 0, 2, 0));
        assert_eq!(spend(&second, Kind::Key), counts(0, 0, 5, 0));
        assert_eq!(
            total(&store, EntityKind::Key, &alpha_token).await,
            4_750_000_000
        );
        assert_eq!(
            store
                .audit_log(&Default::default(), 1, 1)
                .await
                .unwrap()
                .total,
            audit_before,
            "{backend}: no record rewritten"
        );
    }
}

#[tokio::test]
async fn importing_again_replaces_the_imported_figure_and_keeps_what_tollgate_counted() {
    let Some(source) = litellm_database().await else {
        return;
    };
    let store = databases::sqlite().await;
    let options = Options {
        dry_run: false,
        now_ms: now_ms(),
    };
    import(&source, &store, options).await.unwrap();
    let alpha = token("sk-litellm-alpha");

    // A request through Tollgate after the first import.
    let record = SpendRecord {
        request_id: "after-import".into(),
        call_type: "/v1/chat/completions".into(),
        key_hash: Some(alpha.clone()),
        spend: 1_000_000,
        status: "success".into(),
        http_status: 200,
        start_time: options.now_ms,
        end_time: options.now_ms,
        ..SpendRecord::default()
    };
    store.insert_spend(&[record]).await.unwrap();
    assert_eq!(total(&store, EntityKind::Key, &alpha).await, 4_751_000_000);

    // LiteLLM went on serving the key before it moved: its figure grew.
    databases::run_sql(
        &source,
        r#"UPDATE "LiteLLM_VerificationToken" SET spend = 6 WHERE key_alias = 'alpha' AND spend > 0;
           UPDATE "LiteLLM_TeamTable" SET max_budget = 400 WHERE team_id = 'team-red';"#,
    )
    .await;
    let again = import(&source, &store, options).await.unwrap();
    assert_eq!(spend(&again, Kind::Key), counts(0, 1, 4, 0));
    assert_eq!(records(&again, Kind::Team), counts(0, 1, 1, 0));
    assert_eq!(total(&store, EntityKind::Key, &alpha).await, 6_001_000_000);
    assert_eq!(
        store.imported_spend(EntityKind::Key).await.unwrap()[&alpha],
        6_000_000_000
    );
    let red: TeamRecord = store.get("team-red").await.unwrap().unwrap();
    assert_eq!(red.budget.max_budget, Some(400.0));
}

#[test]
fn the_binary_imports_into_the_configs_store_and_imported_keys_work() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let Some(source) = runtime.block_on(litellm_database()) else {
        return;
    };
    let config = write_config(
        "import",
        "general_settings:\n  master_key: sk-import-master\nmodel_list:\n  - model_name: echo\n    litellm_params:\n      model: mock/echo\n",
    );
    let database = config.parent().unwrap().join("tollgate.db");
    let _ = std::fs::remove_file(&database);
    let run = |extra: &[&str]| {
        let output = tollgate()
            .args(["import", "litellm", "--database-url", &source, "--config"])
            .arg(&config)
            .args(extra)
            .env_remove("DATABASE_URL")
            .output()
            .unwrap();
        let stdout = String::from_utf8(output.stdout).unwrap();
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert!(output.status.success(), "{stdout}\n{stderr}");
        stdout
    };

    let dry = run(&["--dry-run"]);
    assert!(dry.starts_with("Dry run: nothing was written."), "{dry}");
    assert!(!database.exists(), "a dry run creates no database");

    let first = run(&[]);
    assert!(first.starts_with("Imported postgres://"), "{first}");
    let row = |text: &str, kind: &str| -> Vec<String> {
        let line = text
            .lines()
            .find(|line| line.starts_with(kind))
            .unwrap_or_else(|| panic!("no `{kind}` row in:\n{text}"));
        line[kind.len()..]
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(
        row(&first, "keys "),
        ["8", "0", "0", "1", "5", "0"],
        "{first}"
    );
    assert_eq!(
        row(&first, "teams "),
        ["2", "0", "0", "0", "1", "0"],
        "{first}"
    );
    assert!(first.contains("\nSkipped (2):\n"), "{first}");
    assert!(
        first.contains("  key plaintext: its token is not a SHA-256 hex digest"),
        "{first}"
    );
    assert!(
        first.contains("team member team-gone/dave: team `team-gone` is not in LiteLLM_TeamTable"),
        "{first}"
    );
    assert!(
        first.contains("team `team-deleted` does not exist; imported without a team"),
        "{first}"
    );

    let second = run(&[]);
    assert!(second.contains("Nothing new"), "{second}");
    assert_eq!(
        row(&second, "keys "),
        ["0", "0", "8", "1", "0", "5"],
        "{second}"
    );

    // The keys people hold for LiteLLM work on Tollgate, in the state they were in.
    let mut served = Served::start(&config, &["--log-format", "json"]);
    let listening: Value = serde_json::from_str(&served.wait_for("tollgate listening")).unwrap();
    let url = format!("http://{}", listening["address"].as_str().unwrap());
    runtime.block_on(async {
        let client = reqwest::Client::new();
        let chat = |key: &'static str| {
            client
                .post(format!("{url}/v1/chat/completions"))
                .bearer_auth(key)
                .json(&serde_json::json!({"model": "echo", "messages": [{"role": "user", "content": "hi"}]}))
                .send()
        };
        let answer = chat("sk-litellm-alpha").await.unwrap();
        assert_eq!(answer.status(), 200);
        let refused = |response: reqwest::Response| async move {
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap();
            (status, body["error"]["code"].as_str().unwrap_or_default().to_owned(),
             body["error"]["type"].as_str().unwrap_or_default().to_owned())
        };
        let (status, code, _) = refused(chat("sk-litellm-blocked").await.unwrap()).await;
        assert_eq!((status, code.as_str()), (401, "key_blocked"));
        let (status, code, _) = refused(chat("sk-litellm-expired").await.unwrap()).await;
        assert_eq!((status, code.as_str()), (401, "key_expired"));
        let (status, code, _) = refused(chat("sk-litellm-overspent").await.unwrap()).await;
        assert_eq!((status, code.as_str()), (400, "budget_exceeded"));
        let (status, code, _) = refused(chat("sk-plaintext-never-hashed").await.unwrap()).await;
        assert_eq!(status, 401, "{code}");

        let info: Value = client
            .get(format!("{url}/key/info?key=sk-litellm-alpha"))
            .bearer_auth("sk-import-master")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(info["info"]["spend"], 4.75, "{info}");
        assert_eq!(info["info"]["key_alias"], "alpha");
    });
    assert_eq!(served.terminate(), 0);
}
