-- The audit log: one row per change made through the store, written in the change's own
-- transaction. Values are JSON text with secrets masked; times are milliseconds since the
-- Unix epoch. Ids start with the time in hex, so they sort by it.
CREATE TABLE tollgate_audit_log (
    id TEXT PRIMARY KEY,
    updated_at BIGINT NOT NULL,
    changed_by TEXT NOT NULL,
    changed_by_api_key TEXT,
    action TEXT NOT NULL,
    table_name TEXT NOT NULL,
    object_id TEXT NOT NULL,
    before_value TEXT,
    updated_values TEXT
);
CREATE INDEX tollgate_audit_log_updated_at ON tollgate_audit_log (updated_at);
CREATE INDEX tollgate_audit_log_object ON tollgate_audit_log (table_name, object_id);
