-- A webhook's own retry schedule: a JSON array of the delays before each retry, in
-- milliseconds; NULL (every existing webhook) keeps the backoff, retry_count times.
-- Nullable and without a default, so adding it is instant and nodes of the previous version,
-- which neither read nor write it, keep working during a rolling upgrade (retry_count holds
-- the schedule's length, within its bounds, for them).
ALTER TABLE webhooks ADD COLUMN retry_schedule TEXT;
