//! Everyone the gateway knows, in memory: virtual keys, teams, users, organisations and end
//! users, filled from the store at start-up and updated at once by the management API, so a
//! request is checked without a database round trip.

use std::collections::HashMap;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use tollgate_core::wildcard::Pattern;
use tollgate_store::{
    CustomerRecord, Entity, OrganizationRecord, Snapshot, TeamRecord, UserRecord,
};

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
}

impl<E: Entity> Cached<E> {
    pub fn new(record: E) -> Self {
        Cached {
            access: ModelAccess::new(record.models()),
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

#[derive(Debug, Default)]
pub struct Directory {
    pub keys: KeyCache,
    pub teams: Table<TeamRecord>,
    pub users: Table<UserRecord>,
    pub organizations: Table<OrganizationRecord>,
    pub customers: Table<CustomerRecord>,
}

impl Directory {
    /// Takes in everything the store held at start-up.
    pub fn load(&self, snapshot: Snapshot) {
        for key in snapshot.keys {
            self.keys.put(key);
        }
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
    }
}
