-- Endpoint health: the facts a webhook's status is derived from (never the status itself).
-- disabled_reason: manual | gone | failing, with disabled_at, while is_active is 0.
-- The streak: failed attempts with no success between them, since streak_started_at.
-- failing_since: when the streak made the webhook `failing`.
-- disable_after_ms: the webhook's own disable_after; NULL the server's, 0 off.
ALTER TABLE webhooks ADD COLUMN disabled_reason TEXT;
ALTER TABLE webhooks ADD COLUMN disabled_at INTEGER;
ALTER TABLE webhooks ADD COLUMN streak_started_at INTEGER;
ALTER TABLE webhooks ADD COLUMN streak_failed_attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE webhooks ADD COLUMN streak_failed_deliveries INTEGER NOT NULL DEFAULT 0;
ALTER TABLE webhooks ADD COLUMN failing_since INTEGER;
ALTER TABLE webhooks ADD COLUMN disable_after_ms INTEGER;
-- Webhooks switched off before health was tracked were switched off by their tenant.
UPDATE webhooks SET disabled_reason = 'manual', disabled_at = updated_at WHERE is_active = 0;

-- The reserved system tenant: operational webhooks (the operator's endpoints for hookrelay's
-- own events) are its webhooks, so the engine delivers them like any other. It has no keys
-- and no tenant route reaches it (see `domain/tenant.rs`, SYSTEM_TENANT).
INSERT INTO tenants (id, name, created_at, updated_at)
VALUES ('ten_00000000000000000000000000', 'hookrelay (operational webhooks)', 0, 0)
ON CONFLICT (id) DO NOTHING;
