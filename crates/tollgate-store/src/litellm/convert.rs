//! LiteLLM's rows as Tollgate's records. Shared budgets (`budget_id`) are folded into the
//! records that name them; references to teams or organisations that exist neither in LiteLLM
//! nor in the store are dropped; every value that cannot be carried over is said, never
//! silently lost.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::{Map, Value};
use tollgate_core::calendar::BudgetPeriod;
use tollgate_pricing::Usd;

use super::source::{Row, Tables, Unreadable};
use super::{Finding, Kind};
use crate::directory::{
    BudgetFields, CustomerRecord, MemberRole, OrganizationRecord, TeamMember, TeamRecord,
    UserRecord, UserRole,
};
use crate::keys::{KeyRecord, ModelBudget};
use crate::spend::EntityKind;

/// What the store holds already, which imported records may refer to.
#[derive(Debug, Default)]
pub(crate) struct Existing {
    pub teams: HashSet<String>,
    pub organizations: HashSet<String>,
    /// Key aliases taken, with the token holding each (aliases are unique in Tollgate).
    pub aliases: HashMap<String, String>,
}

/// Everything the import would write.
#[derive(Debug, Default)]
pub(crate) struct Converted {
    pub organizations: Vec<OrganizationRecord>,
    pub teams: Vec<TeamRecord>,
    pub users: Vec<UserRecord>,
    pub customers: Vec<CustomerRecord>,
    pub keys: Vec<KeyRecord>,
    /// LiteLLM's `spend` of each imported entity, in nano-dollars.
    pub spend: Vec<(Kind, EntityKind, String, u64)>,
    /// How many `LiteLLM_TeamMembership` rows went into each team.
    pub memberships: HashMap<String, usize>,
    pub budgets_read: usize,
    pub skipped: Vec<Finding>,
    pub notes: Vec<Finding>,
}

/// A row of `LiteLLM_BudgetTable`.
#[derive(Debug, Clone, Default)]
struct SharedBudget {
    max_budget: Option<f64>,
    soft_budget: Option<f64>,
    budget_duration: Option<String>,
    tpm_limit: Option<i64>,
    rpm_limit: Option<i64>,
    max_parallel_requests: Option<i64>,
}

/// Rate limits a record carries.
#[derive(Debug, Clone, Copy, Default)]
struct Limits {
    tpm: Option<i64>,
    rpm: Option<i64>,
    parallel: Option<i64>,
}

pub(crate) fn convert(tables: &Tables, existing: &Existing, now_ms: i64) -> Converted {
    let mut converter = Converter {
        budgets: HashMap::new(),
        referenced: HashSet::new(),
        teams: existing.teams.clone(),
        organizations: existing.organizations.clone(),
        aliases: existing.aliases.clone(),
        now_ms,
        out: Converted::default(),
    };
    converter.read_budgets(&tables.budgets);
    converter.organizations.extend(
        tables
            .organizations
            .iter()
            .filter_map(|r| r.text("organization_id")),
    );
    for row in sorted(&tables.organizations, "organization_id") {
        converter.organization(row);
    }
    // Teams are known before users and keys are read, so references between them resolve
    // whatever order the rows come in.
    converter
        .teams
        .extend(tables.teams.iter().filter_map(|r| r.text("team_id")));
    let in_litellm: HashSet<String> = tables
        .teams
        .iter()
        .filter_map(|r| r.text("team_id"))
        .collect();
    let mut memberships: HashMap<String, Vec<&Row>> = HashMap::new();
    for row in sorted(&tables.memberships, "team_id") {
        let (Some(team), Some(user)) = (row.text("team_id"), row.text("user_id")) else {
            converter.skip(
                Kind::TeamMember,
                "(incomplete row)",
                "it names no team or no user",
            );
            continue;
        };
        if in_litellm.contains(&team) {
            memberships.entry(team).or_default().push(row);
        } else {
            converter.skip(
                Kind::TeamMember,
                &format!("{team}/{user}"),
                &format!("team `{team}` is not in LiteLLM_TeamTable"),
            );
        }
    }
    for row in sorted(&tables.teams, "team_id") {
        let id = row.text("team_id").unwrap_or_default();
        converter.team(row, memberships.get(&id).map_or(&[][..], Vec::as_slice));
    }
    for row in sorted(&tables.users, "user_id") {
        converter.user(row);
    }
    for row in sorted(&tables.end_users, "user_id") {
        converter.customer(row);
    }
    for row in sorted(&tables.keys, "token") {
        converter.key(row);
    }
    converter.unreferenced_budgets(&tables.budgets);
    converter.out
}

/// Rows oldest first (then by id), so that where two compete — for a key alias, say — the
/// one LiteLLM had first wins, the same way on every run.
fn sorted<'r>(rows: &'r [Row], id: &str) -> Vec<&'r Row> {
    let mut rows: Vec<&Row> = rows.iter().collect();
    rows.sort_by_key(|row| {
        (
            row.time("created_at").ok().flatten().unwrap_or(i64::MIN),
            row.text(id),
        )
    });
    rows
}

struct Converter {
    budgets: HashMap<String, SharedBudget>,
    referenced: HashSet<String>,
    /// Teams and organisations that will exist once the import is done.
    teams: HashSet<String>,
    organizations: HashSet<String>,
    aliases: HashMap<String, String>,
    now_ms: i64,
    out: Converted,
}

impl Converter {
    fn note(&mut self, kind: Kind, id: &str, message: impl Into<String>) {
        self.out.notes.push(Finding {
            kind,
            id: id.to_owned(),
            message: message.into(),
        });
    }

    fn skip(&mut self, kind: Kind, id: &str, reason: &str) {
        self.out.skipped.push(Finding {
            kind,
            id: id.to_owned(),
            message: reason.to_owned(),
        });
    }

    /// A column's value, or its empty value and a note saying why it was left out.
    fn readable<T: Default>(
        &mut self,
        kind: Kind,
        id: &str,
        column: &str,
        value: Result<T, Unreadable>,
    ) -> T {
        value.unwrap_or_else(|why| {
            self.note(kind, id, format!("`{column}` {why}; imported without it"));
            T::default()
        })
    }

    fn read_budgets(&mut self, rows: &[Row]) {
        for row in rows {
            let Some(id) = row.text("budget_id") else {
                continue;
            };
            self.out.budgets_read += 1;
            self.budgets.insert(
                id,
                SharedBudget {
                    max_budget: row.float("max_budget"),
                    soft_budget: row.float("soft_budget"),
                    budget_duration: row.text("budget_duration"),
                    tpm_limit: row.integer("tpm_limit"),
                    rpm_limit: row.integer("rpm_limit"),
                    max_parallel_requests: row.integer("max_parallel_requests"),
                },
            );
        }
    }

    fn unreferenced_budgets(&mut self, rows: &[Row]) {
        for id in sorted(rows, "budget_id")
            .iter()
            .filter_map(|row| row.text("budget_id"))
        {
            if !self.referenced.contains(&id) {
                self.note(
                    Kind::Budget,
                    &id,
                    "no imported key, organisation, end user or team member names it; not imported",
                );
            }
        }
    }

    /// The record's budget: its own fields, with the shared budget its `budget_id` names
    /// filling what it leaves unset (limits too); amounts and periods Tollgate cannot use are
    /// left out, with a note.
    fn budget(
        &mut self,
        kind: Kind,
        id: &str,
        row: &Row,
        own: BudgetFields,
        own_limits: Limits,
    ) -> (BudgetFields, Limits) {
        let shared = match row.text("budget_id") {
            None => None,
            Some(budget_id) => match self.budgets.get(&budget_id).cloned() {
                Some(shared) => {
                    self.referenced.insert(budget_id.clone());
                    Some((budget_id, shared))
                }
                None => {
                    self.note(
                        kind,
                        id,
                        format!("budget_id `{budget_id}` is not in LiteLLM_BudgetTable; imported without it"),
                    );
                    None
                }
            },
        };
        let mut fields = own;
        let mut limits = own_limits;
        if let Some((budget_id, shared)) = shared {
            if let (Some(mine), Some(theirs)) = (fields.max_budget, shared.max_budget)
                && mine != theirs
            {
                self.note(
                    kind,
                    id,
                    format!(
                        "its own max_budget {mine} is kept over {theirs} of budget `{budget_id}`"
                    ),
                );
            }
            fields.max_budget = fields.max_budget.or(shared.max_budget);
            fields.soft_budget = fields.soft_budget.or(shared.soft_budget);
            fields.budget_duration = fields.budget_duration.or(shared.budget_duration);
            limits.tpm = limits.tpm.or(shared.tpm_limit);
            limits.rpm = limits.rpm.or(shared.rpm_limit);
            limits.parallel = limits.parallel.or(shared.max_parallel_requests);
        }
        for (field, amount) in [
            ("max_budget", &mut fields.max_budget),
            ("soft_budget", &mut fields.soft_budget),
        ] {
            if let Some(value) = *amount
                && Usd::from_f64(value).is_none()
            {
                *amount = None;
                self.out.notes.push(Finding {
                    kind,
                    id: id.to_owned(),
                    message: format!(
                        "{field} {value} is not an amount of dollars; imported without it"
                    ),
                });
            }
        }
        if let Some(period) = fields.budget_duration.clone()
            && BudgetPeriod::parse(&period).is_none()
        {
            fields.budget_duration = None;
            self.note(
                kind,
                id,
                format!("budget_duration `{period}` is not a period Tollgate knows (`30d`, `1mo`, `24h`…); imported without it, so the budget never resets"),
            );
        }
        (fields, limits)
    }

    /// LiteLLM's `spend` of an imported entity.
    fn spend(&mut self, kind: Kind, entity: EntityKind, id: &str, label: &str, row: &Row) {
        let Some(dollars) = row.float("spend") else {
            return;
        };
        match Usd::from_f64(dollars) {
            Some(amount) => self
                .out
                .spend
                .push((kind, entity, id.to_owned(), amount.nanos())),
            None => self.note(
                kind,
                label,
                format!("spend {dollars} is not an amount of dollars; its spend is not imported"),
            ),
        }
    }

    /// Whether `organization_id` will exist; a note when it will not.
    fn organization_ref(
        &mut self,
        kind: Kind,
        id: &str,
        organization: Option<String>,
    ) -> Option<String> {
        let organization = organization?;
        if self.organizations.contains(&organization) {
            return Some(organization);
        }
        self.note(
            kind,
            id,
            format!(
                "organisation `{organization}` does not exist; imported without an organisation"
            ),
        );
        None
    }

    /// Models a record may call, with LiteLLM's `all-proxy-models` written as Tollgate's
    /// "every model" (an empty list).
    fn models(&mut self, kind: Kind, id: &str, row: &Row) -> Vec<String> {
        let models = self.readable(kind, id, "models", row.strings("models"));
        if models.iter().any(|model| model == "all-proxy-models") {
            Vec::new()
        } else {
            models
        }
    }

    /// Per-model budgets are not enforced yet: said, not carried over.
    /// A key's `model_max_budget`, entry by entry; one that does not read is left out, and
    /// said so.
    fn per_model_budgets(
        &mut self,
        kind: Kind,
        id: &str,
        row: &Row,
    ) -> BTreeMap<String, ModelBudget> {
        let mut budgets = BTreeMap::new();
        for (model, value) in row.object("model_max_budget").unwrap_or_default() {
            match ModelBudget::from_litellm(&value) {
                Ok(budget) => {
                    budgets.insert(model, budget);
                }
                Err(reason) => self.note(
                    kind,
                    id,
                    format!("model_max_budget for `{model}` is not carried over: {reason}"),
                ),
            }
        }
        budgets
    }

    fn times(&self, row: &Row) -> (i64, i64) {
        let created = row.time("created_at").ok().flatten();
        let updated = row.time("updated_at").ok().flatten();
        let created = created.or(updated).unwrap_or(self.now_ms);
        (created, updated.unwrap_or(created))
    }

    fn organization(&mut self, row: &Row) {
        let Some(id) = row.text("organization_id") else {
            return self.skip(Kind::Organization, "(no id)", "it has no organization_id");
        };
        let kind = Kind::Organization;
        let models = self.models(kind, &id, row);
        let metadata = self.readable(kind, &id, "metadata", row.object("metadata"));
        let (budget, limits) =
            self.budget(kind, &id, row, BudgetFields::default(), Limits::default());
        let (created_at, updated_at) = self.times(row);
        self.spend(kind, EntityKind::Organization, &id, &id, row);
        self.out.organizations.push(OrganizationRecord {
            organization_alias: row.text("organization_alias").unwrap_or_else(|| id.clone()),
            organization_id: id,
            models,
            tpm_limit: limits.tpm,
            rpm_limit: limits.rpm,
            max_parallel_requests: limits.parallel,
            metadata,
            blocked: row.flag("blocked"),
            budget,
            created_at,
            updated_at,
        });
    }

    fn team(&mut self, row: &Row, memberships: &[&Row]) {
        let Some(id) = row.text("team_id") else {
            return self.skip(Kind::Team, "(no id)", "it has no team_id");
        };
        let kind = Kind::Team;
        let organization_id = self.organization_ref(kind, &id, row.text("organization_id"));
        let models = self.models(kind, &id, row);
        let metadata = self.readable(kind, &id, "metadata", row.object("metadata"));
        let listed = self.readable(
            kind,
            &id,
            "members_with_roles",
            row.list("members_with_roles"),
        );
        let mut members: Vec<TeamMember> = Vec::new();
        for entry in listed {
            match member(&entry) {
                Some(member) => members.push(member),
                None => self.note(
                    kind,
                    &id,
                    format!("a members_with_roles entry ({entry}) names no user; left out"),
                ),
            }
        }
        // Older LiteLLM versions kept members in two text lists.
        for (column, role) in [("admins", MemberRole::Admin), ("members", MemberRole::User)] {
            for user_id in self.readable(kind, &id, column, row.strings(column)) {
                if !members
                    .iter()
                    .any(|m| m.user_id.as_deref() == Some(&user_id))
                {
                    members.push(TeamMember {
                        user_id: Some(user_id),
                        user_email: None,
                        role,
                        max_budget_in_team: None,
                    });
                }
            }
        }
        for membership in memberships {
            let user_id = membership.text("user_id").unwrap_or_default();
            let member_id = format!("{id}/{user_id}");
            let (budget, _) = self.budget(
                Kind::TeamMember,
                &member_id,
                membership,
                BudgetFields::default(),
                Limits::default(),
            );
            let index = match members
                .iter()
                .position(|m| m.user_id.as_deref() == Some(&user_id))
            {
                Some(index) => index,
                None => {
                    members.push(TeamMember {
                        user_id: Some(user_id.clone()),
                        user_email: None,
                        role: MemberRole::User,
                        max_budget_in_team: None,
                    });
                    members.len() - 1
                }
            };
            members[index].max_budget_in_team = budget.max_budget;
            self.spend(
                Kind::TeamMember,
                EntityKind::TeamMember,
                &member_id,
                &member_id,
                membership,
            );
        }
        self.out.memberships.insert(id.clone(), memberships.len());
        self.per_model_budgets(kind, &id, row);
        let (own, own_limits) = own_budget(row);
        let (budget, limits) = self.budget(kind, &id, row, own, own_limits);
        let (created_at, updated_at) = self.times(row);
        self.spend(kind, EntityKind::Team, &id, &id, row);
        self.out.teams.push(TeamRecord {
            team_id: id,
            team_alias: row.text("team_alias"),
            organization_id,
            models,
            members_with_roles: members,
            tpm_limit: limits.tpm,
            rpm_limit: limits.rpm,
            max_parallel_requests: limits.parallel,
            team_member_tpm_limit: None,
            team_member_rpm_limit: None,
            metadata,
            blocked: row.flag("blocked"),
            budget,
            created_at,
            updated_at,
        });
    }

    fn user(&mut self, row: &Row) {
        let Some(id) = row.text("user_id") else {
            return self.skip(Kind::User, "(no id)", "it has no user_id");
        };
        let kind = Kind::User;
        let user_role = match row.text("user_role").as_deref() {
            None | Some("internal_user") => UserRole::InternalUser,
            Some("proxy_admin") => UserRole::ProxyAdmin,
            Some("proxy_admin_viewer") => UserRole::ProxyAdminViewer,
            Some("internal_user_viewer") => UserRole::InternalUserViewer,
            Some(other) => {
                self.note(
                    kind,
                    &id,
                    format!("role `{other}` has no Tollgate equivalent; imported as internal_user"),
                );
                UserRole::InternalUser
            }
        };
        let mut listed = self.readable(kind, &id, "teams", row.strings("teams"));
        listed.extend(row.text("team_id"));
        let mut teams = Vec::new();
        for team in listed {
            if teams.contains(&team) {
                continue;
            }
            if self.teams.contains(&team) {
                teams.push(team);
            } else {
                self.note(
                    kind,
                    &id,
                    format!("team `{team}` does not exist; left out of the user's teams"),
                );
            }
        }
        let organization_id = self.organization_ref(kind, &id, row.text("organization_id"));
        let models = self.models(kind, &id, row);
        let metadata = self.readable(kind, &id, "metadata", row.object("metadata"));
        self.per_model_budgets(kind, &id, row);
        let (own, own_limits) = own_budget(row);
        let (budget, limits) = self.budget(kind, &id, row, own, own_limits);
        let (created_at, updated_at) = self.times(row);
        self.spend(kind, EntityKind::User, &id, &id, row);
        self.out.users.push(UserRecord {
            user_id: id,
            user_alias: row.text("user_alias"),
            user_email: row.text("user_email"),
            user_role,
            teams,
            organization_id,
            models,
            tpm_limit: limits.tpm,
            rpm_limit: limits.rpm,
            max_parallel_requests: limits.parallel,
            metadata,
            budget,
            created_at,
            updated_at,
        });
    }

    fn customer(&mut self, row: &Row) {
        let Some(id) = row.text("user_id") else {
            return self.skip(Kind::EndUser, "(no id)", "it has no user_id");
        };
        let kind = Kind::EndUser;
        let (budget, limits) =
            self.budget(kind, &id, row, BudgetFields::default(), Limits::default());
        let (created_at, updated_at) = self.times(row);
        self.spend(kind, EntityKind::EndUser, &id, &id, row);
        self.out.customers.push(CustomerRecord {
            user_id: id,
            alias: row.text("alias"),
            blocked: row.flag("blocked"),
            tpm_limit: limits.tpm,
            rpm_limit: limits.rpm,
            max_parallel_requests: limits.parallel,
            allowed_model_region: row.text("allowed_model_region"),
            default_model: row.text("default_model"),
            metadata: Map::new(),
            budget,
            created_at,
            updated_at,
        });
    }

    fn key(&mut self, row: &Row) {
        let named = row.text("key_alias").or_else(|| row.text("key_name"));
        let Some(token) = row.text("token").map(|t| t.to_ascii_lowercase()) else {
            return self.skip(
                Kind::Key,
                named.as_deref().unwrap_or("(unnamed)"),
                "it has no token",
            );
        };
        if !is_sha256_hex(&token) {
            // The token may be a key in plain text: it is never printed.
            return self.skip(
                Kind::Key,
                named.as_deref().unwrap_or("(unnamed)"),
                "its token is not a SHA-256 hex digest, so requests with the key could not be recognised",
            );
        }
        let label = match &named {
            Some(name) => format!("{name} ({}…)", &token[..12]),
            None => format!("{}…", &token[..12]),
        };
        let kind = Kind::Key;
        let mut team_id = row.text("team_id");
        if let Some(team) = &team_id
            && !self.teams.contains(team)
        {
            self.note(
                kind,
                &label,
                format!("team `{team}` does not exist; imported without a team"),
            );
            team_id = None;
        }
        let organization_id = self.organization_ref(kind, &label, row.text("organization_id"));
        let mut key_alias = row.text("key_alias");
        if let Some(alias) = &key_alias {
            match self.aliases.get(alias) {
                Some(holder) if *holder != token => {
                    self.note(
                        kind,
                        &label,
                        format!("key_alias `{alias}` belongs to an older key already (aliases are unique in Tollgate); imported without an alias"),
                    );
                    key_alias = None;
                }
                _ => {
                    self.aliases.insert(alias.clone(), token.clone());
                }
            }
        }
        let models = self.models(kind, &label, row);
        let mut aliases = self.readable(kind, &label, "aliases", row.object("aliases"));
        let unnamed: Vec<String> = aliases
            .iter()
            .filter(|(_, model)| !model.is_string())
            .map(|(alias, _)| alias.clone())
            .collect();
        for alias in unnamed {
            aliases.remove(&alias);
            self.note(
                kind,
                &label,
                format!("aliases.{alias} is not a model name; left out"),
            );
        }
        let metadata = self.readable(kind, &label, "metadata", row.object("metadata"));
        // LiteLLM keeps a key's tags in its metadata.
        let tags = metadata
            .get("tags")
            .and_then(Value::as_array)
            .map(|tags| {
                tags.iter()
                    .filter_map(|t| t.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        let permissions = self.readable(kind, &label, "permissions", row.object("permissions"));
        if !row.object("config").unwrap_or_default().is_empty() {
            self.note(
                kind,
                &label,
                "its per-key `config` has no Tollgate equivalent; not carried over",
            );
        }
        let model_max_budget = self.per_model_budgets(kind, &label, row);
        let expires_at = self.readable(kind, &label, "expires", row.time("expires"));
        let (own, own_limits) = own_budget(row);
        let (budget, limits) = self.budget(kind, &label, row, own, own_limits);
        let (created_at, updated_at) = self.times(row);
        self.spend(kind, EntityKind::Key, &token, &label, row);
        self.out.keys.push(KeyRecord {
            key_name: row.text("key_name").unwrap_or_else(|| "sk-...".to_owned()),
            token,
            key_alias,
            user_id: row.text("user_id"),
            team_id,
            organization_id,
            models,
            aliases,
            metadata,
            tags,
            permissions,
            tpm_limit: limits.tpm,
            rpm_limit: limits.rpm,
            max_parallel_requests: limits.parallel,
            blocked: row.flag("blocked"),
            expires_at,
            created_at,
            updated_at,
            created_by: row.text("created_by"),
            budget,
            model_max_budget,
        });
    }
}

/// A `members_with_roles` entry: `{"user_id", "user_email", "role"}`.
fn member(entry: &Value) -> Option<TeamMember> {
    let text = |field: &str| {
        entry
            .get(field)
            .and_then(Value::as_str)
            .filter(|text| !text.is_empty())
            .map(str::to_owned)
    };
    let (user_id, user_email) = (text("user_id"), text("user_email"));
    if user_id.is_none() && user_email.is_none() {
        return None;
    }
    Some(TeamMember {
        user_id,
        user_email,
        role: match text("role").as_deref() {
            Some("admin") => MemberRole::Admin,
            _ => MemberRole::User,
        },
        max_budget_in_team: None,
    })
}

fn is_sha256_hex(token: &str) -> bool {
    token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The budget and limits a key, team or user row sets itself.
fn own_budget(row: &Row) -> (BudgetFields, Limits) {
    let own = BudgetFields {
        max_budget: row.float("max_budget"),
        soft_budget: row.float("soft_budget"),
        budget_duration: row.text("budget_duration"),
        // LiteLLM's shared budget is resolved into the record's own fields.
        budget_id: None,
    };
    let limits = Limits {
        tpm: row.integer("tpm_limit"),
        rpm: row.integer("rpm_limit"),
        parallel: row.integer("max_parallel_requests"),
    };
    (own, limits)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn rows(values: Value) -> Vec<Row> {
        values
            .as_array()
            .unwrap()
            .iter()
            .map(|v| Row(v.as_object().unwrap().clone()))
            .collect()
    }

    const TOKEN: &str = "4c2f1a5b8e9d0c7f6a3b2e1d0c9f8e7d6c5b4a39281706f5e4d3c2b1a0f9e8d7";

    #[test]
    fn shared_budgets_fill_what_a_record_leaves_unset() {
        let tables = Tables {
            budgets: rows(json!([
                {"budget_id": "b", "max_budget": 50.0, "soft_budget": 40.0,
                 "budget_duration": "30d", "rpm_limit": 9, "tpm_limit": 1000}
            ])),
            keys: rows(json!([
                {"token": TOKEN, "budget_id": "b", "rpm_limit": 5, "spend": 1.25}
            ])),
            ..Tables::default()
        };
        let out = convert(&tables, &Existing::default(), 0);
        let key = &out.keys[0];
        assert_eq!(key.budget.max_budget, Some(50.0));
        assert_eq!(key.budget.soft_budget, Some(40.0));
        assert_eq!(key.budget.budget_duration.as_deref(), Some("30d"));
        assert_eq!((key.rpm_limit, key.tpm_limit), (Some(5), Some(1000)));
        assert_eq!(
            out.spend,
            [(Kind::Key, EntityKind::Key, TOKEN.to_owned(), 1_250_000_000)]
        );
        assert!(out.notes.is_empty(), "{:?}", out.notes);
    }

    #[test]
    fn what_cannot_be_carried_over_is_said() {
        let tables = Tables {
            keys: rows(json!([
                {"token": "sk-plain-text-key", "key_alias": "plain"},
                {"token": TOKEN, "key_alias": "x", "team_id": "gone",
                 "budget_duration": "fortnight", "max_budget": -1.0,
                 "aliases": {"fast": "echo", "odd": 3}, "metadata": [1]}
            ])),
            users: rows(json!([{"user_id": "u", "user_role": "org_admin", "teams": ["gone"]}])),
            ..Tables::default()
        };
        let out = convert(&tables, &Existing::default(), 0);
        assert_eq!(out.skipped.len(), 1);
        assert_eq!(out.skipped[0].id, "plain");
        assert!(!format!("{:?}", out.skipped).contains("sk-plain-text-key"));
        let key = &out.keys[0];
        assert_eq!(key.team_id, None);
        assert_eq!(key.budget, BudgetFields::default());
        assert_eq!(key.aliases, *json!({"fast": "echo"}).as_object().unwrap());
        let said: Vec<&str> = out.notes.iter().map(|n| n.message.as_str()).collect();
        for expected in [
            "team `gone` does not exist; imported without a team",
            "max_budget -1 is not an amount of dollars; imported without it",
            "aliases.odd is not a model name; left out",
            "`metadata` is a list, not a JSON object; imported without it",
            "role `org_admin` has no Tollgate equivalent; imported as internal_user",
            "team `gone` does not exist; left out of the user's teams",
        ] {
            assert!(said.contains(&expected), "{expected:?} not in {said:#?}");
        }
        assert!(
            said.iter()
                .any(|n| n.starts_with("budget_duration `fortnight`"))
        );
    }

    #[test]
    fn the_older_key_keeps_a_shared_alias() {
        let other = TOKEN.replace('4', "5");
        let tables = Tables {
            keys: rows(json!([
                {"token": other, "key_alias": "ci", "created_at": "2025-02-01T00:00:00"},
                {"token": TOKEN, "key_alias": "ci", "created_at": "2025-01-01T00:00:00"}
            ])),
            ..Tables::default()
        };
        let out = convert(&tables, &Existing::default(), 0);
        assert_eq!(out.keys[0].token, TOKEN);
        assert_eq!(out.keys[0].key_alias.as_deref(), Some("ci"));
        assert_eq!(out.keys[1].key_alias, None);
    }
}
