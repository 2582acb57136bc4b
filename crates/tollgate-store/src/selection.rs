//! Paged, filtered listing: the `WHERE` clause of a list endpoint built from the filters it
//! was given (caller text always bound as parameters), counted and read a page at a time.

use sqlx::AnyPool;
use sqlx::any::AnyRow;

use crate::StoreError;

#[derive(Debug, Default)]
pub(crate) struct Selection {
    conditions: Vec<String>,
    values: Vec<String>,
}

impl Selection {
    /// `column = value`, when a value is given.
    pub(crate) fn equal(mut self, column: &str, value: Option<String>) -> Self {
        if let Some(value) = value {
            self.values.push(value);
            self.conditions
                .push(format!("{column} = ${}", self.values.len()));
        }
        self
    }

    /// `columns[0] = value OR columns[1] = value`, when a value is given.
    pub(crate) fn equal_either(mut self, columns: [&str; 2], value: Option<String>) -> Self {
        if let Some(value) = value {
            self.values.push(value);
            let n = self.values.len();
            self.conditions
                .push(format!("({} = ${n} OR {} = ${n})", columns[0], columns[1]));
        }
        self
    }

    /// A condition the gateway wrote itself, holding no caller text (`updated_at >= 17…`).
    pub(crate) fn written(mut self, condition: Option<String>) -> Self {
        self.conditions.extend(condition);
        self
    }

    fn where_clause(&self) -> String {
        if self.conditions.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", self.conditions.join(" AND "))
        }
    }

    /// How many rows of `table` match.
    pub(crate) async fn count(&self, pool: &AnyPool, table: &str) -> Result<u64, StoreError> {
        let sql = format!("SELECT COUNT(*) FROM {table}{}", self.where_clause());
        let mut count = sqlx::query_scalar::<_, i64>(&sql);
        for value in &self.values {
            count = count.bind(value.clone());
        }
        Ok(count.fetch_one(pool).await? as u64)
    }

    /// Page `page` (from 1) of `size` matching rows of `table`, in `order`.
    pub(crate) async fn page(
        &self,
        pool: &AnyPool,
        table: &str,
        columns: &str,
        order: &str,
        page: u32,
        size: u32,
    ) -> Result<Vec<AnyRow>, StoreError> {
        let offset = i64::from(page.max(1) - 1) * i64::from(size);
        let sql = format!(
            "SELECT {columns} FROM {table}{} ORDER BY {order} LIMIT {size} OFFSET {offset}",
            self.where_clause()
        );
        let mut query = sqlx::query(&sql);
        for value in &self.values {
            query = query.bind(value.clone());
        }
        Ok(query.fetch_all(pool).await?)
    }
}
