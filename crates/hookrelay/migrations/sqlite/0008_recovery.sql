-- Deliveries a tenant can act on: retried one by one, recovered in bulk.

-- 1 when the delivery's end is already in its webhook's counters (it failed, then was queued
-- again): ending once more moves the counters by the change only, never a second delivery.
ALTER TABLE deliveries ADD COLUMN counted INTEGER NOT NULL DEFAULT 0;

-- A webhook's deliveries by state, newest first: the deliveries list and a recovery's scan
-- of failed ones in a time window (ids embed their creation time) are index ranges.
DROP INDEX deliveries_webhook;
CREATE INDEX deliveries_webhook ON deliveries (webhook_id, state, id);

-- A paced background job re-queueing a webhook's failed deliveries in [since, until),
-- oldest first. Leased like deliveries, so exactly one node works on it, and another takes
-- over (from `position`) when that node dies.
CREATE TABLE recoveries (
    id           TEXT PRIMARY KEY NOT NULL,
    tenant_id    TEXT NOT NULL,
    webhook_id   TEXT NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
    since        INTEGER NOT NULL,
    until        INTEGER NOT NULL,
    pace         INTEGER NOT NULL,      -- deliveries re-queued per second at most
    state        TEXT NOT NULL,         -- running | completed | cancelled
    total        INTEGER NOT NULL,      -- failed deliveries in the window when it started
    requeued     INTEGER NOT NULL DEFAULT 0,
    position     TEXT,                  -- the last delivery id re-queued
    next_at      INTEGER NOT NULL,      -- when the next re-queued delivery falls due
    leased_by    TEXT,
    leased_until INTEGER,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    completed_at INTEGER
) WITHOUT ROWID;
-- One running recovery per webhook, across every node.
CREATE UNIQUE INDEX recoveries_running ON recoveries (webhook_id) WHERE state = 'running';
CREATE INDEX recoveries_webhook ON recoveries (webhook_id, id);
