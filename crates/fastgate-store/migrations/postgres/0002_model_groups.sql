-- Model groups managed through the admin API (the config file's groups are not
-- stored). `spec` is the group as JSON, in the config file's shape.
CREATE TABLE model_groups (
    name        TEXT   PRIMARY KEY NOT NULL,
    spec        TEXT   NOT NULL,
    updated_at  BIGINT NOT NULL
);

-- One-row change counter, bumped by every model group change, polled by every
-- instance to pick up changes made elsewhere.
CREATE TABLE model_changes (
    id       INTEGER PRIMARY KEY NOT NULL,
    version  BIGINT  NOT NULL
);
INSERT INTO model_changes (id, version) VALUES (1, 0);
