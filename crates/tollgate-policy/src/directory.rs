//! Everyone the gateway knows, in memory: virtual keys, teams, users, organisations, end
//! users, shared budgets and tags, filled from the store at start-up and updated at once by
//! the management API, so a request is checked without a database round trip.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use tollgate_core::wildcard::Pattern;
use tollgate_store::{
    BudgetRecord, CustomerRecord, Entity, KEYS_TABLE, OrganizationRecord, Snapshot, Store,
    StoreError, TagRecord, TeamRecord, UserRecord,
};

use crate::budgets::Budget;
use crate::keys::KeyCache;

/// LiteLLM's pseudo-model on a key: every model of the key's team.
pub const ALL_TEAM_MODELS: &str = "all-team-models";

/// A list of models something may call, as a request checks it: names and `*` patterns; an
/// empty list allows every model.
#[derive(Debug, Default)]
pub struct ModelAccess {
    models: Vec<String>,
    patterns: Vec<Pattern>,
}

impl ModelAccess {
    pub fn new(models: &[String]) -> Self {
        ModelAccess {
            models: models.to_vec(),
            patterns: models
                .iter()
                .filter_map(|model| Pattern::new(model))
                .collect(),
        }
    }

    /// Whether `model` is allowed (`all-team-models` leaves the choice to the team).
    pub fn allows(&self, model: &str) -> bool {
        self.models.is_empty()
            || self
                .models
                .iter()
                .any(|allowed| allowed == model || allowed == ALL_TEAM_MODELS)
            || self.patterns.iter().any(|pattern| pattern.matches(model))
    }

    pub fn is_unrestricted(&self) -> bool {
        self.models.is_empty()
    }

    pub fn models(&self) -> &[String] {
        &self.models
    }
}

/// A record as requests use it: with its model list ready to check.
#[derive(Debug)]
pub struct Cached<E> {
    pub record: E,
    pub access: ModelAccess,
    pub budget: Option<Budget>,
}

impl<E: Entity> Cached<E> {
    pub fn new(record: E) -> Self {
        Cached {
            access: ModelAccess::new(record.models()),
            budget: record.budget().and_then(Budget::of),
            record,
        }
    }
}

/// Every record of one kind, by id.
#[derive(Debug)]
pub struct Table<E> {
    rows: RwLock<HashMap<String, Arc<Cached<E>>>>,
}

impl<E> Default for Table<E> {
    fn default() -> Self {
        Table {
            rows: RwLock::default(),
        }
    }
}

impl<E: Entity> Table<E> {
    pub fn get(&self, id: &str) -> Option<Arc<Cached<E>>> {
        self.read().get(id).cloned()
    }

    pub fn put(&self, record: E) {
        let id = record.id().to_owned();
        self.write().insert(id, Arc::new(Cached::new(record)));
    }

    pub fn remove(&self, id: &str) {
        self.write().remove(id);
    }

    /// `put`, unless what is held was changed later (by this instance, while the record was
    /// being read from the store).
    fn put_unless_newer(&self, record: E) {
        let mut rows = self.write();
        if rows
            .get(record.id())
            .is_none_or(|held| held.record.updated_at() <= record.updated_at())
        {
            rows.insert(record.id().to_owned(), Arc::new(Cached::new(record)));
        }
    }

    /// `remove`, unless what is held was changed after `at_ms` (re-created, say).
    fn remove_unless_newer(&self, id: &str, at_ms: i64) {
        let mut rows = self.write();
        if rows
            .get(id)
            .is_some_and(|held| held.record.updated_at() <= at_ms)
        {
            rows.remove(id);
        }
    }

    /// Every record, by id.
    pub fn all(&self) -> Vec<Arc<Cached<E>>> {
        let mut all: Vec<_> = self.read().values().cloned().collect();
        all.sort_by(|a, b| a.record.id().cmp(b.record.id()));
        all
    }

    pub fn len(&self) -> usize {
        self.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn read(&self) -> RwLockReadGuard<'_, HashMap<String, Arc<Cached<E>>>> {
        self.rows
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, HashMap<String, Arc<Cached<E>>>> {
        self.rows
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A kind of record the directory keeps, and where.
pub trait Listed: Entity {
    fn table(directory: &Directory) -> &Table<Self>;
}

macro_rules! listed {
    ($record:ty, $field:ident) => {
        impl Listed for $record {
            fn table(directory: &Directory) -> &Table<Self> {
                &directory.$field
            }
        }
    };
}

listed!(TeamRecord, teams);
listed!(UserRecord, users);
listed!(OrganizationRecord, organizations);
listed!(CustomerRecord, customers);
listed!(BudgetRecord, budgets);
listed!(TagRecord, tags);

#[derive(Debug, Default)]
pub struct Directory {
    pub keys: KeyCache,
    pub teams: Table<TeamRecord>,
    pub users: Table<UserRecord>,
    pub organizations: Table<OrganizationRecord>,
    pub customers: Table<CustomerRecord>,
    /// Shared budgets, named by records' `budget_id`.
    pub budgets: Table<BudgetRecord>,
    /// Tags defined through `/tag/new` (requests may carry others, which only count spend).
    pub tags: Table<TagRecord>,
    pub freshness: Freshness,
}

/// How current the directory is: when it last matched the store, and for how long it may be
/// trusted without matching it again. Without a store it is never stale.
#[derive(Debug, Default)]
pub struct Freshness {
    synced_at_ms: AtomicI64,
    /// 0: no bound (no store).
    max_staleness_ms: AtomicI64,
    /// Whether the latest attempt to read the store failed.
    unreachable: AtomicBool,
}

impl Freshness {
    /// The directory matches the store as of `at_ms`, and may be trusted for `max_staleness`.
    pub fn bound(&self, at_ms: i64, max_staleness: Duration) {
        self.max_staleness_ms
            .store(max_staleness.as_millis() as i64, Ordering::Relaxed);
        self.synced(at_ms);
    }

    /// The directory has just matched the store again.
    pub fn synced(&self, at_ms: i64) {
        self.synced_at_ms.fetch_max(at_ms, Ordering::Relaxed);
        self.unreachable.store(false, Ordering::Relaxed);
    }

    /// An attempt to read the store failed.
    pub fn sync_failed(&self) {
        self.unreachable.store(true, Ordering::Relaxed);
    }

    /// Whether the latest attempt to read the store succeeded.
    pub fn store_reachable(&self) -> bool {
        !self.unreachable.load(Ordering::Relaxed)
    }

    pub fn synced_at_ms(&self) -> i64 {
        self.synced_at_ms.load(Ordering::Relaxed)
    }

    /// Whether it has gone unmatched for longer than it may be trusted.
    pub fn is_stale(&self, now_ms: i64) -> bool {
        let bound = self.max_staleness_ms.load(Ordering::Relaxed);
        bound > 0 && now_ms - self.synced_at_ms() > bound
    }
}

impl Directory {
    /// Takes in the changes the store logged at or after `since_ms` (made through other
    /// replicas, or this one): each changed record is read again and put in, or dropped when
    /// the store no longer has it. Reading the record rather than replaying the change makes
    /// this idempotent, so overlapping windows are harmless. Returns the changed records of
    /// the tables it does not hold (table, id), for their keepers.
    pub async fn catch_up(
        &self,
        store: &Store,
        since_ms: i64,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let mut latest: HashMap<(String, String), i64> = HashMap::new();
        for change in store.changed_since(since_ms).await? {
            for id in std::iter::once(change.object_id).chain(change.replaced_by) {
                let at = latest.entry((change.table_name.clone(), id)).or_default();
                *at = (*at).max(change.at);
            }
        }
        let mut others = Vec::new();
        for ((table, id), at) in &latest {
            match table.as_str() {
                KEYS_TABLE => match store.key(id).await? {
                    Some(key) => self.keys.put_unless_newer(key),
                    None => self.keys.remove_unless_newer(id, *at),
                },
                TeamRecord::TABLE => self.refresh::<TeamRecord>(store, id, *at).await?,
                UserRecord::TABLE => self.refresh::<UserRecord>(store, id, *at).await?,
                OrganizationRecord::TABLE => {
                    self.refresh::<OrganizationRecord>(store, id, *at).await?
                }
                CustomerRecord::TABLE => self.refresh::<CustomerRecord>(store, id, *at).await?,
                BudgetRecord::TABLE => self.refresh::<BudgetRecord>(store, id, *at).await?,
                TagRecord::TABLE => self.refresh::<TagRecord>(store, id, *at).await?,
                _ => others.push((table.clone(), id.clone())),
            }
        }
        Ok(others)
    }

    async fn refresh<E: Listed>(&self, store: &Store, id: &str, at: i64) -> Result<(), StoreError> {
        match store.get::<E>(id).await? {
            Some(record) => E::table(self).put_unless_newer(record),
            None => E::table(self).remove_unless_newer(id, at),
        }
        Ok(())
    }

    /// Takes in everything the store holds, as the gateway starts.
    pub async fn load(&self, store: &Store) -> Result<(), StoreError> {
        store.each_key(|key| self.keys.put(key)).await?;
        self.take_in(store.snapshot().await?);
        Ok(())
    }

    /// Takes in a snapshot's records.
    fn take_in(&self, snapshot: Snapshot) {
        for team in snapshot.teams {
            self.teams.put(team);
        }
        for user in snapshot.users {
            self.users.put(user);
        }
        for organization in snapshot.organizations {
            self.organizations.put(organization);
        }
        for customer in snapshot.customers {
            self.customers.put(customer);
        }
        for budget in snapshot.budgets {
            self.budgets.put(budget);
        }
        for tag in snapshot.tags {
            self.tags.put(tag);
        }
    }
}
