//! Responses API responses, on SQLite and PostgreSQL alike: kept, read back whole, replaced
//! under the same id, forgotten, and pruned by age.

mod backends;

use tollgate_store::KeptResponse;

fn bridged(id: &str, previous: Option<&str>, at: i64) -> KeptResponse {
    KeptResponse {
        id: id.to_owned(),
        owner: "team:red".to_owned(),
        deployment: None,
        response: Some(format!(
            r#"{{"id":"{id}","object":"response","output":[]}}"#
        )),
        items: Some(r#"[{"role":"user","content":"héllo \u2014 \"quoted\""}]"#.to_owned()),
        previous_id: previous.map(str::to_owned),
        created_at: at,
    }
}

#[tokio::test]
async fn responses_are_kept_read_forgotten_and_pruned() {
    for (backend, store) in backends::all().await {
        let first = bridged("resp_1", None, 1_000);
        let second = bridged("resp_2", Some("resp_1"), 2_000);
        let native = KeptResponse {
            id: "resp_native".to_owned(),
            owner: String::new(),
            deployment: Some("azure-east".to_owned()),
            response: None,
            items: None,
            previous_id: None,
            created_at: 3_000,
        };
        for kept in [&first, &second, &native] {
            store.keep_response(kept).await.unwrap();
        }
        assert_eq!(
            store.kept_response("resp_2").await.unwrap().as_ref(),
            Some(&second),
            "{backend}"
        );
        assert_eq!(
            store.kept_response("resp_native").await.unwrap(),
            Some(native.clone()),
            "{backend}"
        );
        assert_eq!(store.kept_response("resp_none").await.unwrap(), None);

        // Kept again under the same id: the later one stands.
        let mut replaced = first.clone();
        replaced.owner = "key:abc".to_owned();
        store.keep_response(&replaced).await.unwrap();
        assert_eq!(
            store.kept_response("resp_1").await.unwrap(),
            Some(replaced),
            "{backend}"
        );

        assert!(store.forget_response("resp_native").await.unwrap());
        assert!(!store.forget_response("resp_native").await.unwrap());
        assert_eq!(store.kept_response("resp_native").await.unwrap(), None);

        // Older than 1.5 s: the first goes, the second stays.
        assert_eq!(store.prune_responses(1_500).await.unwrap(), 1, "{backend}");
        assert_eq!(store.kept_response("resp_1").await.unwrap(), None);
        assert!(store.kept_response("resp_2").await.unwrap().is_some());
    }
}
