//! Spend records in the store, on SQLite and PostgreSQL alike: stored once by request id, and
//! what each entity spent in a period read back from the totals, the daily aggregates or the
//! records, whichever the period needs.

mod backends;

use tollgate_store::{EntityKind, Journal, SpendRecord};

const DAY_MS: i64 = 86_400_000;
/// 2026-11-20T00:00:00Z.
const DAY: i64 = 1_795_132_800_000;

fn record(id: &str, key: &str, model: &str, tag: &str, at: i64, nanos: u64) -> SpendRecord {
    SpendRecord {
        request_id: id.to_owned(),
        call_type: "/v1/chat/completions".into(),
        key_hash: Some(key.to_owned()),
        model_group: Some(model.to_owned()),
        spend: nanos,
        status: "success".into(),
        http_status: 200,
        start_time: at,
        end_time: at + 10,
        tags: vec![tag.to_owned()],
        ..SpendRecord::default()
    }
}

#[tokio::test]
async fn period_spend_reads_keys_keys_per_model_and_tags_for_any_period() {
    for (backend, store) in backends::all().await {
        let records = [
            // The day before.
            record("r1", "k1", "gpt-4o", "eng", DAY - 3_600_000, 1_000),
            // This day, morning and afternoon.
            record("r2", "k1", "gpt-4o", "eng", DAY + 3_600_000, 20_000),
            record(
                "r3",
                "k1",
                "openai/o3",
                "ops",
                DAY + 15 * 3_600_000,
                300_000,
            ),
            record("r4", "k2", "gpt-4o", "eng", DAY + 15 * 3_600_000, 4_000_000),
        ];
        assert_eq!(store.insert_spend(&records).await.unwrap(), 4, "{backend}");
        // Replayed: nothing counted twice.
        assert_eq!(store.insert_spend(&records).await.unwrap(), 0, "{backend}");

        let spend = |kind, since, only: Option<&'static str>| {
            let store = &store;
            async move { store.period_spend(kind, since, only).await.unwrap() }
        };
        let all_time = spend(EntityKind::Key, i64::MIN, None).await;
        assert_eq!(all_time["k1"], 321_000, "{backend}");
        assert_eq!(all_time["k2"], 4_000_000, "{backend}");
        let today = spend(EntityKind::Key, DAY, Some("k1")).await;
        assert_eq!(today.len(), 1, "{backend}");
        assert_eq!(today["k1"], 320_000, "{backend}");
        // A period starting at noon is read from the records.
        let afternoon = spend(EntityKind::Key, DAY + 12 * 3_600_000, None).await;
        assert_eq!(afternoon["k1"], 300_000, "{backend}");

        let per_model = spend(EntityKind::KeyModel, i64::MIN, None).await;
        assert_eq!(per_model["k1/gpt-4o"], 21_000, "{backend}");
        assert_eq!(per_model["k1/openai/o3"], 300_000, "{backend}");
        assert_eq!(per_model["k2/gpt-4o"], 4_000_000, "{backend}");
        let today = spend(EntityKind::KeyModel, DAY, Some("k1/gpt-4o")).await;
        assert_eq!(today.len(), 1, "{backend}");
        assert_eq!(today["k1/gpt-4o"], 20_000, "{backend}");
        let afternoon = spend(
            EntityKind::KeyModel,
            DAY + 12 * 3_600_000,
            Some("k1/openai/o3"),
        )
        .await;
        assert_eq!(afternoon["k1/openai/o3"], 300_000, "{backend}");
        assert!(
            spend(EntityKind::KeyModel, DAY + DAY_MS, None)
                .await
                .is_empty(),
            "{backend}"
        );

        let tags = spend(EntityKind::Tag, DAY, None).await;
        assert_eq!(tags["eng"], 4_020_000, "{backend}");
        assert_eq!(tags["ops"], 300_000, "{backend}");
        assert_eq!(
            spend(EntityKind::Tag, i64::MIN, Some("eng")).await["eng"],
            4_021_000
        );

        // A batch partly stored before (a crash between a commit and the journal's cut):
        // only its new record counts.
        let partly_stored = [
            records[3].clone(),
            record("r5", "k2", "gpt-4o", "eng", DAY + 16 * 3_600_000, 5),
        ];
        assert_eq!(
            store.insert_spend(&partly_stored).await.unwrap(),
            1,
            "{backend}"
        );
        let all_time = spend(EntityKind::Key, i64::MIN, Some("k2")).await;
        assert_eq!(all_time["k2"], 4_000_005, "{backend}");
        let today = spend(EntityKind::Key, DAY, Some("k2")).await;
        assert_eq!(today["k2"], 4_000_005, "{backend}");
    }
}

#[tokio::test]
async fn a_drain_stores_every_journaled_record_once_whatever_the_batch() {
    for (backend, store) in backends::all().await {
        let dir = std::env::temp_dir().join(format!("tollgate-journal-{}", fastrand::u64(..)));
        let journal = Journal::open(&dir, u64::MAX).unwrap();
        let key = format!("journal-{backend}-{}", fastrand::u64(..));
        let append = |from: usize, to: usize| {
            for n in from..to {
                let id = format!("{key}-{n}");
                journal
                    .append(record(&id, &key, "gpt-4o", "eng", DAY, 1))
                    .unwrap();
            }
        };
        let stored = |store: &tollgate_store::Store| {
            let (store, key) = (store.clone(), key.clone());
            async move {
                store
                    .period_spend(EntityKind::Key, i64::MIN, Some(&key))
                    .await
                    .unwrap()[&key]
            }
        };

        // A few records, less than a batch.
        append(0, 3);
        assert_eq!(
            journal.drain(&store).await.unwrap().inserted,
            3,
            "{backend}"
        );
        assert_eq!(stored(&store).await, 3, "{backend}");

        // Many batches' worth in one segment.
        append(3, 20_003);
        assert_eq!(
            journal.drain(&store).await.unwrap().inserted,
            20_000,
            "{backend}"
        );
        assert_eq!(stored(&store).await, 20_003, "{backend}");
        assert_eq!(journal.pending_bytes(), 0, "{backend}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
