-- Deliveries a tenant can act on: retried one by one, recovered in bulk.

-- True when the delivery's end is already in its webhook's counters (it failed, then was
-- queued again): ending once more moves the counters by the change only.
ALTER TABLE deliveries ADD COLUMN counted BOOLEAN NOT NULL DEFAULT FALSE;

-- A webhook's deliveries by state, newest first: the deliveries list and a recovery's scan
-- of failed ones in a time window (ids embed their creation time) are index ranges.
DROP INDEX deliveries_webhook;
CREATE INDEX deliveries_webhook ON deliveries (webhook_id, state, id);

-- A paced background job re-queueing a webhook's failed deliveries in [since, until),
-- oldest first. Leased like deliveries, so exactly one node works on it, and another takes
-- over (from `position`) when that node dies.
CREATE TABLE recoveries (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL,
    webhook_id   TEXT NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
    since        BIGINT NOT NULL,
    until        BIGINT NOT NULL,
    pace         BIGINT NOT NULL,
    state        TEXT NOT NULL,
    total        BIGINT NOT NULL,
    requeued     BIGINT NOT NULL DEFAULT 0,
    position     TEXT,
    next_at      BIGINT NOT NULL,
    leased_by    TEXT,
    leased_until BIGINT,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    completed_at BIGINT
);
CREATE UNIQUE INDEX recoveries_running ON recoveries (webhook_id) WHERE state = 'running';
CREATE INDEX recoveries_webhook ON recoveries (webhook_id, id);
