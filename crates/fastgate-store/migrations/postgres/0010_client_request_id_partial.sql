-- Most requests carry no X-Request-Id, so most rows have no client_request_id; an
-- index over every row spent a B-tree insert per audit row on NULLs that no lookup
-- reads. The lookup (`client_request_id = ?`) implies IS NOT NULL, so the partial
-- index still serves it.
DROP INDEX audit_logs_client_request_id_idx;
CREATE INDEX audit_logs_client_request_id_idx ON audit_logs (client_request_id)
    WHERE client_request_id IS NOT NULL;
