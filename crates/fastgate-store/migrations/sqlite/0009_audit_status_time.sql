-- The logs list filtered by a status range (`status_min=500`) sorted by time: the
-- page's request ids come from this index alone, without reading every matching row.
-- It replaces the status-only index (its first column serves the same lookups).
CREATE INDEX audit_logs_status_time_idx ON audit_logs (status_code, request_time, request_id);
DROP INDEX audit_logs_status_idx;
