-- Teams, users, organisations and end users. Each is one JSON document (LiteLLM's field
-- names) under its id: the gateway holds them all in memory and filters there, so the
-- database only needs to find one by id. Times are milliseconds since the Unix epoch.
CREATE TABLE tollgate_teams (
    id TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE tollgate_users (
    id TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE tollgate_organizations (
    id TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE tollgate_customers (
    id TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
