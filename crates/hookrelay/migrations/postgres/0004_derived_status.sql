-- A webhook's status is derived from its state (is_active now; health later), never stored.
-- Nodes of the previous version may still run beside this one during a rolling upgrade and
-- write the column, so it stays for now, unread and optional; a later release drops it.
ALTER TABLE webhooks ALTER COLUMN status DROP NOT NULL;
