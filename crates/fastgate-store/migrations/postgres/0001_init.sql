-- FastGate initial schema (PostgreSQL).
-- Timestamps are BIGINT unix milliseconds (UTC); list fields are JSON text.

CREATE TABLE api_keys (
    id                   TEXT    PRIMARY KEY NOT NULL,
    name                 TEXT    NOT NULL,
    source               TEXT,
    key_hash             TEXT    NOT NULL,
    prefix               TEXT    NOT NULL,
    created_at           BIGINT  NOT NULL,
    updated_at           BIGINT  NOT NULL,
    expires_at           BIGINT,
    revoked_at           BIGINT,
    is_active            BOOLEAN NOT NULL DEFAULT TRUE,
    allowed_routes       TEXT    NOT NULL DEFAULT '[]',
    allowed_models       TEXT    NOT NULL DEFAULT '[]',
    rpm_limit            BIGINT,
    rpd_limit            BIGINT,
    tpm_limit            BIGINT,
    max_concurrent       BIGINT,
    quota_requests       BIGINT,
    quota_tokens         BIGINT,
    quota_cost           DOUBLE PRECISION,
    quota_period         TEXT    NOT NULL DEFAULT 'never'
                         CHECK (quota_period IN ('never', 'daily', 'monthly')),
    usage_count          BIGINT  NOT NULL DEFAULT 0,
    last_used_at         BIGINT
);

CREATE UNIQUE INDEX api_keys_name_uq ON api_keys (name);
CREATE UNIQUE INDEX api_keys_key_hash_uq ON api_keys (key_hash);

-- One row (id = 1) whose version is bumped in the same transaction as every
-- insert/update/revoke/delete of api_keys (never by usage updates). Servers poll it.
CREATE TABLE key_changes (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version BIGINT  NOT NULL
);
INSERT INTO key_changes (id, version) VALUES (1, 0);

CREATE TABLE audit_logs (
    id                BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    request_id        TEXT    NOT NULL,
    key_id            TEXT,
    key_name          TEXT,
    source            TEXT,
    method            TEXT    NOT NULL,
    path              TEXT    NOT NULL,
    query             TEXT,
    route             TEXT,
    upstream          TEXT,
    credential        TEXT,
    target_url        TEXT,
    status_code       INTEGER NOT NULL,
    request_time      BIGINT  NOT NULL,
    ttfb_ms           DOUBLE PRECISION,
    duration_ms       DOUBLE PRECISION    NOT NULL,
    request_bytes     BIGINT  NOT NULL,
    response_bytes    BIGINT  NOT NULL,
    user_agent        TEXT,
    client_ip         TEXT,
    is_stream         BOOLEAN NOT NULL,
    stream_chunks     BIGINT  NOT NULL,
    model             TEXT,
    tokens_in         BIGINT,
    tokens_out        BIGINT,
    tokens_estimated  BOOLEAN NOT NULL,
    cost              DOUBLE PRECISION,
    error_message     TEXT,
    request_headers   TEXT,
    response_headers  TEXT,
    request_body      TEXT,
    response_body     TEXT
);

CREATE UNIQUE INDEX audit_logs_request_id_uq ON audit_logs (request_id);
CREATE INDEX audit_logs_request_time_idx ON audit_logs (request_time);
CREATE INDEX audit_logs_key_time_idx ON audit_logs (key_id, request_time);
CREATE INDEX audit_logs_route_time_idx ON audit_logs (route, request_time);
CREATE INDEX audit_logs_status_idx ON audit_logs (status_code);
