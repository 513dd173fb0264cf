-- The status index holds only the rows a status filter looks for by index: status
-- 300 and above (redirects, client and server errors), the few rows among many.
-- A filter that matches 2xx rows matches most of the table, and reading the time
-- index newest first finds a page of them at once; the index entry every healthy
-- request paid for (a B-tree insert and ~60 bytes written twice through the WAL)
-- served no lookup. Filters that only match status >= 300 add that term literally
-- (`status_code >= 300`), which lets both planners prove the partial index applies.
DROP INDEX audit_logs_status_time_idx;
CREATE INDEX audit_logs_status_time_idx ON audit_logs (status_code, request_time, request_id)
    WHERE status_code >= 300;
