-- A request id the client chose (`x-request-id`) is not unique: services pass one id on to
-- every call they make for a request, and clients retry under the same id. Records are keyed by
-- the gateway's own id; the client's is kept beside it, findable.
ALTER TABLE tollgate_spend_logs ADD COLUMN client_request_id TEXT;
CREATE INDEX tollgate_spend_logs_client_request ON tollgate_spend_logs (client_request_id)
    WHERE client_request_id IS NOT NULL;
