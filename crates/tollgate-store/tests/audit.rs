//! The audit log, on SQLite and PostgreSQL alike: every write leaves one entry, in the same
//! transaction, with the record before and after and secrets masked.

mod backends;

use serde_json::json;
use tollgate_store::{Action, Actor, AuditFilter, Change, CustomerRecord, StoreError, TeamRecord};

fn team(id: &str, rpm: i64, at: i64) -> TeamRecord {
    serde_json::from_value(json!({
        "team_id": id,
        "rpm_limit": rpm,
        "metadata": {"api_key": "sk-provider-secret", "owner": "ml"},
        "created_at": at,
        "updated_at": at,
    }))
    .unwrap()
}

#[tokio::test]
async fn each_change_is_logged_with_before_and_after() {
    for (backend, store) in backends::all().await {
        let admin = Actor {
            changed_by: "alice".into(),
            changed_by_api_key: Some("a".repeat(64)),
        };
        let at = |action, at| Change {
            actor: &admin,
            action,
            at,
        };
        store
            .insert(&team("t1", 10, 1_000), &at(Action::Created, 1_000))
            .await
            .unwrap();
        store
            .replace(&team("t1", 20, 2_000), &at(Action::Updated, 2_000))
            .await
            .unwrap();
        store
            .delete::<TeamRecord>(&["t1".into(), "ghost".into()], &at(Action::Deleted, 3_000))
            .await
            .unwrap();

        let page = store
            .audit_log(&AuditFilter::default(), 1, 10)
            .await
            .unwrap();
        assert_eq!(page.total, 3, "{backend}");
        let actions: Vec<_> = page.entries.iter().map(|entry| entry.action).collect();
        assert_eq!(
            actions,
            [Action::Deleted, Action::Updated, Action::Created],
            "{backend}: newest first, nothing for the id that did not exist"
        );
        let [deleted, updated, created] = &page.entries[..] else {
            unreachable!()
        };
        assert_eq!(created.table_name, "tollgate_teams");
        assert_eq!(created.object_id, "t1");
        assert_eq!(created.changed_by, "alice");
        assert_eq!(created.changed_by_api_key, Some("a".repeat(64)));
        assert_eq!(created.updated_at, 1_000);
        assert_eq!(created.before_value, None);
        let after = created.updated_values.as_ref().unwrap();
        assert_eq!(after["rpm_limit"], 10);
        assert_eq!(
            after["metadata"],
            json!({"api_key": "********", "owner": "ml"}),
            "{backend}: secrets are masked"
        );
        assert_eq!(updated.before_value.as_ref().unwrap()["rpm_limit"], 10);
        assert_eq!(updated.updated_values.as_ref().unwrap()["rpm_limit"], 20);
        assert_eq!(deleted.before_value.as_ref().unwrap()["rpm_limit"], 20);
        assert_eq!(deleted.updated_values, None);

        assert_eq!(
            store.audit_entry(&updated.id).await.unwrap().as_ref(),
            Some(updated),
            "{backend}"
        );
        assert_eq!(store.audit_entry("nope").await.unwrap(), None);
    }
}

#[tokio::test]
async fn a_refused_write_leaves_no_entry() {
    for (backend, store) in backends::all().await {
        store
            .insert(&team("t1", 10, 1), &backends::by_tester(Action::Created))
            .await
            .unwrap();
        let again = store
            .insert(&team("t1", 99, 2), &backends::by_tester(Action::Created))
            .await;
        assert!(matches!(again, Err(StoreError::Conflict(_))), "{backend}");
        assert!(
            !store
                .replace(&team("ghost", 1, 3), &backends::by_tester(Action::Updated))
                .await
                .unwrap()
        );
        let page = store
            .audit_log(&AuditFilter::default(), 1, 10)
            .await
            .unwrap();
        assert_eq!(page.total, 1, "{backend}: only the insert that happened");
    }
}

#[tokio::test]
async fn the_log_filters_pages_and_feeds_changes() {
    for (backend, store) in backends::all().await {
        let tester = Actor::system();
        for index in 0..5_i64 {
            let customer: CustomerRecord = serde_json::from_value(json!({
                "user_id": format!("end-user-{index}"),
                "created_at": index,
                "updated_at": index,
            }))
            .unwrap();
            let change = Change {
                actor: &tester,
                action: Action::Created,
                at: 100 + index,
            };
            store.insert(&customer, &change).await.unwrap();
        }
        store
            .insert(&team("t1", 1, 200), &backends::by_tester(Action::Created))
            .await
            .unwrap();

        let customers = AuditFilter {
            table_name: Some("tollgate_customers".into()),
            ..AuditFilter::default()
        };
        let first = store.audit_log(&customers, 1, 2).await.unwrap();
        assert_eq!(first.total, 5, "{backend}");
        let ids: Vec<_> = first.entries.iter().map(|e| e.object_id.as_str()).collect();
        assert_eq!(ids, ["end-user-4", "end-user-3"], "{backend}");
        let third = store.audit_log(&customers, 3, 2).await.unwrap();
        assert_eq!(third.entries[0].object_id, "end-user-0");

        let window = AuditFilter {
            since: Some(101),
            until: Some(103),
            ..customers.clone()
        };
        assert_eq!(store.audit_log(&window, 1, 10).await.unwrap().total, 2);
        let by_tester = AuditFilter {
            changed_by: Some("tester".into()),
            ..AuditFilter::default()
        };
        let page = store.audit_log(&by_tester, 1, 10).await.unwrap();
        assert_eq!(page.total, 1, "{backend}");
        assert_eq!(page.entries[0].object_id, "t1");

        let changed = store.changed_since(103).await.unwrap();
        let changed: Vec<_> = changed
            .iter()
            .map(|c| (c.table_name.as_str(), c.object_id.as_str()))
            .collect();
        assert_eq!(
            &changed[..2],
            [
                ("tollgate_customers", "end-user-3"),
                ("tollgate_customers", "end-user-4")
            ],
            "{backend}: oldest first"
        );
        assert_eq!(changed[2], ("tollgate_teams", "t1"));
    }
}

#[tokio::test]
async fn a_regenerated_key_reports_its_new_token_in_the_feed() {
    for (backend, store) in backends::all().await {
        let mut key: tollgate_store::KeyRecord = serde_json::from_value(json!({
            "token": "old-token", "key_name": "sk-...aaaa", "key_alias": null, "user_id": null,
            "team_id": null, "organization_id": null, "models": [], "aliases": {},
            "metadata": {}, "tags": [], "permissions": {}, "tpm_limit": null,
            "rpm_limit": null, "max_parallel_requests": null, "blocked": false,
            "expires_at": null, "created_at": 1, "updated_at": 1, "created_by": null
        }))
        .unwrap();
        store
            .insert_key(&key, &backends::by_tester(Action::Created))
            .await
            .unwrap();
        key.token = "new-token".into();
        store
            .replace_key("old-token", &key, &backends::by_tester(Action::Regenerated))
            .await
            .unwrap();
        let changed = store.changed_since(0).await.unwrap();
        assert_eq!(changed.len(), 2, "{backend}");
        let replaced: Vec<_> = changed
            .iter()
            .map(|c| (c.object_id.as_str(), c.replaced_by.as_deref()))
            .collect();
        assert!(replaced.contains(&("old-token", None)), "{backend}");
        assert!(
            replaced.contains(&("old-token", Some("new-token"))),
            "{backend}: {replaced:?}"
        );
    }
}
