//! Responses API responses, kept so a later request on any replica can continue, retrieve or
//! delete them (see the server's `responses` module for what they hold).

use sqlx::Row;

use crate::{Store, StoreError};

/// One kept response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptResponse {
    pub id: String,
    /// Who may read it: a team or a key (`team:…`, `key:…`); empty for the master key's.
    pub owner: String,
    /// Where it is kept, when a provider with the Responses API holds it: its deployment.
    pub deployment: Option<String>,
    /// A bridged response: the response object.
    pub response: Option<String>,
    /// A bridged response: its turn's input items, then its output items (a JSON array).
    pub items: Option<String>,
    pub previous_id: Option<String>,
    /// Milliseconds since the Unix epoch.
    pub created_at: i64,
}

impl Store {
    /// Keeps `kept`, over any response kept under its id before.
    pub async fn keep_response(&self, kept: &KeptResponse) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO tollgate_responses \
             (id, owner, deployment, response, items, previous_id, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO UPDATE SET \
             owner = excluded.owner, deployment = excluded.deployment, \
             response = excluded.response, items = excluded.items, \
             previous_id = excluded.previous_id, created_at = excluded.created_at",
        )
        .bind(&kept.id)
        .bind(&kept.owner)
        .bind(kept.deployment.as_deref())
        .bind(kept.response.as_deref())
        .bind(kept.items.as_deref())
        .bind(kept.previous_id.as_deref())
        .bind(kept.created_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn kept_response(&self, id: &str) -> Result<Option<KeptResponse>, StoreError> {
        let row = sqlx::query(
            "SELECT id, owner, deployment, response, items, previous_id, created_at \
             FROM tollgate_responses WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| -> Result<KeptResponse, StoreError> {
            Ok(KeptResponse {
                id: row.try_get("id")?,
                owner: row.try_get("owner")?,
                deployment: row.try_get("deployment")?,
                response: row.try_get("response")?,
                items: row.try_get("items")?,
                previous_id: row.try_get("previous_id")?,
                created_at: row.try_get("created_at")?,
            })
        })
        .transpose()
    }

    /// Forgets a response; whether it was kept.
    pub async fn forget_response(&self, id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM tollgate_responses WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Forgets the responses kept before `before` (ms); how many.
    pub async fn prune_responses(&self, before: i64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM tollgate_responses WHERE created_at < $1")
            .bind(before)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}
