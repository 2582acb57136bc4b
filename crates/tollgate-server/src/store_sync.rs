//! Keeps this replica's directory (keys, teams, users, organisations, end users), its stored
//! deployments and its budgets' spend current with changes made through other replicas, by
//! reading the store's audit log as a change feed (and the spend aggregates) every
//! `store_sync_interval`. While the store cannot be read, keys already known keep
//! working until `store_max_staleness` has passed; then virtual keys are refused (see
//! `Freshness`).

use std::sync::Arc;
use std::time::Duration;

use tokio::time::MissedTickBehavior;
use tollgate_policy::keys::now_ms;
use tollgate_store::{Entity, ModelRecord, Store, StoreError};

use crate::app::Gateway;

/// How far back each round reads again: changes are logged with the writer's clock before
/// their transaction commits, so one may become visible with a time slightly in the past.
const OVERLAP_MS: i64 = 30_000;

/// The longest one round may take before it counts as failed.
const ROUND_TIMEOUT: Duration = Duration::from_secs(10);

/// How often Responses API responses past `responses_retention` are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// One round: the directory's records, the deployments added at run time, and what other
/// replicas have charged to budgets (as far as their spend has reached the store).
async fn catch_up(gateway: &Gateway, store: &Store, since: i64) -> Result<(), StoreError> {
    let others = gateway.auth.directory.catch_up(store, since).await?;
    crate::budgets::load(gateway, store).await?;
    let models = &gateway.runtime_models;
    for (table, id) in others {
        if table != ModelRecord::TABLE {
            continue;
        }
        match store.get::<ModelRecord>(&id).await? {
            Some(record) => models.take_in(gateway, &record),
            None => models.withdraw(gateway, &id),
        }
    }
    Ok(())
}

pub(crate) async fn run(gateway: Arc<Gateway>) {
    let Some(store) = gateway.store.clone() else {
        return;
    };
    let directory = &gateway.auth.directory;
    let mut ticker = tokio::time::interval(gateway.store_sync.interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    ticker.tick().await;
    let mut failing = false;
    let mut pruned_at: Option<tokio::time::Instant> = None;
    loop {
        ticker.tick().await;
        if pruned_at.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
            pruned_at = Some(tokio::time::Instant::now());
            match gateway.responses.prune(gateway.responses_retention).await {
                Ok(0) => {}
                Ok(pruned) => tracing::info!(
                    responses = pruned,
                    "forgot the Responses API responses past responses_retention"
                ),
                Err(err) => {
                    tracing::warn!(error = %err, "cannot prune old Responses API responses now")
                }
            }
        }
        let started = now_ms();
        let since = directory.freshness.synced_at_ms() - OVERLAP_MS;
        let round = tokio::time::timeout(ROUND_TIMEOUT, catch_up(&gateway, &store, since)).await;
        match round {
            Ok(Ok(())) => {
                directory.freshness.synced(started);
                if failing {
                    tracing::info!("the store answers again; keys are current");
                    failing = false;
                }
            }
            failed => {
                directory.freshness.sync_failed();
                if !failing {
                    match failed {
                        Ok(Err(err)) => {
                            tracing::warn!(error = %err, "cannot read the store; serving the keys already known")
                        }
                        _ => tracing::warn!(
                            "the store did not answer within {ROUND_TIMEOUT:?}; serving the keys already known"
                        ),
                    }
                    failing = true;
                }
            }
        }
    }
}
