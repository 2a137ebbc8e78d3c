-- A webhook's payload filter, as the client wrote it (JSON); NULL: every subscribed event.
-- filtered_events counts the events its filter kept from becoming deliveries.
ALTER TABLE webhooks ADD COLUMN filter TEXT;
ALTER TABLE webhooks ADD COLUMN filtered_events INTEGER NOT NULL DEFAULT 0;
