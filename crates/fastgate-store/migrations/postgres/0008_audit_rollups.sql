-- Rollups of the audit log (issue 11): per-bucket aggregates the audit writer adds to
-- in the same transaction as it inserts the rows (only the rows actually inserted:
-- a replayed request id adds nothing), so statistics never scan `audit_logs` and
-- outlive its retention. One row per (grain, bucket, dimensions); every measure is
-- a sum, so rows merge by adding and a query sums the rows of its range.
-- `grain`: 'minute', 'hour' or 'day'; `bucket_start`: unix ms (UTC) of the bucket's
-- first instant (days are UTC days). Retention: minute rows 2 days, hour rows 90
-- days, day rows kept.
-- Dimensions: '' stands for "none" (no key, route, model or upstream); `path` is cut
-- to 200 characters.
-- `errors`: status >= 400 or an error message (a stream that broke after its 200);
-- `gateway_errors`: rows with an error message, i.e. answered or cut by the gateway
-- itself (refused key, limits, upstream unreachable or timed out, broken stream).
-- `duration_us`/`ttfb_us`: integer microseconds, so sums are exact; `ttfb_count`: rows
-- with a TTFB. `cost_nanos`: integer nano-USD, so sums are exact.
-- `lat_NN`/`ttfb_NN`: histograms of duration and TTFB in 24 fixed buckets whose
-- upper bounds (exclusive, ms) are 1, 2, 4, 8, 15, 25, 50, 75, 100, 150, 250, 400,
-- 600, 1000, 1500, 2500, 4000, 6000, 10000, 15000, 25000, 40000, 60000 and none
-- (the code's `rollups::histogram::BOUNDS_MS` is the reference).
-- No CHECK on the sums (unlike 0007): a rollup must never make an audit batch fail;
-- per-row values are capped in the code so a sum cannot overflow 64 bits.
-- Collation "C": rows sort bytewise, as on SQLite.
CREATE TABLE audit_rollups (
    grain        TEXT COLLATE "C" NOT NULL CHECK (grain IN ('minute', 'hour', 'day')),
    bucket_start BIGINT NOT NULL,
    key_id       TEXT COLLATE "C" NOT NULL,
    route        TEXT COLLATE "C" NOT NULL,
    model        TEXT COLLATE "C" NOT NULL,
    upstream     TEXT COLLATE "C" NOT NULL,
    path         TEXT COLLATE "C" NOT NULL,
    status_code  INTEGER NOT NULL,
    requests        BIGINT NOT NULL,
    errors          BIGINT NOT NULL,
    gateway_errors  BIGINT NOT NULL,
    streams         BIGINT NOT NULL,
    duration_us     BIGINT NOT NULL,
    ttfb_us         BIGINT NOT NULL,
    ttfb_count      BIGINT NOT NULL,
    tokens_in       BIGINT NOT NULL,
    tokens_out      BIGINT NOT NULL,
    cost_nanos      BIGINT NOT NULL,
    lat_00       BIGINT NOT NULL DEFAULT 0,
    lat_01       BIGINT NOT NULL DEFAULT 0,
    lat_02       BIGINT NOT NULL DEFAULT 0,
    lat_03       BIGINT NOT NULL DEFAULT 0,
    lat_04       BIGINT NOT NULL DEFAULT 0,
    lat_05       BIGINT NOT NULL DEFAULT 0,
    lat_06       BIGINT NOT NULL DEFAULT 0,
    lat_07       BIGINT NOT NULL DEFAULT 0,
    lat_08       BIGINT NOT NULL DEFAULT 0,
    lat_09       BIGINT NOT NULL DEFAULT 0,
    lat_10       BIGINT NOT NULL DEFAULT 0,
    lat_11       BIGINT NOT NULL DEFAULT 0,
    lat_12       BIGINT NOT NULL DEFAULT 0,
    lat_13       BIGINT NOT NULL DEFAULT 0,
    lat_14       BIGINT NOT NULL DEFAULT 0,
    lat_15       BIGINT NOT NULL DEFAULT 0,
    lat_16       BIGINT NOT NULL DEFAULT 0,
    lat_17       BIGINT NOT NULL DEFAULT 0,
    lat_18       BIGINT NOT NULL DEFAULT 0,
    lat_19       BIGINT NOT NULL DEFAULT 0,
    lat_20       BIGINT NOT NULL DEFAULT 0,
    lat_21       BIGINT NOT NULL DEFAULT 0,
    lat_22       BIGINT NOT NULL DEFAULT 0,
    lat_23       BIGINT NOT NULL DEFAULT 0,
    ttfb_00      BIGINT NOT NULL DEFAULT 0,
    ttfb_01      BIGINT NOT NULL DEFAULT 0,
    ttfb_02      BIGINT NOT NULL DEFAULT 0,
    ttfb_03      BIGINT NOT NULL DEFAULT 0,
    ttfb_04      BIGINT NOT NULL DEFAULT 0,
    ttfb_05      BIGINT NOT NULL DEFAULT 0,
    ttfb_06      BIGINT NOT NULL DEFAULT 0,
    ttfb_07      BIGINT NOT NULL DEFAULT 0,
    ttfb_08      BIGINT NOT NULL DEFAULT 0,
    ttfb_09      BIGINT NOT NULL DEFAULT 0,
    ttfb_10      BIGINT NOT NULL DEFAULT 0,
    ttfb_11      BIGINT NOT NULL DEFAULT 0,
    ttfb_12      BIGINT NOT NULL DEFAULT 0,
    ttfb_13      BIGINT NOT NULL DEFAULT 0,
    ttfb_14      BIGINT NOT NULL DEFAULT 0,
    ttfb_15      BIGINT NOT NULL DEFAULT 0,
    ttfb_16      BIGINT NOT NULL DEFAULT 0,
    ttfb_17      BIGINT NOT NULL DEFAULT 0,
    ttfb_18      BIGINT NOT NULL DEFAULT 0,
    ttfb_19      BIGINT NOT NULL DEFAULT 0,
    ttfb_20      BIGINT NOT NULL DEFAULT 0,
    ttfb_21      BIGINT NOT NULL DEFAULT 0,
    ttfb_22      BIGINT NOT NULL DEFAULT 0,
    ttfb_23      BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (grain, bucket_start, key_id, route, model, upstream, path, status_code)
);
-- The primary key serves range reads (grain, bucket_start) and retention.

-- Backfill: the records already in `audit_logs`, rolled up as the writer rolls up new
-- ones (once, when the table is created; on a large log this takes a while).
-- round() of a NUMERIC is half away from zero, as in the code (the product goes
-- through NUMERIC at 15 significant digits: a sum may rarely differ by 1 µs or 1 nano-USD).
INSERT INTO audit_rollups (grain, bucket_start, key_id, route, model, upstream, path,
    status_code, requests, errors, gateway_errors, streams, duration_us, ttfb_us, ttfb_count, tokens_in, tokens_out, cost_nanos, lat_00, lat_01, lat_02, lat_03, lat_04, lat_05, lat_06, lat_07, lat_08, lat_09, lat_10, lat_11, lat_12, lat_13, lat_14, lat_15, lat_16, lat_17, lat_18, lat_19, lat_20, lat_21, lat_22, lat_23, ttfb_00, ttfb_01, ttfb_02, ttfb_03, ttfb_04, ttfb_05, ttfb_06, ttfb_07, ttfb_08, ttfb_09, ttfb_10, ttfb_11, ttfb_12, ttfb_13, ttfb_14, ttfb_15, ttfb_16, ttfb_17, ttfb_18, ttfb_19, ttfb_20, ttfb_21, ttfb_22, ttfb_23)
SELECT
    g.grain,
    a.request_time - (a.request_time % g.width),
    COALESCE(a.key_id, ''),
    COALESCE(a.route, ''),
    COALESCE(a.model, ''),
    COALESCE(a.upstream, ''),
    SUBSTR(a.path, 1, 200),
    a.status_code,
    COUNT(*),
    SUM(CASE WHEN status_code >= 400 OR error_message IS NOT NULL THEN 1 ELSE 0 END),
    SUM(CASE WHEN error_message IS NOT NULL THEN 1 ELSE 0 END),
    SUM(CASE WHEN is_stream THEN 1 ELSE 0 END),
    SUM(CAST(LEAST(GREATEST(round(CAST(duration_ms * 1000 AS NUMERIC)), 0), 1000000000000) AS BIGINT)),
    COALESCE(SUM(CAST(LEAST(GREATEST(round(CAST(ttfb_ms * 1000 AS NUMERIC)), 0), 1000000000000) AS BIGINT)), 0),
    COUNT(ttfb_ms),
    SUM(LEAST(COALESCE(tokens_in, 0), 1000000000)),
    SUM(LEAST(COALESCE(tokens_out, 0), 1000000000)),
    COALESCE(SUM(CAST(LEAST(GREATEST(round(CAST(cost * 1000000000 AS NUMERIC)), 0), 1000000000000) AS BIGINT)), 0),
    SUM(CASE WHEN duration_ms < 1 THEN 1 ELSE 0 END),
    SUM(CASE WHEN duration_ms >= 1 AND duration_ms < 2 THEN 1 ELSE 0 END),
    SUM(CASE WHEN duration_ms >= 2 AND duration_ms < 4 THEN 1 ELSE 0 END),
    SUM(CASE WHEN duration_ms >= 4 AND duration_ms < 8 THEN 1 ELSE 0 END),
    SUM(CASE WHEN duration_ms >= 8 AND duration_ms < 15 THEN 1 ELSE 0 END),
    SUM(CASE WHEN duration_ms >= 15 AND duration_ms < 25 THEN 1 ELSE 0 END),
    SUM(CASE WHEN duration_ms >= 25 AND duration_ms < 50 THEN 1 ELSE 0 END),
    SUM(CASE WHEN duration_ms >= 50 AND duration_ms < 75 THEN 1 ELSE 0 END),
    SUM(CASE WHEN duration_ms >= 75 AND duration_ms < 100 THEN 1 ELSE 0 END),
    SUM(CASE WHEN duration_ms >= 100 AND duration_ms < 150 THEN 1 ELSE 0 END),
    SUM(CASE WHEN duration_ms >= 150 AND duration_ms < 250 THEN 1 ELSE 0 END),
    SUM(CASE WHEN duration_ms >= 250 AND duration_ms < 400 THEN 1 ELSE 0 END),
    SUM(CASE WHEN duration_ms >= 400 AND duration_ms < 600 THEN 1 ELSE 0 END),
    SUM(CASE WHEN duration_ms >= 600 AND duration_ms < 1000 THEN 1 ELSE 0 END),
    SUM(CASE WHEN duration_ms >= 1000 AND duration_ms < 1500 THEN 1 ELSE 0 END),
    SUM(CASE WHEN duration_ms >= 1500 AND duration_ms < 2500 THEN 1 ELSE 0 END),
    SUM(CASE WHEN duration_ms >= 2500 AND duration_ms < 4000 THEN 1 ELSE 0 END),
    SUM(CASE WHEN duration_ms >= 4000 AND duration_ms < 6000 THEN 1 ELSE 0 END),
    SUM(CASE WHEN duration_ms >= 6000 AND duration_ms < 10000 THEN 1 ELSE 0 END),
    SUM(CASE WHEN duration_ms >= 10000 AND duration_ms < 15000 THEN 1 ELSE 0 END),
    SUM(CASE WHEN duration_ms >= 15000 AND duration_ms < 25000 THEN 1 ELSE 0 END),
    SUM(CASE WHEN duration_ms >= 25000 AND duration_ms < 40000 THEN 1 ELSE 0 END),
    SUM(CASE WHEN duration_ms >= 40000 AND duration_ms < 60000 THEN 1 ELSE 0 END),
    SUM(CASE WHEN duration_ms >= 60000 THEN 1 ELSE 0 END),
    SUM(CASE WHEN ttfb_ms < 1 THEN 1 ELSE 0 END),
    SUM(CASE WHEN ttfb_ms >= 1 AND ttfb_ms < 2 THEN 1 ELSE 0 END),
    SUM(CASE WHEN ttfb_ms >= 2 AND ttfb_ms < 4 THEN 1 ELSE 0 END),
    SUM(CASE WHEN ttfb_ms >= 4 AND ttfb_ms < 8 THEN 1 ELSE 0 END),
    SUM(CASE WHEN ttfb_ms >= 8 AND ttfb_ms < 15 THEN 1 ELSE 0 END),
    SUM(CASE WHEN ttfb_ms >= 15 AND ttfb_ms < 25 THEN 1 ELSE 0 END),
    SUM(CASE WHEN ttfb_ms >= 25 AND ttfb_ms < 50 THEN 1 ELSE 0 END),
    SUM(CASE WHEN ttfb_ms >= 50 AND ttfb_ms < 75 THEN 1 ELSE 0 END),
    SUM(CASE WHEN ttfb_ms >= 75 AND ttfb_ms < 100 THEN 1 ELSE 0 END),
    SUM(CASE WHEN ttfb_ms >= 100 AND ttfb_ms < 150 THEN 1 ELSE 0 END),
    SUM(CASE WHEN ttfb_ms >= 150 AND ttfb_ms < 250 THEN 1 ELSE 0 END),
    SUM(CASE WHEN ttfb_ms >= 250 AND ttfb_ms < 400 THEN 1 ELSE 0 END),
    SUM(CASE WHEN ttfb_ms >= 400 AND ttfb_ms < 600 THEN 1 ELSE 0 END),
    SUM(CASE WHEN ttfb_ms >= 600 AND ttfb_ms < 1000 THEN 1 ELSE 0 END),
    SUM(CASE WHEN ttfb_ms >= 1000 AND ttfb_ms < 1500 THEN 1 ELSE 0 END),
    SUM(CASE WHEN ttfb_ms >= 1500 AND ttfb_ms < 2500 THEN 1 ELSE 0 END),
    SUM(CASE WHEN ttfb_ms >= 2500 AND ttfb_ms < 4000 THEN 1 ELSE 0 END),
    SUM(CASE WHEN ttfb_ms >= 4000 AND ttfb_ms < 6000 THEN 1 ELSE 0 END),
    SUM(CASE WHEN ttfb_ms >= 6000 AND ttfb_ms < 10000 THEN 1 ELSE 0 END),
    SUM(CASE WHEN ttfb_ms >= 10000 AND ttfb_ms < 15000 THEN 1 ELSE 0 END),
    SUM(CASE WHEN ttfb_ms >= 15000 AND ttfb_ms < 25000 THEN 1 ELSE 0 END),
    SUM(CASE WHEN ttfb_ms >= 25000 AND ttfb_ms < 40000 THEN 1 ELSE 0 END),
    SUM(CASE WHEN ttfb_ms >= 40000 AND ttfb_ms < 60000 THEN 1 ELSE 0 END),
    SUM(CASE WHEN ttfb_ms >= 60000 THEN 1 ELSE 0 END)
FROM audit_logs a
CROSS JOIN (
    SELECT 'minute' AS grain, 60000 AS width
    UNION ALL SELECT 'hour', 3600000
    UNION ALL SELECT 'day', 86400000
) g
GROUP BY 1, 2, 3, 4, 5, 6, 7, 8;
