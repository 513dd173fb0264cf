-- A provider key stored through the admin API may carry a daily quota
-- (JSON: {"requests_per_day": N, "tokens_per_day": N}); NULL: none.
ALTER TABLE upstream_credentials ADD COLUMN quota TEXT;
