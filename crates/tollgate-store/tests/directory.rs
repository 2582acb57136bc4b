//! Teams, users, organisations and end users in the store, on SQLite and PostgreSQL alike.

mod backends;

use serde_json::json;
use tollgate_store::{
    Action, CustomerRecord, MemberRole, StoreError, TeamMember, TeamRecord, UserRecord, UserRole,
};

fn team(id: &str, updated_at: i64) -> TeamRecord {
    TeamRecord {
        team_id: id.to_owned(),
        team_alias: Some(format!("{id} alias")),
        organization_id: Some("org-1".into()),
        models: vec!["gpt-4o".into(), "anthropic/*".into()],
        members_with_roles: vec![TeamMember {
            user_id: Some("alice".into()),
            user_email: Some("alice@example.com".into()),
            role: MemberRole::Admin,
            max_budget_in_team: None,
        }],
        tpm_limit: Some(10_000),
        rpm_limit: Some(60),
        max_parallel_requests: Some(4),
        team_member_tpm_limit: None,
        team_member_rpm_limit: Some(10),
        metadata: json!({"cost_center": 42}).as_object().unwrap().clone(),
        blocked: false,
        created_at: 1,
        updated_at,
        budget: Default::default(),
    }
}

#[tokio::test]
async fn records_round_trip_and_ids_are_unique() {
    for (backend, store) in backends::all().await {
        let original = team("team-a", 5);
        store
            .insert(&original, &backends::by_tester(Action::Created))
            .await
            .unwrap();
        assert_eq!(
            store.get::<TeamRecord>("team-a").await.unwrap(),
            Some(original.clone()),
            "{backend}"
        );
        assert_eq!(store.get::<TeamRecord>("nope").await.unwrap(), None);
        let again = store
            .insert(&team("team-a", 6), &backends::by_tester(Action::Created))
            .await
            .unwrap_err();
        assert!(
            matches!(&again, StoreError::Conflict(what) if what == "team `team-a`"),
            "{backend}: {again}"
        );

        // Kinds live apart: a user may share a team's id.
        let user = UserRecord {
            user_id: "team-a".into(),
            user_alias: None,
            user_email: None,
            user_role: UserRole::ProxyAdminViewer,
            teams: vec!["team-a".into()],
            organization_id: None,
            models: vec![],
            tpm_limit: None,
            rpm_limit: None,
            max_parallel_requests: None,
            metadata: Default::default(),
            created_at: 1,
            updated_at: 1,
            budget: Default::default(),
        };
        store
            .insert(&user, &backends::by_tester(Action::Created))
            .await
            .unwrap();
        assert_eq!(
            store.all::<UserRecord>().await.unwrap(),
            [user],
            "{backend}"
        );
    }
}

#[tokio::test]
async fn replace_rewrites_and_lists_follow_changes() {
    for (backend, store) in backends::all().await {
        store
            .insert(&team("b", 2), &backends::by_tester(Action::Created))
            .await
            .unwrap();
        store
            .insert(&team("a", 1), &backends::by_tester(Action::Created))
            .await
            .unwrap();
        let mut changed = team("a", 3);
        changed.blocked = true;
        changed.members_with_roles.clear();
        assert!(
            store
                .replace(&changed, &backends::by_tester(Action::Updated))
                .await
                .unwrap(),
            "{backend}"
        );
        assert!(
            !store
                .replace(&team("missing", 3), &backends::by_tester(Action::Updated))
                .await
                .unwrap()
        );
        let all = store.all::<TeamRecord>().await.unwrap();
        let ids: Vec<_> = all.iter().map(|t| t.team_id.as_str()).collect();
        assert_eq!(ids, ["b", "a"], "{backend}: oldest change first");
        assert_eq!(all[1], changed);
    }
}

#[tokio::test]
async fn deleting_reports_which_records_existed() {
    for (backend, store) in backends::all().await {
        let customer = CustomerRecord {
            user_id: "end-user-1".into(),
            alias: None,
            blocked: true,
            tpm_limit: None,
            rpm_limit: Some(5),
            max_parallel_requests: None,
            allowed_model_region: Some("eu".into()),
            default_model: None,
            metadata: Default::default(),
            created_at: 1,
            updated_at: 1,
            budget: Default::default(),
        };
        store
            .insert(&customer, &backends::by_tester(Action::Created))
            .await
            .unwrap();
        let deleted = store
            .delete::<CustomerRecord>(
                &["end-user-1".into(), "end-user-2".into()],
                &backends::by_tester(Action::Deleted),
            )
            .await
            .unwrap();
        assert_eq!(deleted, ["end-user-1"], "{backend}");
        assert!(store.all::<CustomerRecord>().await.unwrap().is_empty());
    }
}
