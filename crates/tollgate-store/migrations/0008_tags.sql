-- Tags defined through `/tag/new`: one document each, like teams and users. A tag's spend is
-- already kept (entity kind `tag` in the totals and daily aggregates); the document adds its
-- budget.
CREATE TABLE tollgate_tags (
    id TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
