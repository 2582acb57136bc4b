//! `tollgate import litellm`: a LiteLLM proxy's PostgreSQL database copied into Tollgate's
//! store — keys (their SHA-256 hashes, which Tollgate stores the same way, so existing keys
//! keep working), teams with their members, users, organisations, end users, the shared
//! budgets they name, and what each has spent.
//!
//! Idempotent: records are compared by id with what the store holds and written only when
//! LiteLLM's differ (LiteLLM's version wins; records only Tollgate has are left alone); spend
//! is *set*, not added — each entity's imported amount is kept as its own row of the daily
//! aggregates (`IMPORTED_SPEND_GROUP`), and importing again moves its total by the difference
//! only (`Store::set_imported_spend`). A second run over an unchanged LiteLLM database writes
//! nothing.

mod convert;
mod source;

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::Value;

use self::convert::{Converted, Existing};
use crate::audit::{Action, Actor};
use crate::directory::{Entity, OrganizationRecord, TeamRecord};
use crate::spend::EntityKind;
use crate::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("cannot read LiteLLM's database {url}: {reason}")]
    Source { url: String, reason: String },
    #[error("{url} has no LiteLLM_VerificationToken table: is it LiteLLM's database (and schema)?")]
    NotLitellm { url: String },
    #[error("cannot read LiteLLM's {table}: {reason}")]
    Read { table: &'static str, reason: String },
    #[error("cannot write to Tollgate's store: {0}")]
    Store(#[from] StoreError),
}

/// What a finding or a count is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Organization,
    Team,
    TeamMember,
    User,
    EndUser,
    Key,
    Budget,
}

impl Kind {
    pub fn singular(self) -> &'static str {
        match self {
            Kind::Organization => "organisation",
            Kind::Team => "team",
            Kind::TeamMember => "team member",
            Kind::User => "user",
            Kind::EndUser => "end user",
            Kind::Key => "key",
            Kind::Budget => "budget",
        }
    }

    pub fn plural(self) -> &'static str {
        match self {
            Kind::Organization => "organisations",
            Kind::Team => "teams",
            Kind::TeamMember => "team members",
            Kind::User => "users",
            Kind::EndUser => "end users",
            Kind::Key => "keys",
            Kind::Budget => "budgets",
        }
    }
}

/// Something about one row: why it was skipped, or what of it was not carried over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub kind: Kind,
    /// How people know the row: an id, a key's alias and the start of its hash.
    pub id: String,
    pub message: String,
}

/// How many rows of a kind were new to the store, changed it, matched it, or were skipped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub skipped: usize,
}

impl Counts {
    fn add(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Created => self.created += 1,
            Outcome::Updated => self.updated += 1,
            Outcome::Unchanged => self.unchanged += 1,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Created,
    Updated,
    Unchanged,
}

/// What an import did (or, on a dry run, would do).
#[derive(Debug, Default)]
pub struct Report {
    pub dry_run: bool,
    /// Records by kind (team members: `LiteLLM_TeamMembership` rows, written as part of
    /// their team).
    pub records: BTreeMap<Kind, Counts>,
    /// Entities whose spend was imported: `created` the first time, `updated` when LiteLLM's
    /// figure changed since, `unchanged` when it is what was imported before. Entities that
    /// spent nothing and had nothing imported are not counted.
    pub spend: BTreeMap<Kind, Counts>,
    /// Rows of `LiteLLM_BudgetTable` read (their values go into the records naming them).
    pub budgets: usize,
    pub skipped: Vec<Finding>,
    pub notes: Vec<Finding>,
    /// LiteLLM tables that do not exist in that database (an older LiteLLM).
    pub missing_tables: Vec<&'static str>,
}

impl Report {
    /// Whether the import wrote (or would write) anything.
    pub fn changed_anything(&self) -> bool {
        self.records
            .values()
            .chain(self.spend.values())
            .any(|counts| counts.created + counts.updated > 0)
    }
}

/// How the import runs.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Compare and report, write nothing.
    pub dry_run: bool,
    /// Milliseconds since the Unix epoch: imported spend is filed on this day.
    pub now_ms: i64,
}

/// Reads LiteLLM's database at `source_url` and writes what it holds into `store` (see the
/// module's documentation).
pub async fn import(
    source_url: &str,
    store: &Store,
    options: Options,
) -> Result<Report, ImportError> {
    let tables = source::read(source_url).await?;
    let existing = existing(store).await?;
    let converted = convert::convert(&tables, &existing, options.now_ms);
    let mut report = Report {
        dry_run: options.dry_run,
        budgets: converted.budgets_read,
        missing_tables: tables.missing.clone(),
        ..Report::default()
    };
    apply(store, converted, options, &mut report).await?;
    Ok(report)
}

/// The teams, organisations and key aliases the store holds already.
async fn existing(store: &Store) -> Result<Existing, StoreError> {
    let mut existing = Existing {
        teams: store
            .all::<TeamRecord>()
            .await?
            .into_iter()
            .map(|team| team.team_id)
            .collect(),
        organizations: store
            .all::<OrganizationRecord>()
            .await?
            .into_iter()
            .map(|organization| organization.organization_id)
            .collect(),
        ..Existing::default()
    };
    store
        .each_key(|key| {
            if let Some(alias) = key.key_alias {
                existing.aliases.insert(alias, key.token);
            }
        })
        .await?;
    Ok(existing)
}

async fn apply(
    store: &Store,
    converted: Converted,
    options: Options,
    report: &mut Report,
) -> Result<(), StoreError> {
    let actor = Actor::system();
    let Converted {
        organizations,
        teams,
        users,
        customers,
        keys,
        spend,
        memberships,
        skipped,
        notes,
        ..
    } = converted;
    // Referenced records first: organisations, teams, then those that name them.
    for record in &organizations {
        let outcome = put(store, &actor, record, options).await?;
        report
            .records
            .entry(Kind::Organization)
            .or_default()
            .add(outcome);
    }
    for record in &teams {
        let outcome = put(store, &actor, record, options).await?;
        report.records.entry(Kind::Team).or_default().add(outcome);
        for _ in 0..memberships.get(&record.team_id).copied().unwrap_or(0) {
            report
                .records
                .entry(Kind::TeamMember)
                .or_default()
                .add(outcome);
        }
    }
    for record in &users {
        let outcome = put(store, &actor, record, options).await?;
        report.records.entry(Kind::User).or_default().add(outcome);
    }
    for record in &customers {
        let outcome = put(store, &actor, record, options).await?;
        report
            .records
            .entry(Kind::EndUser)
            .or_default()
            .add(outcome);
    }
    let mut imported_keys = HashSet::new();
    for key in &keys {
        let outcome = match store.key(&key.token).await? {
            None if options.dry_run => Outcome::Created,
            None => match store.insert_key(key, &actor.change(Action::Created)).await {
                Ok(()) => Outcome::Created,
                Err(StoreError::Conflict(what)) => {
                    report.skipped.push(Finding {
                        kind: Kind::Key,
                        id: key
                            .key_alias
                            .clone()
                            .unwrap_or_else(|| key.key_name.clone()),
                        message: format!("{what} is in the store already"),
                    });
                    report.records.entry(Kind::Key).or_default().skipped += 1;
                    continue;
                }
                Err(err) => return Err(err),
            },
            Some(stored) if same(&stored, key) => Outcome::Unchanged,
            Some(_) if options.dry_run => Outcome::Updated,
            Some(stored) => {
                let mut key = key.clone();
                key.created_at = stored.created_at;
                key.updated_at = options.now_ms;
                store
                    .replace_key(&stored.token, &key, &actor.change(Action::Updated))
                    .await?;
                Outcome::Updated
            }
        };
        imported_keys.insert(key.token.clone());
        report.records.entry(Kind::Key).or_default().add(outcome);
    }
    for finding in &skipped {
        report.records.entry(finding.kind).or_default().skipped += 1;
    }
    report.skipped.splice(0..0, skipped);
    report.notes.extend(notes);

    // Spend last: only for what was imported.
    let mut imported_before = HashMap::new();
    for (kind, entity, id, amount) in spend {
        if entity == EntityKind::Key && !imported_keys.contains(&id) {
            continue;
        }
        if let Entry::Vacant(slot) = imported_before.entry(entity) {
            slot.insert(store.imported_spend(entity).await?);
        }
        let before = imported_before[&entity].get(&id).copied().unwrap_or(0);
        let outcome = match (before, amount) {
            (0, 0) => continue,
            (before, amount) if before == amount => Outcome::Unchanged,
            (0, _) => Outcome::Created,
            _ => Outcome::Updated,
        };
        if outcome != Outcome::Unchanged && !options.dry_run {
            store
                .set_imported_spend(entity, &id, amount, options.now_ms)
                .await?;
        }
        report.spend.entry(kind).or_default().add(outcome);
    }
    Ok(())
}

/// Writes `record` unless the store holds the same already.
async fn put<E: Entity>(
    store: &Store,
    actor: &Actor,
    record: &E,
    options: Options,
) -> Result<Outcome, StoreError> {
    match store.get::<E>(record.id()).await? {
        None if options.dry_run => Ok(Outcome::Created),
        None => {
            store.insert(record, &actor.change(Action::Created)).await?;
            Ok(Outcome::Created)
        }
        Some(stored) if same(&stored, record) => Ok(Outcome::Unchanged),
        Some(_) if options.dry_run => Ok(Outcome::Updated),
        Some(_) => {
            let mut record = record.clone();
            record.set_updated_at(options.now_ms);
            store
                .replace(&record, &actor.change(Action::Updated))
                .await?;
            Ok(Outcome::Updated)
        }
    }
}

/// Whether two versions of a record differ in anything but when they were written.
fn same<T: serde::Serialize>(stored: &T, imported: &T) -> bool {
    let without_times = |record: &T| {
        let mut value = serde_json::to_value(record).expect("records serialise");
        if let Value::Object(fields) = &mut value {
            fields.remove("created_at");
            fields.remove("updated_at");
        }
        value
    };
    without_times(stored) == without_times(imported)
}
