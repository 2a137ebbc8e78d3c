-- A webhook's payload filter, as the client wrote it (JSON); NULL: every subscribed event.
-- filtered_events counts the events its filter kept from becoming deliveries.
-- Both are instant to add (nullable; a constant default), and nodes of the previous version,
-- which neither read nor write them, keep working during a rolling upgrade: they deliver
-- every subscribed event, as before.
ALTER TABLE webhooks ADD COLUMN filter TEXT;
ALTER TABLE webhooks ADD COLUMN filtered_events BIGINT NOT NULL DEFAULT 0;
