-- hookrelay schema, PostgreSQL. Times are Unix milliseconds (BIGINT), as on SQLite, so both
-- backends share one model; ids are prefixed ULIDs.

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value BYTEA NOT NULL
);

CREATE TABLE tenants (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name         TEXT,
    prefix       TEXT NOT NULL,
    key_hash     BYTEA NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT,
    last_used_at BIGINT,
    revoked_at   BIGINT
);
CREATE INDEX api_keys_tenant ON api_keys (tenant_id, id);

CREATE TABLE webhooks (
    id                    TEXT PRIMARY KEY,
    tenant_id             TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name                  TEXT NOT NULL,
    description           TEXT,
    url                   TEXT NOT NULL,
    events                TEXT NOT NULL,          -- JSON array of event type names or "*"
    secret                TEXT NOT NULL,
    status                TEXT NOT NULL,
    retry_count           BIGINT NOT NULL,
    timeout_seconds       BIGINT NOT NULL,
    is_active             BOOLEAN NOT NULL,
    total_deliveries      BIGINT NOT NULL DEFAULT 0,
    successful_deliveries BIGINT NOT NULL DEFAULT 0,
    failed_deliveries     BIGINT NOT NULL DEFAULT 0,
    last_triggered_at     BIGINT,
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL
);
CREATE INDEX webhooks_tenant ON webhooks (tenant_id, id);

CREATE TABLE events (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    event_type      TEXT NOT NULL,
    body            TEXT NOT NULL,
    idempotency_key TEXT,
    created_at      BIGINT NOT NULL
);
CREATE INDEX events_tenant ON events (tenant_id, id);
-- Holds across nodes: two nodes ingesting the same key cannot both insert it.
CREATE UNIQUE INDEX events_idempotency ON events (tenant_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

CREATE TABLE deliveries (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL,
    event_id        TEXT NOT NULL REFERENCES events(id) ON DELETE CASCADE,
    webhook_id      TEXT NOT NULL,
    state           TEXT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    leased_until    BIGINT,
    leased_by       TEXT,
    last_status     BIGINT,
    last_error      TEXT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    completed_at    BIGINT
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX deliveries_event ON deliveries (event_id);
CREATE INDEX deliveries_webhook ON deliveries (webhook_id, state);

CREATE TABLE webhook_logs (
    id                      TEXT PRIMARY KEY,
    tenant_id               TEXT NOT NULL,
    webhook_id              TEXT NOT NULL,
    delivery_id             TEXT,
    event_id                TEXT,
    event_type              TEXT NOT NULL,
    payload                 TEXT,             -- NULL: the event's body (joined on read)
    request_headers         TEXT,
    response_status         BIGINT,
    response_body           TEXT,
    response_body_truncated BOOLEAN NOT NULL DEFAULT FALSE,
    response_time_ms        BIGINT,
    error_message           TEXT,
    attempt_count           BIGINT NOT NULL,
    is_success              BOOLEAN NOT NULL,
    is_test                 BOOLEAN NOT NULL DEFAULT FALSE,
    created_at              BIGINT NOT NULL
);
CREATE INDEX webhook_logs_tenant ON webhook_logs (tenant_id);
CREATE INDEX webhook_logs_webhook_created ON webhook_logs (webhook_id, created_at, id);

-- Live nodes. A lease held by a node whose heartbeat is stale is free to take: a node that
-- died hands its work over in seconds rather than when its leases run out.
CREATE TABLE nodes (
    id           TEXT PRIMARY KEY,
    heartbeat_at BIGINT NOT NULL
);
