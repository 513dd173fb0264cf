-- Upstreams, provider keys and routes managed through the admin API (the config
-- file's objects are not stored). `spec` is the object as JSON in the config
-- file's shape; an upstream's spec carries no credentials (they have their own rows).
CREATE TABLE upstreams (
    name        TEXT   PRIMARY KEY NOT NULL,
    spec        TEXT   NOT NULL,
    updated_at  BIGINT NOT NULL
);

-- Provider keys, per upstream (an upstream of the config file may have some too).
-- `sealed_key` is the key encrypted under the master key (AES-256-GCM, bound to
-- "upstream/name"); the plain key is never stored. `key_hint`: its last 4 characters.
CREATE TABLE upstream_credentials (
    upstream    TEXT   NOT NULL,
    name        TEXT   NOT NULL,
    sealed_key  TEXT   NOT NULL,
    key_hint    TEXT   NOT NULL,
    weight      BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (upstream, name)
);

CREATE TABLE routes (
    name        TEXT   PRIMARY KEY NOT NULL,
    spec        TEXT   NOT NULL,
    updated_at  BIGINT NOT NULL
);

-- One-row change counter of the three tables above, bumped in the same
-- transaction as every change.
CREATE TABLE live_changes (
    id       INTEGER PRIMARY KEY NOT NULL,
    version  BIGINT  NOT NULL
);
INSERT INTO live_changes (id, version) VALUES (1, 0);

-- Every change made through the admin API: who, what, and the object before and
-- after (JSON with secrets redacted; NULL for a create's before or a delete's after).
CREATE TABLE admin_events (
    id           TEXT   PRIMARY KEY NOT NULL,
    at           BIGINT NOT NULL,
    actor        TEXT   NOT NULL,
    action       TEXT   NOT NULL,
    object_kind  TEXT   NOT NULL,
    object_name  TEXT   NOT NULL,
    before_json  TEXT,
    after_json   TEXT
);
CREATE INDEX admin_events_at_idx ON admin_events (at);
CREATE INDEX admin_events_object_idx ON admin_events (object_kind, object_name);

-- The change feed: every bump of a change counter (keys, model groups, live
-- objects) notifies `fastgate_changes` with "<schema>:<counter table>", delivered
-- at commit. Instances LISTEN instead of polling, so N instances cost the
-- database O(1) per change.
CREATE FUNCTION fastgate_notify_change() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('fastgate_changes', TG_TABLE_SCHEMA || ':' || TG_TABLE_NAME);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER key_changes_notify AFTER UPDATE ON key_changes
    FOR EACH ROW EXECUTE FUNCTION fastgate_notify_change();
CREATE TRIGGER model_changes_notify AFTER UPDATE ON model_changes
    FOR EACH ROW EXECUTE FUNCTION fastgate_notify_change();
CREATE TRIGGER live_changes_notify AFTER UPDATE ON live_changes
    FOR EACH ROW EXECUTE FUNCTION fastgate_notify_change();
