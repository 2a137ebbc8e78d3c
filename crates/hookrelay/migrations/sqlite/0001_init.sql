-- hookrelay schema, SQLite. Times are Unix milliseconds (INTEGER); ids are prefixed ULIDs.

-- Server-wide settings, such as the hash of a generated admin key.
CREATE TABLE settings (
    key   TEXT PRIMARY KEY NOT NULL,
    value BLOB NOT NULL
) WITHOUT ROWID;

CREATE TABLE tenants (
    id         TEXT PRIMARY KEY NOT NULL,
    name       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) WITHOUT ROWID;

-- Tenant API keys: the id and a SHA-256 of the secret part, never the key itself.
CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY NOT NULL,
    tenant_id    TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name         TEXT,
    prefix       TEXT NOT NULL,
    key_hash     BLOB NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER,
    last_used_at INTEGER,
    revoked_at   INTEGER
) WITHOUT ROWID;
CREATE INDEX api_keys_tenant ON api_keys (tenant_id, id);

CREATE TABLE webhooks (
    id                    TEXT PRIMARY KEY NOT NULL,
    tenant_id             TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name                  TEXT NOT NULL,
    description           TEXT,
    url                   TEXT NOT NULL,
    events                TEXT NOT NULL,          -- JSON array of event type names or "*"
    secret                TEXT NOT NULL,
    status                TEXT NOT NULL,
    retry_count           INTEGER NOT NULL,
    timeout_seconds       INTEGER NOT NULL,
    is_active             INTEGER NOT NULL,
    total_deliveries      INTEGER NOT NULL DEFAULT 0,
    successful_deliveries INTEGER NOT NULL DEFAULT 0,
    failed_deliveries     INTEGER NOT NULL DEFAULT 0,
    last_triggered_at     INTEGER,
    created_at            INTEGER NOT NULL,
    updated_at            INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX webhooks_tenant ON webhooks (tenant_id, id);

-- An accepted event. `body` is the exact JSON envelope POSTed to every webhook, serialised once.
CREATE TABLE events (
    id              TEXT PRIMARY KEY NOT NULL,
    tenant_id       TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    event_type      TEXT NOT NULL,
    body            TEXT NOT NULL,
    idempotency_key TEXT,
    created_at      INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX events_tenant ON events (tenant_id, id);
CREATE UNIQUE INDEX events_idempotency ON events (tenant_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- One event on its way to one webhook: the durable delivery queue.
-- state: pending | succeeded | failed | cancelled. A pending row is due when next_attempt_at
-- has passed and no live lease (leased_until in the future) holds it.
CREATE TABLE deliveries (
    id              TEXT PRIMARY KEY NOT NULL,
    tenant_id       TEXT NOT NULL,
    event_id        TEXT NOT NULL REFERENCES events(id) ON DELETE CASCADE,
    webhook_id      TEXT NOT NULL,
    state           TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    leased_until    INTEGER,
    leased_by       TEXT,
    last_status     INTEGER,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    completed_at    INTEGER
) WITHOUT ROWID;
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX deliveries_event ON deliveries (event_id);
CREATE INDEX deliveries_webhook ON deliveries (webhook_id, state);

-- One row per HTTP attempt (and per test send).
CREATE TABLE webhook_logs (
    id                      TEXT PRIMARY KEY NOT NULL,
    tenant_id               TEXT NOT NULL,
    webhook_id              TEXT NOT NULL,
    delivery_id             TEXT,
    event_id                TEXT,
    event_type              TEXT NOT NULL,
    payload                 TEXT,             -- NULL: the event's body (joined on read)
    request_headers         TEXT,             -- JSON object of the headers sent
    response_status         INTEGER,
    response_body           TEXT,
    response_body_truncated INTEGER NOT NULL DEFAULT 0,
    response_time_ms        INTEGER,
    error_message           TEXT,
    attempt_count           INTEGER NOT NULL,
    is_success              INTEGER NOT NULL,
    is_test                 INTEGER NOT NULL DEFAULT 0,
    created_at              INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX webhook_logs_tenant ON webhook_logs (tenant_id);
CREATE INDEX webhook_logs_webhook_created ON webhook_logs (webhook_id, created_at);
