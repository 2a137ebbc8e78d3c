-- A webhook's own retry schedule: a JSON array of the delays before each retry, in
-- milliseconds; NULL (every existing webhook) keeps the backoff, retry_count times.
ALTER TABLE webhooks ADD COLUMN retry_schedule TEXT;
