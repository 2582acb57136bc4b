//! Virtual keys in the store, on SQLite and PostgreSQL alike.

mod backends;

use serde_json::{Map, json};
use tollgate_store::{Action, KeyFilter, KeyRecord, StoreError};

fn key(token: &str, alias: Option<&str>, team: Option<&str>, created_at: i64) -> KeyRecord {
    KeyRecord {
        token: token.to_owned(),
        key_name: format!("sk-...{}", &token[token.len() - 4..]),
        key_alias: alias.map(str::to_owned),
        user_id: Some("user-1".into()),
        team_id: team.map(str::to_owned),
        organization_id: None,
        models: vec!["gpt-4o".into(), "openai/*".into()],
        aliases: json!({"fast": "gpt-4o-mini"}).as_object().unwrap().clone(),
        metadata: json!({"owner": "ml", "nested": {"n": 1.5}})
            .as_object()
            .unwrap()
            .clone(),
        tags: vec!["prod".into()],
        permissions: Map::new(),
        tpm_limit: Some(100_000),
        rpm_limit: Some(60),
        max_parallel_requests: None,
        blocked: false,
        expires_at: Some(1_900_000_000_000),
        created_at,
        updated_at: created_at,
        created_by: Some("master".into()),
        budget: Default::default(),
        model_max_budget: Default::default(),
    }
}

#[tokio::test]
async fn keys_round_trip_with_every_field() {
    for (backend, store) in backends::all().await {
        let original = key("a1b2c3d4", Some("ci"), Some("team-a"), 1_000);
        store
            .insert_key(&original, &backends::by_tester(Action::Created))
            .await
            .unwrap();
        assert_eq!(
            store.key("a1b2c3d4").await.unwrap(),
            Some(original.clone()),
            "{backend}"
        );
        assert_eq!(store.key("missing").await.unwrap(), None, "{backend}");
        assert_eq!(store.all_keys().await.unwrap(), [original], "{backend}");
    }
}

#[tokio::test]
async fn keys_with_and_without_budgets_are_written_one_after_another() {
    // On PostgreSQL a missing amount was once declared as `real` and the cached statement then
    // refused the next key's `double precision` amount.
    for (backend, store) in backends::all().await {
        let amounts = [None, Some(20.0), None, Some(0.1), Some(1e-9)];
        for (n, amount) in amounts.into_iter().enumerate() {
            let mut record = key(&format!("budget{n:04}"), None, None, n as i64);
            record.budget.max_budget = amount;
            record.budget.soft_budget = amount.map(|max| max / 2.0);
            store
                .insert_key(&record, &backends::by_tester(Action::Created))
                .await
                .unwrap_or_else(|err| panic!("{backend}: key {n}: {err}"));
            record.budget.max_budget = amounts[(n + 1) % amounts.len()];
            store
                .replace_key(
                    &record.token,
                    &record,
                    &backends::by_tester(Action::Updated),
                )
                .await
                .unwrap();
            assert_eq!(
                store.key(&record.token).await.unwrap(),
                Some(record),
                "{backend}"
            );
        }
    }
}

#[tokio::test]
async fn aliases_are_unique() {
    for (backend, store) in backends::all().await {
        store
            .insert_key(
                &key("t1aaaa", Some("ci"), None, 1),
                &backends::by_tester(Action::Created),
            )
            .await
            .unwrap();
        let err = store
            .insert_key(
                &key("t2bbbb", Some("ci"), None, 2),
                &backends::by_tester(Action::Created),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{backend}: {err}");
        assert!(err.to_string().contains("`ci`"), "{backend}: {err}");
        // Keys without alias never conflict with each other.
        store
            .insert_key(
                &key("t3cccc", None, None, 3),
                &backends::by_tester(Action::Created),
            )
            .await
            .unwrap();
        store
            .insert_key(
                &key("t4dddd", None, None, 4),
                &backends::by_tester(Action::Created),
            )
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn replace_updates_fields_and_can_change_the_token() {
    for (backend, store) in backends::all().await {
        let mut record = key("old-token", Some("ci"), None, 1);
        store
            .insert_key(&record, &backends::by_tester(Action::Created))
            .await
            .unwrap();
        record.blocked = true;
        record.models = vec![];
        record.rpm_limit = None;
        assert!(
            store
                .replace_key("old-token", &record, &backends::by_tester(Action::Updated))
                .await
                .unwrap(),
            "{backend}"
        );
        assert_eq!(
            store.key("old-token").await.unwrap(),
            Some(record.clone()),
            "{backend}"
        );

        record.token = "new-token".into();
        assert!(
            store
                .replace_key("old-token", &record, &backends::by_tester(Action::Updated))
                .await
                .unwrap(),
            "{backend}"
        );
        assert_eq!(store.key("old-token").await.unwrap(), None, "{backend}");
        assert_eq!(
            store.key("new-token").await.unwrap(),
            Some(record.clone()),
            "{backend}"
        );
        assert!(
            !store
                .replace_key("nowhere", &record, &backends::by_tester(Action::Updated))
                .await
                .unwrap(),
            "{backend}"
        );
    }
}

#[tokio::test]
async fn lists_are_filtered_paged_and_newest_first() {
    for (backend, store) in backends::all().await {
        for index in 0..7 {
            let team = if index % 2 == 0 { "team-a" } else { "team-b" };
            store
                .insert_key(
                    &key(&format!("token-{index:04}"), None, Some(team), index),
                    &backends::by_tester(Action::Created),
                )
                .await
                .unwrap();
        }
        let all = store.list_keys(&KeyFilter::default(), 1, 5).await.unwrap();
        assert_eq!(all.total, 7, "{backend}");
        let tokens: Vec<&str> = all.keys.iter().map(|k| k.token.as_str()).collect();
        assert_eq!(
            tokens,
            [
                "token-0006",
                "token-0005",
                "token-0004",
                "token-0003",
                "token-0002"
            ],
            "{backend}"
        );
        let second = store.list_keys(&KeyFilter::default(), 2, 5).await.unwrap();
        assert_eq!(second.keys.len(), 2, "{backend}");

        let team_a = KeyFilter {
            team_id: Some("team-a".into()),
            ..KeyFilter::default()
        };
        let page = store.list_keys(&team_a, 1, 100).await.unwrap();
        assert_eq!(page.total, 4, "{backend}");
        assert!(
            page.keys
                .iter()
                .all(|k| k.team_id.as_deref() == Some("team-a")),
            "{backend}"
        );
    }
}

#[tokio::test]
async fn deleting_reports_which_keys_existed() {
    for (backend, store) in backends::all().await {
        store
            .insert_key(
                &key("keep-0000", None, None, 1),
                &backends::by_tester(Action::Created),
            )
            .await
            .unwrap();
        store
            .insert_key(
                &key("drop-0000", None, None, 2),
                &backends::by_tester(Action::Created),
            )
            .await
            .unwrap();
        let deleted = store
            .delete_keys(
                &["drop-0000".into(), "ghost-0000".into()],
                &backends::by_tester(Action::Deleted),
            )
            .await
            .unwrap();
        assert_eq!(deleted, ["drop-0000"], "{backend}");
        assert_eq!(store.all_keys().await.unwrap().len(), 1, "{backend}");
    }
}

#[tokio::test]
async fn reconnecting_finds_the_schema_already_migrated() {
    let path = std::env::temp_dir().join(format!("tollgate_reconnect_{}.db", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let url = tollgate_store::Store::sqlite_url(&path);
    let store = tollgate_store::Store::connect(&url).await.unwrap();
    store
        .insert_key(
            &key("persisted-1", None, None, 1),
            &backends::by_tester(Action::Created),
        )
        .await
        .unwrap();
    store.close().await;
    let again = tollgate_store::Store::connect(&url).await.unwrap();
    assert_eq!(again.all_keys().await.unwrap().len(), 1);
    let _ = std::fs::remove_file(&path);
}
