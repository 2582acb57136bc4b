-- Per-model budgets on keys (LiteLLM's `model_max_budget`): a JSON object, model name to
-- `{"budget_limit": dollars, "time_period": "1d"}`.
ALTER TABLE tollgate_keys ADD COLUMN model_max_budget TEXT NOT NULL DEFAULT '{}';
