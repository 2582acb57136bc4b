-- Deployments added through the management API (`/model/new`), joining the config file's.
-- One JSON document per deployment, LiteLLM's shape; provider secrets in it are encrypted.
CREATE TABLE tollgate_models (
    id TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
