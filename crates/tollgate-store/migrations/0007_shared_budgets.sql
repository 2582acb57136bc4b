-- Shared budgets (`/budget/new`): one document each, like teams and users, named by records
-- through `budget_id`.
CREATE TABLE tollgate_budgets (
    id TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
ALTER TABLE tollgate_keys ADD COLUMN budget_id TEXT;
