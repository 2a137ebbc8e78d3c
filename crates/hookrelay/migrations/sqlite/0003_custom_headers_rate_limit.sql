-- Custom headers sent with every delivery, sealed like the secret (they often carry a
-- receiver's credentials); NULL when there are none. And an optional delivery rate limit.
ALTER TABLE webhooks ADD COLUMN headers TEXT;
ALTER TABLE webhooks ADD COLUMN rate_limit_per_second INTEGER;
