-- Responses API responses the gateway keeps for `previous_response_id`, retrieval and
-- deletion, read by every replica: a bridged one whole (the response object, and its turn's
-- input then output items as a JSON array), a native one as the deployment holding it. `owner`
-- is who may read it (a team or a key; empty: the master key). Kept for
-- `responses_retention`, then pruned by `created_at`.
CREATE TABLE tollgate_responses (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    deployment TEXT,
    response TEXT,
    items TEXT,
    previous_id TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX tollgate_responses_created ON tollgate_responses (created_at);
