-- Credential health (issue 9): the shared state of provider credentials, their
-- usage counters, every rule firing, fleet-wide task leases, and rules managed
-- through the admin API.

-- Rules managed through the admin API (the config file's rules are not stored),
-- as JSON in the config file's shape. A live object like routes: every change
-- bumps `live_changes`.
CREATE TABLE rules (
    name        TEXT   PRIMARY KEY NOT NULL,
    spec        TEXT   NOT NULL,
    updated_at  BIGINT NOT NULL
);

-- The state of each provider credential that left `active` at some point, shared
-- by every instance. `until_ms`: when a disabled/exhausted credential returns on
-- its own (NULL: only by hand). `changed_by`: `rule:<name>`, `scheduler`, an admin.
CREATE TABLE credential_states (
    upstream    TEXT   NOT NULL,
    credential  TEXT   NOT NULL,
    state       TEXT   NOT NULL
        CHECK (state IN ('active', 'disabled', 'banned', 'exhausted')),
    reason      TEXT   NOT NULL,
    since_ms    BIGINT NOT NULL,
    until_ms    BIGINT,
    changed_by  TEXT   NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (upstream, credential)
);

-- One-row change counter of `credential_states`, bumped in the same transaction
-- as every change.
CREATE TABLE health_changes (
    id       INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    version  BIGINT  NOT NULL
);
INSERT INTO health_changes (id, version) VALUES (1, 0);

-- Usage per provider credential, added to in batches by every instance (no change
-- notification). `quota_day`: the local date (YYYY-MM-DD) the day counters count.
CREATE TABLE credential_usage (
    upstream          TEXT   NOT NULL,
    credential        TEXT   NOT NULL,
    requests          BIGINT NOT NULL,
    errors            BIGINT NOT NULL,
    tokens            BIGINT NOT NULL,
    last_error        TEXT,
    last_error_at_ms  BIGINT,
    last_used_at_ms   BIGINT,
    quota_day         TEXT   NOT NULL,
    day_requests      BIGINT NOT NULL,
    day_tokens        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    PRIMARY KEY (upstream, credential)
);

-- Every rule firing, with the credential's state before and after.
CREATE TABLE rule_events (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms        BIGINT  NOT NULL,
    rule         TEXT    NOT NULL,
    upstream     TEXT    NOT NULL,
    credential   TEXT    NOT NULL,
    status       INTEGER,
    excerpt      TEXT    NOT NULL,
    action       TEXT    NOT NULL,
    state_before TEXT    NOT NULL,
    state_after  TEXT    NOT NULL,
    instance     TEXT    NOT NULL
);
CREATE INDEX rule_events_at_idx ON rule_events (at_ms);
CREATE INDEX rule_events_credential_idx ON rule_events (upstream, credential, at_ms);
CREATE INDEX rule_events_rule_idx ON rule_events (rule, at_ms);

-- Named background tasks run by one instance of a fleet at a time. The lease is
-- free when `lease_until_ms` has passed (0 once released); `holder` keeps the
-- instance that took it last.
CREATE TABLE task_leases (
    name              TEXT    PRIMARY KEY NOT NULL,
    holder            TEXT,
    lease_until_ms    BIGINT  NOT NULL,
    last_started_ms   BIGINT,
    last_finished_ms  BIGINT,
    last_ok           INTEGER,
    last_result       TEXT,
    next_run_ms       BIGINT
);
