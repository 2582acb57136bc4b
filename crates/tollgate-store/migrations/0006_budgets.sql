-- Budgets on keys (teams, users, organisations and end users keep theirs in their documents).
-- Dollars as LiteLLM's API writes them; spend against them is counted in nano-dollars.
ALTER TABLE tollgate_keys ADD COLUMN max_budget DOUBLE PRECISION;
ALTER TABLE tollgate_keys ADD COLUMN soft_budget DOUBLE PRECISION;
ALTER TABLE tollgate_keys ADD COLUMN budget_duration TEXT;
