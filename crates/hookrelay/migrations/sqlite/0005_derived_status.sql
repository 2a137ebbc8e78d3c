-- A webhook's status is derived from its state (is_active now; health later), never stored.
-- SQLite is one process's database, so the column can go at once.
ALTER TABLE webhooks DROP COLUMN status;
