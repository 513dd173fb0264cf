-- The client's X-Request-Id, kept apart from the gateway's own record id
-- (request_id, unique). Informational: many rows may share one value.
ALTER TABLE audit_logs ADD COLUMN client_request_id TEXT;
CREATE INDEX audit_logs_client_request_id_idx ON audit_logs (client_request_id);
