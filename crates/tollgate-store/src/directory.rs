//! Teams, users, organisations, end users ("customers"), shared budgets and tags, with
//! LiteLLM's field names. Each is stored as one JSON document under its id: the gateway keeps
//! every one in memory and filters lists there, so the database is asked only by id. Fields
//! added later take their defaults when older documents are read.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sqlx::Row;

use crate::audit::{self, Change};
use crate::{Store, StoreError, is_unique_violation};

/// A kind of record kept as a document.
pub trait Entity: Serialize + DeserializeOwned + Clone + Send + Sync + 'static {
    /// Its table.
    const TABLE: &'static str;
    /// How messages name one ("team").
    const NAME: &'static str;
    fn id(&self) -> &str;
    fn updated_at(&self) -> i64;
    fn set_updated_at(&mut self, ms: i64);
    /// The models it may call; empty means every model.
    fn models(&self) -> &[String] {
        &[]
    }
    /// Its spending limit, for records that can have one.
    fn budget(&self) -> Option<&BudgetFields> {
        None
    }
}

/// A spending limit, as LiteLLM's records carry it: dollars, and how often the spend counted
/// against it starts again (`30d`, `1mo`; none: never).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BudgetFields {
    #[serde(default)]
    pub max_budget: Option<f64>,
    /// Where an alert fires, below `max_budget`.
    #[serde(default)]
    pub soft_budget: Option<f64>,
    #[serde(default)]
    pub budget_duration: Option<String>,
    /// A shared budget (`/budget/new`) whose limits apply where the record sets none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_id: Option<String>,
}

impl BudgetFields {
    pub fn is_set(&self) -> bool {
        self.max_budget.is_some() || self.soft_budget.is_some()
    }
}

/// A budget defined once (LiteLLM's `/budget/new`) and named by keys, teams, users,
/// organisations and end users through `budget_id`: each of them gets these limits, with its
/// own spend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BudgetRecord {
    pub budget_id: String,
    #[serde(default)]
    pub max_budget: Option<f64>,
    #[serde(default)]
    pub soft_budget: Option<f64>,
    #[serde(default)]
    pub budget_duration: Option<String>,
    #[serde(default)]
    pub tpm_limit: Option<i64>,
    #[serde(default)]
    pub rpm_limit: Option<i64>,
    #[serde(default)]
    pub max_parallel_requests: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl BudgetRecord {
    /// Its limits, as a record carrying them would.
    pub fn fields(&self) -> BudgetFields {
        BudgetFields {
            max_budget: self.max_budget,
            soft_budget: self.soft_budget,
            budget_duration: self.budget_duration.clone(),
            budget_id: None,
        }
    }
}

/// A team member's role: a team `admin` manages the team's keys and members.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemberRole {
    Admin,
    #[default]
    User,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TeamMember {
    #[serde(default)]
    pub user_id: Option<String>,
    #[serde(default)]
    pub user_email: Option<String>,
    #[serde(default)]
    pub role: MemberRole,
    /// What this member may spend through the team's keys (LiteLLM's `max_budget_in_team`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_budget_in_team: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TeamRecord {
    pub team_id: String,
    #[serde(default)]
    pub team_alias: Option<String>,
    #[serde(default)]
    pub organization_id: Option<String>,
    #[serde(default)]
    pub models: Vec<String>,
    #[serde(default)]
    pub members_with_roles: Vec<TeamMember>,
    #[serde(default)]
    pub tpm_limit: Option<i64>,
    #[serde(default)]
    pub rpm_limit: Option<i64>,
    #[serde(default)]
    pub max_parallel_requests: Option<i64>,
    /// Limits each member has within the team.
    #[serde(default)]
    pub team_member_tpm_limit: Option<i64>,
    #[serde(default)]
    pub team_member_rpm_limit: Option<i64>,
    #[serde(default)]
    pub metadata: Map<String, Value>,
    #[serde(default)]
    pub blocked: bool,
    #[serde(flatten)]
    pub budget: BudgetFields,
    pub created_at: i64,
    pub updated_at: i64,
}

impl TeamRecord {
    pub fn member(&self, user_id: &str) -> Option<&TeamMember> {
        self.members_with_roles
            .iter()
            .find(|member| member.user_id.as_deref() == Some(user_id))
    }
}

/// A user's role on the whole gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserRole {
    /// Everything the master key may do.
    ProxyAdmin,
    /// Reads everything, changes nothing.
    ProxyAdminViewer,
    /// Manages their own keys.
    #[default]
    InternalUser,
    /// Reads their own keys.
    InternalUserViewer,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserRecord {
    pub user_id: String,
    #[serde(default)]
    pub user_alias: Option<String>,
    #[serde(default)]
    pub user_email: Option<String>,
    #[serde(default)]
    pub user_role: UserRole,
    /// The teams the user is a member of.
    #[serde(default)]
    pub teams: Vec<String>,
    #[serde(default)]
    pub organization_id: Option<String>,
    #[serde(default)]
    pub models: Vec<String>,
    #[serde(default)]
    pub tpm_limit: Option<i64>,
    #[serde(default)]
    pub rpm_limit: Option<i64>,
    #[serde(default)]
    pub max_parallel_requests: Option<i64>,
    #[serde(default)]
    pub metadata: Map<String, Value>,
    #[serde(flatten)]
    pub budget: BudgetFields,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrganizationRecord {
    pub organization_id: String,
    pub organization_alias: String,
    #[serde(default)]
    pub models: Vec<String>,
    #[serde(default)]
    pub tpm_limit: Option<i64>,
    #[serde(default)]
    pub rpm_limit: Option<i64>,
    #[serde(default)]
    pub max_parallel_requests: Option<i64>,
    #[serde(default)]
    pub metadata: Map<String, Value>,
    #[serde(default)]
    pub blocked: bool,
    #[serde(flatten)]
    pub budget: BudgetFields,
    pub created_at: i64,
    pub updated_at: i64,
}

/// An end user: the `user` an application names in its LLM requests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomerRecord {
    pub user_id: String,
    #[serde(default)]
    pub alias: Option<String>,
    #[serde(default)]
    pub blocked: bool,
    #[serde(default)]
    pub tpm_limit: Option<i64>,
    #[serde(default)]
    pub rpm_limit: Option<i64>,
    #[serde(default)]
    pub max_parallel_requests: Option<i64>,
    #[serde(default)]
    pub allowed_model_region: Option<String>,
    #[serde(default)]
    pub default_model: Option<String>,
    #[serde(default)]
    pub metadata: Map<String, Value>,
    #[serde(flatten)]
    pub budget: BudgetFields,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A tag, as LiteLLM's `/tag/new` defines one: requests carry tags (`metadata.tags`, the
/// `x-litellm-tags` header, their key's `tags`); a defined tag gives everything carrying it a
/// budget.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TagRecord {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub metadata: Map<String, Value>,
    #[serde(flatten)]
    pub budget: BudgetFields,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A deployment added through the management API, in LiteLLM's shape. Secret fields of
/// `litellm_params` are stored sealed (see `SecretBox`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelRecord {
    /// `model_info.id`.
    pub model_id: String,
    pub model_name: String,
    pub litellm_params: Map<String, Value>,
    #[serde(default)]
    pub model_info: Map<String, Value>,
    #[serde(default)]
    pub created_by: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

macro_rules! entity {
    ($record:ty, $table:literal, $name:literal, $id:ident $(, models: $models:ident)? $(, budget: $budget:ident)?) => {
        impl Entity for $record {
            const TABLE: &'static str = $table;
            const NAME: &'static str = $name;
            fn id(&self) -> &str {
                &self.$id
            }
            fn updated_at(&self) -> i64 {
                self.updated_at
            }
            fn set_updated_at(&mut self, ms: i64) {
                self.updated_at = ms;
            }
            $(fn models(&self) -> &[String] {
                &self.$models
            })?
            $(fn budget(&self) -> Option<&BudgetFields> {
                Some(&self.$budget)
            })?
        }
    };
}

entity!(TeamRecord, "tollgate_teams", "team", team_id, models: models, budget: budget);
entity!(UserRecord, "tollgate_users", "user", user_id, models: models, budget: budget);
entity!(
    OrganizationRecord,
    "tollgate_organizations",
    "organization",
    organization_id,
    models: models,
    budget: budget
);
entity!(CustomerRecord, "tollgate_customers", "end user", user_id, budget: budget);
entity!(TagRecord, "tollgate_tags", "tag", name, budget: budget);
entity!(ModelRecord, "tollgate_models", "model", model_id);
entity!(BudgetRecord, "tollgate_budgets", "budget", budget_id);

/// The teams, users, organisations and end users the store holds, as the gateway loads them
/// at start-up (keys come one by one from `Store::each_key`).
#[derive(Debug, Default)]
pub struct Snapshot {
    pub teams: Vec<TeamRecord>,
    pub users: Vec<UserRecord>,
    pub organizations: Vec<OrganizationRecord>,
    pub customers: Vec<CustomerRecord>,
    pub budgets: Vec<BudgetRecord>,
    pub tags: Vec<TagRecord>,
}

impl Store {
    pub async fn snapshot(&self) -> Result<Snapshot, StoreError> {
        Ok(Snapshot {
            teams: self.all().await?,
            users: self.all().await?,
            organizations: self.all().await?,
            customers: self.all().await?,
            budgets: self.all().await?,
            tags: self.all().await?,
        })
    }

    /// Adds a record; `Conflict` when its id is taken.
    pub async fn insert<E: Entity>(
        &self,
        record: &E,
        change: &Change<'_>,
    ) -> Result<(), StoreError> {
        let sql = format!(
            "INSERT INTO {} (id, body, updated_at) VALUES ($1, $2, $3)",
            E::TABLE
        );
        let mut transaction = self.pool.begin().await?;
        let result = sqlx::query(&sql)
            .bind(record.id().to_owned())
            .bind(document(record))
            .bind(record.updated_at())
            .execute(&mut *transaction)
            .await;
        match result {
            Err(err) if is_unique_violation(&err) => {
                return Err(StoreError::Conflict(format!(
                    "{} `{}`",
                    E::NAME,
                    record.id()
                )));
            }
            other => other?,
        };
        let after = Some(value(record));
        audit::record(&mut transaction, change, E::TABLE, record.id(), None, after).await?;
        transaction.commit().await?;
        Ok(())
    }

    /// Rewrites a record; false when there is none with its id.
    pub async fn replace<E: Entity>(
        &self,
        record: &E,
        change: &Change<'_>,
    ) -> Result<bool, StoreError> {
        let mut transaction = self.pool.begin().await?;
        let Some(before) = self.locked::<E>(&mut transaction, record.id()).await? else {
            return Ok(false);
        };
        let sql = format!(
            "UPDATE {} SET body = $1, updated_at = $2 WHERE id = $3",
            E::TABLE
        );
        sqlx::query(&sql)
            .bind(document(record))
            .bind(record.updated_at())
            .bind(record.id().to_owned())
            .execute(&mut *transaction)
            .await?;
        let after = Some(value(record));
        audit::record(
            &mut transaction,
            change,
            E::TABLE,
            record.id(),
            Some(before),
            after,
        )
        .await?;
        transaction.commit().await?;
        Ok(true)
    }

    pub async fn get<E: Entity>(&self, id: &str) -> Result<Option<E>, StoreError> {
        let sql = format!("SELECT body FROM {} WHERE id = $1", E::TABLE);
        let row = sqlx::query(&sql)
            .bind(id.to_owned())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| read(&row)).transpose()
    }

    /// Every record of a kind, oldest change first.
    pub async fn all<E: Entity>(&self) -> Result<Vec<E>, StoreError> {
        let sql = format!("SELECT body FROM {} ORDER BY updated_at, id", E::TABLE);
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        rows.iter().map(read).collect()
    }

    /// Deletes the records with these ids; returns those that existed.
    pub async fn delete<E: Entity>(
        &self,
        ids: &[String],
        change: &Change<'_>,
    ) -> Result<Vec<String>, StoreError> {
        let sql = format!("DELETE FROM {} WHERE id = $1", E::TABLE);
        let mut deleted = Vec::new();
        let mut transaction = self.pool.begin().await?;
        for id in ids {
            let Some(before) = self.locked::<E>(&mut transaction, id).await? else {
                continue;
            };
            sqlx::query(&sql)
                .bind(id.clone())
                .execute(&mut *transaction)
                .await?;
            audit::record(&mut transaction, change, E::TABLE, id, Some(before), None).await?;
            deleted.push(id.clone());
        }
        transaction.commit().await?;
        Ok(deleted)
    }

    /// A record's stored document, locked for the rest of the transaction.
    async fn locked<E: Entity>(
        &self,
        connection: &mut sqlx::AnyConnection,
        id: &str,
    ) -> Result<Option<Value>, StoreError> {
        let sql = format!(
            "SELECT body FROM {} WHERE id = $1{}",
            E::TABLE,
            self.row_lock()
        );
        let row = sqlx::query(&sql)
            .bind(id.to_owned())
            .fetch_optional(connection)
            .await?;
        row.map(|row| {
            let body: String = row.try_get("body")?;
            serde_json::from_str(&body).map_err(|err| StoreError::Corrupt {
                field: E::TABLE,
                reason: err.to_string(),
            })
        })
        .transpose()
    }
}

fn value<E: Entity>(record: &E) -> Value {
    serde_json::to_value(record).expect("records serialise")
}

fn document<E: Entity>(record: &E) -> String {
    serde_json::to_string(record).expect("records serialise")
}

fn read<E: Entity>(row: &sqlx::any::AnyRow) -> Result<E, StoreError> {
    let body: String = row.try_get("body")?;
    serde_json::from_str(&body).map_err(|err| StoreError::Corrupt {
        field: E::TABLE,
        reason: err.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_written_before_a_field_existed_still_read() {
        let team: TeamRecord = serde_json::from_value(serde_json::json!(
            {"team_id": "old", "created_at": 1, "updated_at": 1}
        ))
        .unwrap();
        assert!(team.models.is_empty() && team.members_with_roles.is_empty() && !team.blocked);
        let user: UserRecord = serde_json::from_value(serde_json::json!(
            {"user_id": "u", "created_at": 1, "updated_at": 1}
        ))
        .unwrap();
        assert_eq!(user.user_role, UserRole::InternalUser);
    }
}
