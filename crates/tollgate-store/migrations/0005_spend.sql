-- Spend: one row per request, running totals per entity, daily aggregates. Money is integer
-- nano-dollars (10^-9 USD), so sums are exact; times are milliseconds since the Unix epoch.
CREATE TABLE tollgate_spend_logs (
    request_id TEXT PRIMARY KEY,
    call_type TEXT NOT NULL,
    key_hash TEXT,
    key_alias TEXT,
    user_id TEXT,
    team_id TEXT,
    organization_id TEXT,
    end_user TEXT,
    model_group TEXT,
    model TEXT,
    deployment_id TEXT,
    provider TEXT,
    api_base TEXT,
    prompt_tokens BIGINT NOT NULL,
    completion_tokens BIGINT NOT NULL,
    cached_tokens BIGINT NOT NULL,
    cache_write_tokens BIGINT NOT NULL,
    reasoning_tokens BIGINT NOT NULL,
    spend BIGINT NOT NULL,
    estimated BIGINT NOT NULL,
    status TEXT NOT NULL,
    http_status BIGINT NOT NULL,
    error_class TEXT,
    start_time BIGINT NOT NULL,
    end_time BIGINT NOT NULL,
    first_token_ms BIGINT,
    stream BIGINT NOT NULL,
    cache_hit BIGINT NOT NULL,
    retries BIGINT NOT NULL,
    fallbacks BIGINT NOT NULL,
    tags TEXT NOT NULL,
    metadata TEXT NOT NULL
);
CREATE INDEX tollgate_spend_logs_start ON tollgate_spend_logs (start_time);
CREATE INDEX tollgate_spend_logs_key ON tollgate_spend_logs (key_hash, start_time);

-- What each key, user, team, organisation, end user, team member (`team/user`) and tag has
-- spent in all, kept apart from their records so spend never stirs the change feed.
CREATE TABLE tollgate_spend_totals (
    entity_kind TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    spend BIGINT NOT NULL,
    requests BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (entity_kind, entity_id)
);

-- Per UTC day, entity and model group.
CREATE TABLE tollgate_daily_spend (
    day TEXT NOT NULL,
    entity_kind TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    model_group TEXT NOT NULL,
    requests BIGINT NOT NULL,
    failed_requests BIGINT NOT NULL,
    prompt_tokens BIGINT NOT NULL,
    completion_tokens BIGINT NOT NULL,
    cached_tokens BIGINT NOT NULL,
    spend BIGINT NOT NULL,
    PRIMARY KEY (day, entity_kind, entity_id, model_group)
);
