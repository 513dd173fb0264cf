-- Usage per API key and quota period, added to in batches by every instance: each
-- adds what it counted since its last flush, so a row holds the fleet's total.
-- `period` names the quota period ('all', 'd2026-11-30', 'm2026-11', …).
-- `cost_nanos`: integer nano-USD, so sums are exact. No foreign key to `api_keys`:
-- a deleted key's last counts may still be flushed; deleting a key deletes its
-- usage explicitly.
-- Collation "C": rows sort bytewise, as on SQLite.
CREATE TABLE key_period_usage (
    key_id      TEXT   COLLATE "C" NOT NULL,
    period      TEXT   COLLATE "C" NOT NULL,
    requests    BIGINT NOT NULL CHECK (requests >= 0),
    tokens      BIGINT NOT NULL CHECK (tokens >= 0),
    cost_nanos  BIGINT NOT NULL CHECK (cost_nanos >= 0),
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (key_id, period)
);
-- Loading the current periods of every key.
CREATE INDEX key_period_usage_period_idx ON key_period_usage (period);
