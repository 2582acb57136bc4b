-- Virtual keys. Portable SQL: the same file migrates SQLite and PostgreSQL.
-- Only the SHA-256 of a key is kept (LiteLLM's scheme, so imported keys keep working); lists
-- are JSON text; times are milliseconds since the Unix epoch.
CREATE TABLE tollgate_keys (
    token TEXT PRIMARY KEY,
    key_name TEXT NOT NULL,
    key_alias TEXT UNIQUE,
    user_id TEXT,
    team_id TEXT,
    organization_id TEXT,
    models TEXT NOT NULL,
    aliases TEXT NOT NULL,
    metadata TEXT NOT NULL,
    tags TEXT NOT NULL,
    permissions TEXT NOT NULL,
    tpm_limit BIGINT,
    rpm_limit BIGINT,
    max_parallel_requests BIGINT,
    blocked BIGINT NOT NULL, -- 0 or 1 (sqlx's Any driver reads no SQLite booleans)
    expires_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    created_by TEXT
);
CREATE INDEX tollgate_keys_team_id ON tollgate_keys (team_id);
CREATE INDEX tollgate_keys_user_id ON tollgate_keys (user_id);
