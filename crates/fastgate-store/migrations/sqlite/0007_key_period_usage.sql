-- Usage per API key and quota period, added to in batches by every instance: each
-- adds what it counted since its last flush, so a row holds the fleet's total.
-- `period` names the quota period ('all', 'd2026-11-30', 'm2026-11', …).
-- `cost_nanos`: integer nano-USD, so sums are exact. No foreign key to `api_keys`:
-- a deleted key's last counts may still be flushed; deleting a key deletes its
-- usage explicitly.
-- SQLite turns an integer sum that overflows 64 bits into a REAL; the type checks
-- refuse it (PostgreSQL raises an out-of-range error itself).
CREATE TABLE key_period_usage (
    key_id      TEXT   NOT NULL,
    period      TEXT   NOT NULL,
    requests    BIGINT NOT NULL
        CHECK (typeof(requests) = 'integer' AND requests >= 0),
    tokens      BIGINT NOT NULL
        CHECK (typeof(tokens) = 'integer' AND tokens >= 0),
    cost_nanos  BIGINT NOT NULL
        CHECK (typeof(cost_nanos) = 'integer' AND cost_nanos >= 0),
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (key_id, period)
);
-- Loading the current periods of every key.
CREATE INDEX key_period_usage_period_idx ON key_period_usage (period);
